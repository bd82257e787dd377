"""Talking to the app under test: the mailbox domain its test settings use, a GraphQL client per token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

MAILBOX_DOMAIN = "mailbox.example.com"


@dataclass
class Api:
    """Runs GraphQL documents over HTTP as one token would."""

    http: httpx.AsyncClient
    token: str
    lang: str | None = None

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.lang:
            headers["Accept-Language"] = self.lang
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a document that must succeed; returns `data`."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def errors(self, query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a document that must fail at the top level; returns `errors`."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        errors: list[dict[str, Any]] = response.json()["errors"]
        return errors
