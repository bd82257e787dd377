"""Fixtures for the domaincheck tests: a loopback DNS server and a resolver pointed at it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest_asyncio

# The helpers next to the tests (dns_server.py) are imported as top-level modules, whatever the
# pytest import mode, so the benchmark in bench/spf/ can import them the same way.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from dns_server import LoopbackDnsServer, StartServer  # noqa: E402

from domaincheck.dns import DnsClient  # noqa: E402

ZoneData = Mapping[str, Sequence[Any]]


@pytest_asyncio.fixture
async def loopback_dns() -> AsyncIterator[StartServer]:
    """Start loopback servers from zone data; each comes with a fresh DnsClient using short timeouts."""
    async with AsyncExitStack() as stack:

        async def start(zone: ZoneData, **options: Any) -> tuple[LoopbackDnsServer, DnsClient]:
            server = await stack.enter_async_context(LoopbackDnsServer(zone, **options))
            client = DnsClient([server.address], timeout=0.2, lifetime=0.6)
            return server, client

        yield start
