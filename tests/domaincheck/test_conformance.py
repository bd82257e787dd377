"""RFC 7208 / RFC 4408 conformance: every case of the openspf suites through the real DNS path.

Each case starts the loopback DNS server with its scenario's zone data and runs check_host() with a
fresh DnsClient. The suites are read from ``../shared/conformance/spf/`` next to the checkout or from
``.cache/pyspf-2.0.14/test/`` (written by ``tests/domaincheck/fetch_suite.py``). Without either the
tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from domaincheck.dns import DnsClient
from domaincheck.spf import check_host, split_sender
from tests.support.dns import LoopbackDnsServer

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITE_DIRS = (
    REPO_ROOT / ".." / "shared" / "conformance" / "spf",
    REPO_ROOT / ".cache" / "pyspf-2.0.14" / "test",
)
SUITES = ("rfc7208", "rfc4408")

# Deliberate deviations from the suites: test id -> reason. Documented in docs/SPF.md as well.
DEVIATIONS: dict[str, str] = {}


@dataclass(frozen=True)
class Case:
    """One test case with the zone data of its scenario."""

    suite: str
    name: str
    host: str
    mailfrom: str
    helo: str
    results: tuple[str, ...]
    explanation: str | None
    zonedata: dict[str, list[Any]]

    @property
    def id(self) -> str:
        """The pytest id, prefixed with the suite name."""
        return f"{self.suite}-{self.name}"


def suite_dir() -> Path | None:
    """The first folder that holds both suite files."""
    for folder in SUITE_DIRS:
        if all((folder / f"{suite}-tests.yml").is_file() for suite in SUITES):
            return folder.resolve()
    return None


def load_cases() -> list[Case]:
    """All cases of both suites, in file order."""
    folder = suite_dir()
    if folder is None:
        return []
    cases: list[Case] = []
    for suite in SUITES:
        with open(folder / f"{suite}-tests.yml", "rb") as stream:
            for scenario in yaml.safe_load_all(stream):
                if not scenario:
                    continue
                zonedata = scenario.get("zonedata") or {}
                for name, test in scenario["tests"].items():
                    result = test["result"]
                    results = tuple(result) if isinstance(result, list) else (result,)
                    cases.append(
                        Case(
                            suite,
                            str(name),
                            str(test["host"]),
                            str(test["mailfrom"]),
                            str(test["helo"]),
                            results,
                            test.get("explanation"),
                            zonedata,
                        )
                    )
    return cases


CASES = load_cases()


def _params() -> list[Any]:
    params: list[Any] = []
    for case in CASES:
        marks = [pytest.mark.xfail(reason=DEVIATIONS[case.id], strict=True)] if case.id in DEVIATIONS else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.asyncio
@pytest.mark.parametrize("case", _params())
async def test_conformance(case: Case) -> None:
    """check_host() over real DNS returns one of the listed results and the expected explanation."""
    async with LoopbackDnsServer(case.zonedata) as server:
        # The suite's TIMEOUT names cost one lifetime each; 1.2 s keeps a loaded machine's slow answers in time.
        client = DnsClient([server.address], timeout=0.3, lifetime=1.2)
        _, _, domain = split_sender(case.mailfrom, case.helo)
        async with asyncio.timeout(10):
            result = await check_host(
                case.host, domain, case.mailfrom, case.helo, dns=client, default_explanation="DEFAULT"
            )
    assert result.result in case.results, result
    if case.explanation is not None:
        assert result.explanation == case.explanation, result


def test_suite_is_available() -> None:
    """The conformance suites are found (a skip outside CI, a failure under CI=true)."""
    if CASES:
        counts = {suite: sum(1 for c in CASES if c.suite == suite) for suite in SUITES}
        assert counts == {"rfc7208": 203, "rfc4408": 191}
        return
    reason = (
        "SPF conformance suite not found in ../shared/conformance/spf or .cache/pyspf-2.0.14/test; "
        "run `python tests/domaincheck/fetch_suite.py`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
