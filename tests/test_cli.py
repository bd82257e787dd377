"""The `mailaccounts` command: migrate, token management, serve with health check, settings errors."""

from __future__ import annotations

import httpx
import pytest

from tests.support.serve import free_port, run, serve


# tests/dashboard/ imports `env` and `run` from here; the fixture is the conftest one, kept until it stops.
def test_token_lifecycle(env: dict[str, str]) -> None:
    """token create prints the token alone on the last line; list shows it; revoke revokes it once."""
    run("migrate", env=env)
    created = run("token", "create", "--tenant", "acme", "--scope", "read", "--name", "Partner X", env=env)
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("mat_") and " " not in token
    listing = run("token", "list", "--tenant", "acme", env=env).stdout
    assert "acme\tread\tPartner X" in listing and "active" in listing
    assert token not in listing
    token_id = listing.split("\t", 1)[0]
    run("token", "revoke", token_id, env=env)
    assert "revoked" in run("token", "list", env=env).stdout
    again = run("token", "revoke", token_id, env=env, check=False)
    assert again.returncode == 2
    assert again.stderr.startswith("mailaccounts: no active token")


def test_migrate_is_idempotent(env: dict[str, str]) -> None:
    """Running migrate twice is fine; the second run applies nothing."""
    run("migrate", env=env)
    assert run("migrate", env=env).returncode == 0


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "abc", "PORT='abc' is not a whole number"),
        ("PORT", "70000", "PORT=70000 is out of range"),
        ("DATABASE_URL", "mysql//x", "DATABASE_URL='mysql//x' is not a database URL"),
        ("MAILBOX_DOMAIN", "kein domain", "MAILBOX_DOMAIN='kein domain' is not a domain name"),
        ("SECRET_KEY", "kurz", "SECRET_KEY is too short"),
        ("SECRET_KEY", "", "SECRET_KEY is not set"),
    ],
)
def test_bad_setting_stops_with_one_line(env: dict[str, str], name: str, value: str, expected: str) -> None:
    """A missing or malformed setting stops `serve` with one clear line on stderr and exit status 2."""
    result = run("serve", env={**env, name: value}, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"mailaccounts: {result.stderr.strip().split(': ', 1)[1]}"]
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line(env: dict[str, str]) -> None:
    """migrate against a database server that is not there fails with one line, not a traceback."""
    port = free_port()
    result = run("migrate", env={**env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/x"}, check=False)
    assert result.returncode == 2
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_first_start_prints_demo_token_and_serves(env: dict[str, str]) -> None:
    """serve --demo on an empty database prints a working write token; /healthz answers 200."""
    run("migrate", env=env)
    with serve(env, "--demo", read_until="curl") as served:
        token = next(line.strip() for line in served.output if line.strip().startswith("mat_"))
        health = httpx.get(f"{served.base_url}/healthz", timeout=5)
        assert health.json() == {"status": "ok", "database": "up"}
        created = httpx.post(
            f"{served.base_url}/graphql",
            json={
                "query": 'mutation { createAccount(input: {email: "a@firma.example", senderName: "A"}) '
                "{ account { inboundAddress } userErrors { code } } }"
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        assert created["data"]["createAccount"]["account"]["inboundAddress"].startswith("p")
