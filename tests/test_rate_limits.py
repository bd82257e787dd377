"""The database counters behind the API rate limit and the sign-in throttle."""

from __future__ import annotations

import asyncio
import time

from mailaccounts.app import rate_counter_pruning
from resolvers.rate_limits import counted, prune_counters, spend


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_spend_adds_up_within_a_window_and_starts_over_in_the_next(db: str) -> None:
    """Points add up per key and window; a new window starts from zero and says how long is left."""
    clock = FakeClock(1_000_000.0)
    first = await spend("api:1", 5, limit=8, window=60, clock=clock)
    assert (first.points, first.exceeded) == (5, False)
    clock.now += 10
    second = await spend("api:1", 5, limit=8, window=60, clock=clock)
    assert (second.points, second.exceeded) == (10, True)
    assert 0 < second.retry_after <= 60
    assert await counted("api:2", window=60, clock=clock) == 0
    clock.now += 60
    third = await spend("api:1", 1, limit=8, window=60, clock=clock)
    assert (third.points, third.exceeded) == (1, False)


async def test_concurrent_spends_lose_no_points(db: str) -> None:
    """Twenty concurrent spends on one key count twenty points: the upsert is one atomic statement."""
    clock = FakeClock(2_000_000.0)
    await asyncio.gather(*(spend("login-address:192.0.2.1", 1, limit=100, window=900, clock=clock) for _ in range(20)))
    assert await counted("login-address:192.0.2.1", window=900, clock=clock) == 20


async def test_prune_deletes_old_windows_only(db: str) -> None:
    """Pruning removes windows older than the given age and keeps the current one."""
    clock = FakeClock(3_000_000.0)
    await spend("k", 1, limit=10, window=60, clock=clock)
    clock.now += 3600
    await spend("k", 1, limit=10, window=60, clock=clock)
    assert await prune_counters(600, clock=clock) == 1
    assert await counted("k", window=60, clock=clock) == 1


async def test_the_service_prunes_ended_windows_in_the_background(db: str) -> None:
    """rate_counter_pruning (in every serve lifespan) deletes windows older than a day and keeps current ones."""
    day_old = FakeClock(time.time() - 2 * 24 * 3600)
    await spend("api:old", 1, limit=10, window=60, clock=day_old)
    await spend("api:new", 1, limit=10, window=60)
    async with rate_counter_pruning(interval=0.05):
        for _ in range(200):
            if await counted("api:old", window=60, clock=day_old) == 0:
                break
            await asyncio.sleep(0.05)
    assert await counted("api:old", window=60, clock=day_old) == 0
    assert await counted("api:new", window=60) == 1
