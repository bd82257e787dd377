"""Generator of the SPF benchmark zones: 1,000 customer domains over about 20 shared providers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

PLATFORM = "_spf.aranes.de"
PLATFORM_IP = "203.0.113.5"

Zone = dict[str, list[Any]]


@dataclass
class Expected:
    """What the generator built for one domain."""

    domain: str
    category: str
    problems: list[str]
    authorized: bool  # would check_host() pass for the platform IP?
    has_spf: bool
    lookups: int = 0


@dataclass
class Dataset:
    """The zone and the expectations per domain."""

    zone: Zone = field(default_factory=dict)
    expected: list[Expected] = field(default_factory=list)


def _providers(zone: Zone) -> dict[str, int]:
    """Twenty shared providers; returns the lookups an include of each costs (itself included)."""
    cost: dict[str, int] = {}
    zone[PLATFORM] = [{"TXT": "v=spf1 ip4:203.0.113.0/24 ip6:2001:db8:aa::/48 -all"}]
    for k in range(10):  # leaves: address ranges only
        name = f"_spf.p{k}.example"
        ranges = " ".join(f"ip4:198.{18 + k}.{j}.0/24" for j in range(1 + k % 4))
        zone[name] = [{"TXT": f"v=spf1 {ranges} ~all"}]
        cost[name] = 1
    for k in range(10, 13):  # leaves with their own mail host
        name = f"_spf.p{k}.example"
        zone[name] = [{"TXT": f"v=spf1 a:relay.p{k}.example ip4:198.{18 + k}.0.0/22 -all"}]
        zone[f"relay.p{k}.example"] = [{"A": f"198.{18 + k}.1.1"}]
        cost[name] = 2
    for k, (a, b) in zip(range(13, 16), [(0, 1), (2, 10), (3, 4)], strict=True):  # nested
        name = f"_spf.p{k}.example"
        zone[name] = [{"TXT": f"v=spf1 include:_spf.p{a}.example include:_spf.p{b}.example -all"}]
        cost[name] = 1 + cost[f"_spf.p{a}.example"] + cost[f"_spf.p{b}.example"]
    for k in range(16, 19):  # resellers of the platform
        name = f"_spf.p{k}.example"
        zone[name] = [{"TXT": f"v=spf1 ip4:192.0.{k}.0/24 include:{PLATFORM} ~all"}]
        cost[name] = 2
    name = "_spf.p19.example"  # provider with MX
    zone[name] = [{"TXT": "v=spf1 mx ip4:198.51.100.0/24 -all"}, {"MX": [10, "mx.p19.example"]}]
    zone["_spf.p19.example"].append({"MX": [20, "mx2.p19.example"]})
    zone["mx.p19.example"] = [{"A": "198.51.100.25"}]
    zone["mx2.p19.example"] = [{"A": "198.51.100.26"}]
    cost[name] = 2
    return cost


RESELLERS = [f"_spf.p{k}.example" for k in range(16, 19)]


def _others(cost: dict[str, int]) -> list[str]:
    return [name for name in cost if name not in RESELLERS]


def _fill_terms(rng: random.Random, cost: dict[str, int], budget: int) -> tuple[list[str], int]:
    """Own-host terms and provider includes using at most ``budget`` lookups (at least one)."""
    terms: list[str] = []
    used = 0
    if rng.random() < 0.8:
        terms.append("mx")
        used += 1
    if rng.random() < 0.3 and used < budget:
        terms.append("a")
        used += 1
    candidates = _others(cost)
    rng.shuffle(candidates)
    for provider in candidates:
        if used + cost[provider] <= budget:
            terms.append(f"include:{provider}")
            used += cost[provider]
        if used >= budget:
            break
    return terms, used


def generate(count: int = 1000, seed: int = 7208) -> Dataset:
    """Build the zone: 60 % authorize the platform, 20 % lack it, 8 % permerror, 5 % no SPF, 4 % no MX, 3 % NXDOMAIN."""
    rng = random.Random(seed)
    data = Dataset()
    zone = data.zone
    cost = _providers(zone)
    shares = [
        ("authorized", 0.60),
        ("missing", 0.20),
        ("permerror", 0.08),
        ("nospf", 0.05),
        ("nomx", 0.04),
        ("nxdomain", 0.03),
    ]
    categories = [name for name, share in shares for _ in range(round(share * count))]
    categories = (categories + ["authorized"] * count)[:count]
    rng.shuffle(categories)
    for index, category in enumerate(categories):
        domain = f"c{index}.example"
        if category == "nxdomain":
            data.expected.append(Expected(domain, category, ["DOMAIN_UNREACHABLE"], False, False))
            continue
        items: list[Any] = [{"A": f"10.{index // 250}.{index % 250}.1"}]
        if category != "nomx":
            items.append({"MX": [10, f"mx1.{domain}"]})
            zone[f"mx1.{domain}"] = [{"A": f"10.{index // 250}.{index % 250}.25"}]
            if rng.random() < 0.5:
                items.append({"MX": [20, f"mx2.{domain}"]})
                zone[f"mx2.{domain}"] = [{"A": f"10.{index // 250}.{index % 250}.26"}]
        if rng.random() < 0.7:
            zone[f"_dmarc.{domain}"] = [{"TXT": "v=DMARC1; p=none; rua=mailto:dmarc@" + domain}]
        items.append({"TXT": f"google-site-verification={rng.getrandbits(64):016x}"})
        target = rng.randint(3, 9)
        expected: Expected
        if category in ("authorized", "nomx"):
            via_reseller = rng.random() < 0.3
            platform_term = f"include:{rng.choice(RESELLERS)}" if via_reseller else f"include:{PLATFORM}"
            platform_cost = 2 if via_reseller else 1
            terms, used = _fill_terms(rng, cost, max(target - platform_cost, 1))
            terms.insert(rng.randint(0, len(terms)), platform_term)
            record = "v=spf1 " + " ".join(terms) + rng.choice([" ~all", " -all"])
            problems = ["NO_MX_RECORDS"] if category == "nomx" else []
            expected = Expected(domain, category, problems, True, True, used + platform_cost)
        elif category == "missing":
            terms, used = _fill_terms(rng, cost, target)
            record = "v=spf1 " + " ".join(terms) + rng.choice([" ~all", " -all", " ?all"])
            expected = Expected(domain, category, ["SPF_NEEDS_UPDATE"], False, True, used)
        elif category == "permerror":
            record, used = _broken(rng, cost, domain, zone, items)
            expected = Expected(domain, category, ["SPF_NEEDS_UPDATE"], False, True, used)
        else:
            record = ""
            expected = Expected(domain, category, ["NO_SPF_RECORD"], False, False)
        if record:
            items.append({"TXT": record})
        zone[domain] = items
        data.expected.append(expected)
    return data


def _broken(rng: random.Random, cost: dict[str, int], domain: str, zone: Zone, items: list[Any]) -> tuple[str, int]:
    """A record that gives permerror before the platform include is reached."""
    kind = rng.choice(["limit", "syntax", "missing-include", "multiple", "loop"])
    if kind == "limit":
        terms, used = _fill_terms(rng, cost, 10)
        while used <= 10:
            terms.append(f"a:host{used}.{domain}")
            zone[f"host{used}.{domain}"] = [{"A": "10.9.9.9"}]
            used += 1
        return "v=spf1 " + " ".join(terms) + f" include:{PLATFORM} -all", used + 1
    if kind == "syntax":
        return f"v=spf1 mx ip4:10.0.0.300 include:{PLATFORM} -all", 2
    if kind == "missing-include":
        return f"v=spf1 include:_spf.gone.example include:{PLATFORM} -all", 2
    if kind == "multiple":
        items.append({"TXT": "v=spf1 mx -all"})
        return f"v=spf1 include:{PLATFORM} -all", 1
    zone[f"_spf.{domain}"] = [{"TXT": f"v=spf1 include:{domain} ~all"}]
    return f"v=spf1 include:_spf.{domain} include:{PLATFORM} -all", 11
