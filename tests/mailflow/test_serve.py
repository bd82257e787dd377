"""`mailaccounts serve` runs the SMTP listener in its lifespan: the whole way from the CLI to the API."""

from __future__ import annotations

import os
import smtplib
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.support.documents import MESSAGES
from tests.support.factories import mail
from tests.support.serve import CLI, serve

CREATE = """
mutation { createAccount(input: {email: "vertrieb@firma.example", senderName: "Vertrieb"}) {
  account { id inboundAddress } userErrors { code } } }"""


def cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def graphql(base: str, token: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def test_serve_runs_the_smtp_listener(tmp_path: Path) -> None:
    """A message delivered with smtplib to SMTP_LISTEN of a running `mailaccounts serve` shows up in `messages`."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{tmp_path}/serve/mailaccounts.sqlite3",
        "SECRET_KEY": "s" * 40,
        "MAILBOX_DOMAIN": "mailbox.example.com",
    }
    cli("migrate", env=env)
    token = cli("token", "create", "--tenant", "acme", "--scope", "write", env=env).strip().splitlines()[-1]
    with serve(env) as served:
        account = graphql(served.base_url, token, CREATE)["createAccount"]["account"]
        inbound = account["inboundAddress"]
        with smtplib.SMTP("127.0.0.1", served.smtp_port, timeout=10) as client:
            refused = client.sendmail("erika@extern.example", [inbound], mail(subject="Über serve", to=inbound))
        assert refused == {}
        connection = graphql(served.base_url, token, MESSAGES, {"id": account["id"]})["account"]["messages"]
        assert connection["totalCount"] == 1
        node = connection["edges"][0]["node"]
        assert (node["direction"], node["subject"], node["to"]) == ("INBOUND", "Über serve", inbound)


async def test_smtp_command_runs_the_listener_alone(db: str) -> None:
    """`mailaccounts smtp` alone stores a delivered message in the database and stops cleanly on SIGTERM."""
    import asyncio

    from orm.models import Message
    from resolvers.accounts import create_account
    from resolvers.tokens import ensure_tenant
    from tests.support.serve import free_port

    tenant = await ensure_tenant("acme")
    account = await create_account(tenant.id, "vertrieb@firma.example", "Vertrieb")
    inbound = f"p{account.mailbox_number}@mailbox.example.com"
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "MAILBOX_DOMAIN": "mailbox.example.com",
        "SMTP_LISTEN": f"127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        *CLI, "smtp", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            assert b"SMTP listener on" in await proc.stdout.readline()

        def deliver() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                return client.sendmail("erika@extern.example", [inbound], mail(subject="Nur SMTP", to=inbound))

        assert await asyncio.to_thread(deliver) == {}
        assert await Message.filter(account_id=account.id).values_list("subject", flat=True) == ["Nur SMTP"]
    finally:
        proc.terminate()
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
