"""`mailaccounts spf`: the domain report and check_host for a client address, against loopback DNS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.dns import ThreadedDnsServer
from tests.support.zones import ZONE

CLI = [sys.executable, "-m", "mailaccounts.cli", "spf"]


@pytest.fixture(scope="module")
def dns_env() -> Iterator[dict[str, str]]:
    with ThreadedDnsServer(
        {
            **ZONE,
            "exp.example": [{"TXT": "v=spf1 -ip4:192.0.2.9 exp=why.exp.example ?all"}],
            "why.exp.example": [{"TXT": "%{i} ist nicht erlaubt"}],
        }
    ) as server:
        host, port = server.address
        yield {**os.environ, "DNS_NAMESERVERS": f"{host}:{port}", "DNS_TIMEOUT": "2"}


def spf(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)


def test_report_as_text(dns_env: dict[str, str]) -> None:
    """The text report names the problem in German, the record, the suggestion and the tree; exit 1."""
    result = spf(dns_env, "vertrieb@alt.example")
    assert result.returncode == 1, result.stderr
    assert "SPF_NEEDS_UPDATE: Für die Domain alt.example ist ein SPF-Eintrag hinterlegt" in result.stdout
    assert "Vorschlag:   v=spf1 mx include:_spf.anbieter.example include:_spf.aranes.de ~all" in result.stdout
    assert "include:_spf.anbieter.example -> _spf.anbieter.example" in result.stdout


def test_report_as_json_has_the_graphql_field_names(dns_env: dict[str, str]) -> None:
    """--json prints the report with the GraphQL names; an ok domain exits 0."""
    result = spf(dns_env, "gut.example", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {
        "ok",
        "domain",
        "checkedAt",
        "record",
        "suggestedRecord",
        "lookupCount",
        "mxHosts",
        "dmarcRecord",
        "problems",
        "findings",
    } <= set(report)
    assert report["ok"] is True
    assert report["mxHosts"] == ["mx.gut.example"]


@pytest.mark.parametrize(
    ("target", "ip", "expected"),
    [
        ("gut.example", "192.0.2.77", {"result": "pass", "explanation": None, "term": "include:_spf.aranes.de"}),
        ("alt.example", "192.0.2.77", {"result": "softfail", "explanation": None, "term": "~all"}),
        (
            "info@exp.example",
            "192.0.2.9",
            {"result": "fail", "explanation": "192.0.2.9 ist nicht erlaubt", "term": "-ip4:192.0.2.9"},
        ),
        ("ohnespf.example", "192.0.2.1", {"result": "none", "explanation": None, "term": None}),
        ("zuviel.example", "192.0.2.1", {"result": "permerror", "explanation": None, "term": "include:n10.example"}),
    ],
)
def test_check_host_for_a_client_address(
    dns_env: dict[str, str], target: str, ip: str, expected: dict[str, object]
) -> None:
    """--ip prints check_host's result, the explanation and the deciding term, as JSON with --json."""
    result = spf(dns_env, target, "--ip", ip, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected
    text = spf(dns_env, target, "--ip", ip)
    assert text.stdout.splitlines()[0] == f"result: {expected['result']}"
