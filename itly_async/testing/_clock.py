"""A virtual clock for tests: retry waits and backoff take no real time.

Pass ``clock=vc.now``, ``sleep=vc.sleep`` and ``rng=vc.rng`` to ``Client``. Every timed
wait of the client then jumps the clock forward instead of waiting, and ``vc.waits``
records how long each wait would have been (for example, 30 s for a throttled user).
"""

from __future__ import annotations

import asyncio
import random


class _ZeroRandom(random.Random):
    """A ``random.Random`` whose ``random()`` is always 0: full jitter gives no delay."""

    def random(self) -> float:
        return 0.0


class VirtualClock:
    """Monotonic time that moves only when the client sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self.waits: list[float] = []
        self.rng: random.Random = _ZeroRandom()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._now += max(seconds, 0.0)
        await asyncio.sleep(0)
