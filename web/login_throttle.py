"""Login rate limit: failed sign-ins counted per client address and email, in memory, per process."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """At most `limit` failures per (address, email) within `window` seconds; then sign-in waits.

    Memory is bounded: beyond `max_keys` the keys unused longest are forgotten first.
    """

    def __init__(
        self,
        limit: int = 5,
        window: float = 15 * 60,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    @staticmethod
    def _key(address: str, email: str) -> tuple[str, str]:
        return (address, email.strip().casefold()[:320])

    def _recent(self, key: tuple[str, str]) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, address: str, email: str) -> float:
        """Seconds until this pair may try again; 0 when it may try now."""
        failures = self._recent(self._key(address, email))
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window - self.clock())

    def failed(self, address: str, email: str) -> None:
        """Count one failed sign-in."""
        key = self._key(address, email)
        failures = self._recent(key) or deque(maxlen=self.limit)
        failures.append(self.clock())
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, address: str, email: str) -> None:
        """Forget the failures of this pair after a successful sign-in."""
        self._failures.pop(self._key(address, email), None)
