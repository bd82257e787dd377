"""Fixed-window counters in the database, so every instance on one database shares each limit.

One statement per spend: an upsert that adds the points and returns the window's new total. The API
rate limit and the sign-in throttle both count here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from tortoise import connections

from orm.models import RateCounter

__all__ = ["RateWindow", "client_network", "counted", "prune_counters", "spend"]


@dataclass(frozen=True)
class RateWindow:
    """The state of one key's current window after a spend."""

    points: int
    limit: int
    retry_after: float

    @property
    def exceeded(self) -> bool:
        return self.points > self.limit


def client_network(host: str) -> str:
    """What a client counts as in a per-client limit: its IPv4 address, or its IPv6 /64.

    An IPv4-mapped IPv6 address (a dual-stack listener) counts as its IPv4 address. IPv6 counts per /64
    because one end site holds a whole /64 and could otherwise take each attempt from a new address.
    Anything that is no address is returned as it is (cut to 100 characters).
    """
    try:
        address = ip_address(host.split("%", 1)[0])  # an IPv6 zone id ("%eth0") is no part of the address
    except ValueError:
        return host[:100]
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ip_network(f"{address}/64", strict=False))
    return str(address)


def _window_start(now: float, window: int) -> int:
    return int(now // window) * window


async def spend(
    key: str, points: int, *, limit: int, window: int, clock: Callable[[], float] = time.time
) -> RateWindow:
    """Add `points` to `key` in the current window of `window` seconds and return the window's total.

    `exceeded` is true once the total passes `limit`; `retry_after` is the time left in the window.
    """
    now = clock()
    start = _window_start(now, window)
    conn = connections.get("default")
    # Both SQLite (3.35+) and PostgreSQL know INSERT … ON CONFLICT … RETURNING; placeholders differ.
    p1, p2, p3 = ("$1", "$2", "$3") if conn.capabilities.dialect == "postgres" else ("?", "?", "?")
    rows = await conn.execute_query_dict(
        f'INSERT INTO "rate_counter" ("key", "window_start", "points") VALUES ({p1}, {p2}, {p3}) '
        'ON CONFLICT ("key", "window_start") DO UPDATE SET "points" = "rate_counter"."points" + excluded."points" '
        'RETURNING "points"',
        [key[:200], start, points],
    )
    total = int(rows[0]["points"])
    return RateWindow(points=total, limit=limit, retry_after=max(0.0, start + window - now))


async def counted(key: str, *, window: int, clock: Callable[[], float] = time.time) -> int:
    """The points spent under `key` in the current window, without spending any."""
    start = _window_start(clock(), window)
    row = await RateCounter.get_or_none(key=key[:200], window_start=start)
    return row.points if row else 0


async def prune_counters(older_than: float, *, clock: Callable[[], float] = time.time) -> int:
    """Delete windows that started more than `older_than` seconds ago; the number deleted."""
    return await RateCounter.filter(window_start__lt=int(clock() - older_than)).delete()
