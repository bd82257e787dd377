"""`/healthz` reports whether the database answers."""

from __future__ import annotations

import socket

import httpx

from mailaccounts.app import build_app
from mailaccounts.database import database
from mailaccounts.settings import Settings


async def test_healthz_ok(client: httpx.AsyncClient) -> None:
    """With the database up, /healthz is 200 with JSON."""
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


async def test_healthz_503_when_database_does_not_answer() -> None:
    """With a database server that does not answer, /healthz and /graphql are 503 with JSON, not a crash."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgres://postgres@127.0.0.1:{port}/nothing"
    settings = Settings(database_url=url, secret_key="k" * 40)
    async with database(url):
        app = build_app(settings, manage_database=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            response = await http.get("/healthz")
            graphql = await http.post(
                "/graphql", json={"query": "{ accounts { totalCount } }"}, headers={"Authorization": "Bearer mat_x"}
            )
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "down"}
    assert graphql.status_code == 503
    assert graphql.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"


async def test_request_id_is_echoed_and_made_up(client: httpx.AsyncClient) -> None:
    """Each response carries X-Request-ID: the caller's when it is sane, otherwise a fresh one."""
    given = await client.get("/healthz", headers={"X-Request-ID": "abc12345-trace"})
    assert given.headers["x-request-id"] == "abc12345-trace"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-request-id"] != (await client.get("/healthz")).headers["x-request-id"]
