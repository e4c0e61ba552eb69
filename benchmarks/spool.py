"""What the durable spool costs a call: ``python -m benchmarks.spool``.

Microseconds per ``await client.track()`` with no spool, with ``write_through`` (the call
returns once its event is committed to SQLite) for one producer and for ten concurrent
producers (they share commits), and with ``write_behind`` (the call returns at once).
Delivery goes to a local collector on loopback; median of three runs each. The README's
"Delivery guarantees" section quotes these figures.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

from itly_async import AmplitudeOptions, Client, DeliveryOptions, Environment, Options
from itly_async.testing import Collector

SpoolMode = Literal["write_through", "write_behind"]

#: (spool mode or None, concurrent producers, calls in all)
CASES: tuple[tuple[SpoolMode | None, int, int], ...] = (
    (None, 1, 20_000),
    ("write_through", 1, 2_000),
    ("write_through", 10, 5_000),
    ("write_behind", 1, 20_000),
)
RUNS = 3


async def _run(mode: SpoolMode | None, producers: int, calls: int) -> float:
    async with Collector() as collector:
        with tempfile.TemporaryDirectory(prefix="itly-spool-bench-") as tmp:
            delivery = (
                DeliveryOptions(spool_path=str(Path(tmp) / "events.sqlite"), spool_mode=mode)
                if mode
                else DeliveryOptions()
            )
            client = Client()
            client.load(
                Options(
                    environment=Environment.PRODUCTION,
                    logger=None,
                    destinations={
                        "amplitude": AmplitudeOptions(
                            api_key="bench-key-0123456789", server_url=collector.amplitude_url
                        )
                    },
                    delivery=delivery,
                )
            )
            await client.track("user-00000", "Warm Up", {"i": 0})
            await client.flush(10.0)

            async def producer(k: int) -> None:
                for i in range(calls // producers):
                    await client.track(f"user-{i:05d}", "Spooled", {"i": i, "producer": k})

            started = time.perf_counter()
            await asyncio.gather(*(producer(k) for k in range(producers)))
            per_call = (time.perf_counter() - started) / calls * 1e6
            await client.shutdown(10.0)
            return per_call


async def _main() -> None:
    print("spool cost per await client.track(), median of 3 runs (us):")
    for mode, producers, calls in CASES:
        runs = [await _run(mode, producers, calls) for _ in range(RUNS)]
        spread = ", ".join(f"{r:.1f}" for r in sorted(runs))
        label = f"{mode or 'no spool'}, {producers} producer{'s' if producers > 1 else ''}"
        print(f"  {label:30s} {statistics.median(runs):8.1f}   ({spread})")


if __name__ == "__main__":
    asyncio.run(_main())
