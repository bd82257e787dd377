"""Fixtures for the domaincheck tests: a loopback DNS server and a resolver pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

import pytest_asyncio

from domaincheck.dns import DnsClient
from tests.support.dns import LoopbackDnsServer, StartServer

ZoneData = Mapping[str, Sequence[Any]]


@pytest_asyncio.fixture
async def loopback_dns() -> AsyncIterator[StartServer]:
    """Start loopback servers from zone data; each comes with a fresh DnsClient using short timeouts."""
    async with AsyncExitStack() as stack:

        async def start(zone: ZoneData, **options: Any) -> tuple[LoopbackDnsServer, DnsClient]:
            server = await stack.enter_async_context(LoopbackDnsServer(zone, **options))
            client = DnsClient([server.address], timeout=0.5, lifetime=1.5)
            return server, client

        yield start
