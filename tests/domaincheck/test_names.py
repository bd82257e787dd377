"""Domain names before any query: the canonical A-label form, DNS limits, UTS #39 look-alike scripts."""

from __future__ import annotations

import pytest

from domaincheck.audit import audit_domain
from domaincheck.names import InvalidDomainName, canonical_domain, label_scripts_allowed, mixed_script_label
from domaincheck.spf import check_host
from tests.support.dns import StartServer

# Look-alike characters are written as escapes: in the source they would look like the Latin letters.
CYRILLIC_A = "\u0430"
CYRILLIC_ES = "\u0441"
CYRILLIC_O = "\u043e"
GREEK_OMICRON = "\u03bf"
GREEK_ALPHA = "\u03b1"
ARMENIAN_OH = "\u0585"

# (name, the label that is refused as a U-label)
LOOK_ALIKES = [
    pytest.param(f"p{CYRILLIC_A}ypal.de", f"p{CYRILLIC_A}ypal", id="paypal-cyrillic-a"),
    pytest.param(f"firm{CYRILLIC_A}.de", f"firm{CYRILLIC_A}", id="firma-cyrillic-a"),
    pytest.param(f"mi{CYRILLIC_ES}rosoft.com", f"mi{CYRILLIC_ES}rosoft", id="microsoft-cyrillic-es"),
    pytest.param(f"g{GREEK_OMICRON}ogle.de", f"g{GREEK_OMICRON}ogle", id="google-greek-omicron"),
    pytest.param(f"{GREEK_ALPHA}mazon.de", f"{GREEK_ALPHA}mazon", id="amazon-greek-alpha"),
    # Moderately Restrictive would let Latin + Armenian through; Highly Restrictive does not.
    pytest.param(f"g{ARMENIAN_OH}{ARMENIAN_OH}gle.com", f"g{ARMENIAN_OH}{ARMENIAN_OH}gle", id="google-armenian"),
    pytest.param(f"{CYRILLIC_A}{GREEK_OMICRON}.de", f"{CYRILLIC_A}{GREEK_OMICRON}", id="cyrillic-with-greek"),
    pytest.param(f"b\u00fccher{CYRILLIC_O}.example", f"b\u00fccher{CYRILLIC_O}", id="umlaut-with-cyrillic"),
    pytest.param(f"mail.p{CYRILLIC_A}ypal.de", f"p{CYRILLIC_A}ypal", id="second-label"),
    pytest.param("xn--pypal-4ve.de", f"p{CYRILLIC_A}ypal", id="a-label-form"),
    # Han with Hiragana is Japanese, Han with Hangul Korean; all three together no language's mix.
    pytest.param("\u4f8b\u3048\ud55c.jp", "\u4f8b\u3048\ud55c", id="han-hiragana-hangul"),
]

LEGITIMATE = [
    pytest.param("firma.de", id="ascii"),
    pytest.param("b\u00fccher.example", id="german-umlaut"),
    pytest.param("xn--bcher-kva.example", id="german-a-label"),
    pytest.param("m\u00fcnchen-2024.de", id="latin-with-digits-and-hyphen"),
    pytest.param("\u4f8b\u3048.jp", id="han-hiragana"),
    pytest.param("\u30c9\u30e1\u30a4\u30f3\u540d\u4f8b.jp", id="katakana-han"),
    pytest.param("\u65e5\u672c\u30c6\u30b9\u30c8test.jp", id="latin-han-katakana"),
    pytest.param("\u30c6\u30fc\u30bf.jp", id="katakana-with-prolonged-sound-mark"),
    pytest.param("\ud55c\uad6d\uc5b4.kr", id="hangul"),
    pytest.param("\u4e2d\u6587\u3105.tw", id="han-bopomofo"),
    pytest.param("\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", id="cyrillic-only"),
    pytest.param("\u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac.gr", id="greek-only"),
    # UTS #39 judges one label at a time: a Latin label next to a Cyrillic one mixes nothing.
    pytest.param("b\u00fccher.\u043f\u0440\u0438\u043c\u0435\u0440.example", id="one-script-per-label"),
]


@pytest.mark.parametrize(("name", "label"), LOOK_ALIKES)
def test_look_alike_label_is_found(name: str, label: str) -> None:
    """A label mixing Latin with Cyrillic, Greek or Armenian look-alikes (or unrelated scripts) is named."""
    assert mixed_script_label(canonical_domain(name)) == label


@pytest.mark.parametrize("name", LEGITIMATE)
def test_single_script_and_allowed_mixes_pass(name: str) -> None:
    """Single-script IDN labels and the CJK mixes UTS #39 allows pass, label by label."""
    assert mixed_script_label(canonical_domain(name)) is None


def test_combining_marks_and_common_characters_fit_any_script() -> None:
    """A combining mark (Inherited) or digits (Common) do not make a single-script label mixed."""
    assert label_scripts_allowed("cafe\u0301")  # e + COMBINING ACUTE ACCENT
    assert label_scripts_allowed("\u043f\u0440\u0438\u043c\u0435\u04402024")
    assert not label_scripts_allowed(f"cafe{CYRILLIC_A}\u0301")


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("b\u00fccher.example", "xn--bcher-kva.example"),
        ("B\u00dcCHER.Example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example.", "xn--bcher-kva.example"),
        ("b\u00fccher\u3002example", "xn--bcher-kva.example"),  # ideographic full stop
        ("\uff46\uff49\uff52\uff4d\uff41.de", "firma.de"),  # fullwidth letters
        ("stra\u00dfe.de", "xn--strae-oqa.de"),  # IDNA 2008: sharp s stays
        ("_spf.aranes.de", "_spf.aranes.de"),
        (" firma.de ", "firma.de"),
    ],
)
def test_one_canonical_form(name: str, canonical: str) -> None:
    """U-labels, A-labels, case, full-stop variants and a trailing dot all give one lowercase A-label form."""
    assert canonical_domain(name) == canonical


BUCHER_LABEL = "b\u00fccherb\u00fccherb\u00fccher"  # 18 characters, 25 octets as an A-label

INVALID = [
    pytest.param("", "empty", id="empty"),
    pytest.param(".", "empty", id="root-only"),
    pytest.param("a..b.de", "empty_label", id="empty-label"),
    pytest.param(".a.de", "empty_label", id="leading-dot"),
    pytest.param("a.de..", "empty_label", id="two-trailing-dots"),
    pytest.param("x" * 64 + ".de", "label_too_long", id="ascii-label-64"),
    pytest.param("\u00fc" * 64 + ".de", "label_too_long", id="u-label-64-characters"),
    pytest.param("\u00fc" * 58 + ".de", "label_too_long", id="u-label-64-octets-as-a-label"),
    pytest.param(".".join(["a" * 63] * 4) + ".de", "name_too_long", id="ascii-name-over-253"),
    pytest.param(".".join([BUCHER_LABEL] * 11) + ".de", "name_too_long", id="u-name-over-253-as-a-labels"),
    pytest.param("a." * 600 + "-", "name_too_long", id="refused-before-labels-are-read"),
    pytest.param("-firma.de", "hyphen", id="leading-hyphen"),
    pytest.param("firma-.de", "hyphen", id="trailing-hyphen"),
    pytest.param("fir ma.de", "invalid_character", id="space"),
    pytest.param("vertrieb@firma.de", "invalid_character", id="at-sign"),
    pytest.param("xn--zz.de", "invalid_idna", id="bad-a-label"),
    pytest.param("\u00fc\u200d.de", "invalid_idna", id="zero-width-joiner"),
]


@pytest.mark.parametrize(("name", "reason"), INVALID)
def test_invalid_names_are_refused(name: str, reason: str) -> None:
    """Empty labels, labels over 63 and names over 253 octets (in A-label form), bad hyphens and IDNA are refused."""
    with pytest.raises(InvalidDomainName) as refused:
        canonical_domain(name)
    assert refused.value.reason == reason


def test_longest_valid_name_passes() -> None:
    """A name of exactly 253 octets with 63-octet labels is valid: the limits are not off by one."""
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(name) == 253
    assert canonical_domain(name) == name


def test_single_label_is_refused_where_a_multi_label_name_is_needed() -> None:
    """With multi_label a one-label name ("de") is refused; without it is a valid name."""
    assert canonical_domain("de") == "de"
    with pytest.raises(InvalidDomainName) as refused:
        canonical_domain("de", multi_label=True)
    assert refused.value.reason == "single_label"


ZONE = {"firma.de": [{"TXT": "v=spf1 -all"}, {"MX": [10, "mx.firma.de"]}]}
INVALID_FOR_THE_ENGINE = [
    "a..b.de",
    "x" * 64 + ".de",
    "\u00fc" * 58 + ".de",
    ".".join([BUCHER_LABEL] * 11) + ".de",
    "-firma.de",
    "firma-.de",
    "xn--zz.de",
    "de",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("name", INVALID_FOR_THE_ENGINE)
async def test_audit_refuses_invalid_names_without_a_query(loopback_dns: StartServer, name: str) -> None:
    """audit_domain raises InvalidDomainName for a bad name and the DNS server receives no query."""
    server, client = await loopback_dns(ZONE)
    with pytest.raises(InvalidDomainName):
        await audit_domain(name, dns=client, platform_include="_spf.aranes.de")
    assert server.stats.queries_received == 0


@pytest.mark.asyncio
async def test_audit_asks_for_the_canonical_name(loopback_dns: StartServer) -> None:
    """A valid name in any form is audited as its A-labels (the query counter does count)."""
    server, client = await loopback_dns({**ZONE, "xn--bcher-kva.example": ZONE["firma.de"]})
    report = await audit_domain("B\u00fccher.example.", dns=client, platform_include="_spf.aranes.de")
    assert report.domain == "xn--bcher-kva.example"
    assert report.mx_hosts == ("mx.firma.de",)
    assert server.stats.queries_received > 0


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["a..b.de", "x" * 64 + ".de", ".".join(["a" * 63] * 4) + ".de", "de"])
async def test_check_host_gives_none_without_a_query(loopback_dns: StartServer, name: str) -> None:
    """check_host() answers "none" for a malformed or single-label domain (RFC 7208 4.3) without asking DNS."""
    server, client = await loopback_dns(ZONE)
    result = await check_host("192.0.2.1", name, f"postmaster@{name}", dns=client)
    assert result.result == "none"
    assert server.stats.queries_received == 0
