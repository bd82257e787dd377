"""`mailaccounts serve` runs the SMTP listener in its lifespan: the whole way from the CLI to the API."""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.mailflow.conftest import mail
from tests.mailflow.documents import MESSAGES

CLI = [sys.executable, "-m", "mailaccounts.cli"]
CREATE = """
mutation { createAccount(input: {email: "vertrieb@firma.example", senderName: "Vertrieb"}) {
  account { id inboundAddress } userErrors { code } } }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def wait_until_up(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "serve exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "serve did not start"
        time.sleep(0.1)


def test_serve_runs_the_smtp_listener(tmp_path: Path) -> None:
    """A message delivered with smtplib to SMTP_LISTEN of a running `mailaccounts serve` shows up in `messages`."""
    http_port, smtp_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{tmp_path}/serve/mailaccounts.sqlite3",
        "SECRET_KEY": "s" * 40,
        "MAILBOX_DOMAIN": "mailbox.example.com",
        "PORT": str(http_port),
        "SMTP_LISTEN": f"127.0.0.1:{smtp_port}",
        "LOG_LEVEL": "WARNING",
    }
    cli("migrate", env=env)
    token = cli("token", "create", "--tenant", "acme", "--scope", "write", env=env).strip().splitlines()[-1]
    proc = subprocess.Popen(
        [*CLI, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    try:
        base = f"http://127.0.0.1:{http_port}"
        wait_until_up(base, proc)
        account = graphql(base, token, CREATE)["createAccount"]["account"]
        inbound = account["inboundAddress"]
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            refused = client.sendmail("erika@extern.example", [inbound], mail(subject="Über serve", to=inbound))
        assert refused == {}
        connection = graphql(base, token, MESSAGES, {"id": account["id"]})["account"]["messages"]
        assert connection["totalCount"] == 1
        node = connection["edges"][0]["node"]
        assert (node["direction"], node["subject"], node["to"]) == ("INBOUND", "Über serve", inbound)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
