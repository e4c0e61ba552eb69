"""The sink's ceiling: how many events/s it acknowledges when nothing else is slow.

``python -m benchmarks.ceiling --sink URL --seconds S`` posts one pre-serialized
200-event Amplitude batch over and over from a few keep-alive connections, so the
client does no per-event work, and reports what the sink acknowledged. The load
generator is Python too, so the figure is a lower bound of the sink's capacity; the
sink's own CPU per event (from its ``process_time``) gives the bound it would reach on a
core of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import orjson

from benchmarks._harness import Sink, emit
from benchmarks.workload import API_KEY, BATCH_SIZE, EVENT_NAME, USER_ID, properties

CONCURRENCY = 4


def batch_body(n: int = BATCH_SIZE) -> bytes:
    """An Amplitude HTTP V2 body shaped like the ones the SDKs send."""
    now = int(time.time() * 1000)
    events = [
        {
            "event_type": EVENT_NAME,
            "user_id": USER_ID,
            "time": now + i,
            "insert_id": f"5f1d8c3a9b2e4d70-{i:x}",
            "event_properties": properties(i),
            "library": "itly-async/0.1.0",
        }
        for i in range(n)
    ]
    return orjson.dumps({"api_key": API_KEY, "events": events})


async def _blast(url: str, body: bytes, seconds: float) -> int:
    sent = 0
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal sent
            while time.monotonic() < deadline:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        sent += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return sent


def measure(sink_url: str, seconds: float) -> dict[str, float]:
    sink = Sink(sink_url)
    body = batch_body()
    asyncio.run(_blast(sink.url + "/2/httpapi", body, 0.3))  # warm up connections
    sink.reset()
    t0 = time.monotonic()
    asyncio.run(_blast(sink.url + "/2/httpapi", body, seconds))
    elapsed = time.monotonic() - t0
    stats = sink.stats()
    events = int(stats["events"])
    cpu = float(stats["cpu_seconds"])
    return {
        "events_per_s": events / elapsed,
        "requests_per_s": int(stats["requests"]) / elapsed,
        "batch_bytes": len(body),
        "sink_cpu_us_per_event": cpu / events * 1e6 if events else float("nan"),
        "sink_cpu_bound_events_per_s": events / cpu if cpu else float("nan"),
        "concurrency": CONCURRENCY,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ceiling")
    parser.add_argument("--sink", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    emit(measure(args.sink, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
