"""`make soak`: the fault-injection suite at scale, bounded to about two minutes.

Tracks events from several producers into Amplitude and Segment collectors that answer
with 20% 5xx, 10% 429, 5% dropped connections (half of them after accepting the
events), 413 above 100 events and latency spikes, then flushes and prints: tracked,
delivered, rejected, dropped, wire duplicates by id, and peak RSS. Exits 1 if any event
was lost or any id was reused for a different event.

    python scripts/soak.py [--events 300000] [--seconds 100]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import resource
import sys
import time
from collections import Counter
from multiprocessing.synchronize import Event

from itly_async import (
    AmplitudeOptions,
    Client,
    DeliveryOptions,
    DeliveryReport,
    Environment,
    Options,
    SegmentOptions,
)
from itly_async.testing import Collector, VirtualClock, chaos


class QuietLogger:
    """Counts log lines instead of printing a flood of rate-limited errors."""

    def __init__(self) -> None:
        self.lines: Counter[str] = Counter()

    def debug(self, message: str) -> None:
        self.lines["debug"] += 1

    def info(self, message: str) -> None:
        self.lines["info"] += 1

    def warn(self, message: str) -> None:
        self.lines["warn"] += 1

    def error(self, message: str) -> None:
        self.lines["error"] += 1


def serve(urls: mp.Queue[str], stop: Event, results: mp.Queue[dict[str, object]]) -> None:
    """The collector, in a child process, so the parent's RSS is the client's alone."""

    async def run() -> None:
        async with Collector() as collector:
            collector.add_rule(chaos(11, spike=0.05))
            urls.put(collector.url)
            await asyncio.to_thread(stop.wait)
            results.put(wire_summary(collector))

    asyncio.run(run())


def wire_summary(collector: Collector) -> dict[str, object]:
    amp = Counter(e["insert_id"] for e in collector.amplitude_events())
    seg = Counter(m["messageId"] for m in collector.segment_messages())
    wire: Counter[tuple[str, str]] = Counter()
    bodies: dict[tuple[str, str], object] = {}
    reused = 0
    for request in collector.requests:
        for event in request.events:
            key = ("a", event["insert_id"]) if "insert_id" in event else ("s", event["messageId"])
            wire[key] += 1
            shape = {k: v for k, v in event.items() if k != "sentAt"}
            if key in bodies and bodies[key] != shape:
                reused += 1
            bodies[key] = shape
    statuses = Counter(str(r.status) for r in collector.requests)
    return {
        "amplitude": len(amp),
        "segment": len(seg),
        "duplicates": sum(n - 1 for n in wire.values()),
        "accepted_twice": sum(n - 1 for n in amp.values()) + sum(n - 1 for n in seg.values()),
        "reused": reused,
        "statuses": dict(statuses),
    }


async def soak(url: str, events: int, seconds: float) -> tuple[int, DeliveryReport, float]:
    vclock = VirtualClock()
    client = Client(clock=vclock.now, sleep=vclock.sleep, rng=random.Random(5))
    client.load(
        Options(
            environment=Environment.PRODUCTION,
            logger=QuietLogger(),
            destinations={
                "amplitude": AmplitudeOptions(api_key="soak-key-1", server_url=url + "/2/httpapi"),
                "segment": SegmentOptions(write_key="soak-key-2", host=url),
            },
            delivery=DeliveryOptions(
                flush_queue_size=200, max_queue_size=50_000, max_retries=60, overflow="block"
            ),
        )
    )
    started = time.monotonic()
    deadline = started + seconds * 0.8
    tracked = 0

    async def producer(k: int, share: int) -> None:
        nonlocal tracked
        for i in range(share):
            await client.track(f"user-{(k * 7919 + i) % 2000:05d}", "Soak", {"k": k, "i": i})
            tracked += 1
            if i % 500 == 0:
                await asyncio.sleep(0)
                if time.monotonic() > deadline:
                    return

    producers = 8
    await asyncio.gather(*(producer(k, events // producers) for k in range(producers)))
    produced_in = time.monotonic() - started
    await client.flush(timeout=max(10.0, seconds - produced_in))
    report = await client.shutdown(timeout=5)
    return tracked, report, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seconds", type=float, default=100.0)
    args = parser.parse_args()
    urls: mp.Queue[str] = mp.Queue()
    results: mp.Queue[dict[str, object]] = mp.Queue()
    stop = mp.Event()
    server = mp.Process(target=serve, args=(urls, stop, results), daemon=True)
    server.start()
    try:
        url = urls.get(timeout=30)
        tracked, report, elapsed = asyncio.run(soak(url, args.events, args.seconds))
        stop.set()
        wire = results.get(timeout=120)
    finally:
        stop.set()
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    amp, seg = int(str(wire["amplitude"])), int(str(wire["segment"]))
    lost = (tracked - amp) + (tracked - seg)
    statuses = wire["statuses"]
    assert isinstance(statuses, dict)
    rows = [
        ("events tracked", f"{tracked:,}"),
        ("delivered (amplitude / segment, distinct ids)", f"{amp:,} / {seg:,}"),
        ("rejected", f"{report.rejected:,}"),
        ("dropped", f"{report.dropped:,}"),
        ("lost", f"{lost:,}"),
        ("requests by status", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))),
        ("wire duplicates by id (resends)", f"{wire['duplicates']:,}"),
        ("accepted twice by the collector (same id)", f"{wire['accepted_twice']:,}"),
        ("ids reused for a different event", f"{wire['reused']:,}"),
        ("retries counted by the client", f"{report.stats.retried:,}"),
        ("peak RSS of the client process", f"{rss_mb:.0f} MB"),
        ("wall time", f"{elapsed:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print("itly-async soak")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    ok = lost == 0 and wire["reused"] == 0 and report.rejected == 0 and report.dropped == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
