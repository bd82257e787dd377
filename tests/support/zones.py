"""DNS zone data of the SPF tests: the platform's record and mail domains with each problem the check reports."""

from __future__ import annotations

from typing import Any

PLATFORM = {"_spf.aranes.de": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}]}


def mail_domain(name: str, spf: str | None, *, mx: bool = True, dmarc: bool = False) -> dict[str, list[Any]]:
    """Zone data of a domain with optional SPF record, an MX host with an address, and DMARC."""
    records: list[Any] = [{"MX": [10, f"mx.{name}"]}] if mx else [{"A": "198.51.100.1"}]
    if spf is not None:
        records.append({"TXT": spf})
    zone: dict[str, list[Any]] = {name: records, f"mx.{name}": [{"A": "198.51.100.25"}]}
    if dmarc:
        zone[f"_dmarc.{name}"] = [{"TXT": "v=DMARC1; p=none"}]
    return zone


ZONE: dict[str, list[Any]] = {
    **PLATFORM,
    **mail_domain("gut.example", "v=spf1 mx include:_spf.aranes.de ~all", dmarc=True),
    **mail_domain("alt.example", "v=spf1 mx include:_spf.anbieter.example ~all"),
    "_spf.anbieter.example": [{"TXT": "v=spf1 ip4:203.0.113.0/24 ~all"}],
    **mail_domain("ohnespf.example", None),
    **mail_domain("ohnemx.example", "v=spf1 include:_spf.aranes.de -all", mx=False),
    "nullmx.example": [{"MX": [0, "."]}, {"TXT": "v=spf1 include:_spf.aranes.de -all"}],
    **mail_domain("zuviel.example", "v=spf1 " + " ".join(f"include:n{i}.example" for i in range(11)) + " ~all"),
    **{f"n{i}.example": [{"TXT": "v=spf1 -all"}] for i in range(11)},
    **mail_domain("doppelt.example", "v=spf1 include:_spf.aranes.de -all"),
    "zeitueberschreitung.example": ["TIMEOUT"],
    "kaputt.example": ["SERVFAIL"],
}
ZONE["doppelt.example"].append({"TXT": "v=spf1 mx -all"})
