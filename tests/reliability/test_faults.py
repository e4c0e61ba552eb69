"""Fault injection: nothing lost, nothing hangs, every wire duplicate carries the same id."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from itly_async import (
    AmplitudeOptions,
    Client,
    DeliveryOptions,
    Environment,
    Options,
    SegmentOptions,
)
from itly_async.testing import Collector, Fault, RecordedRequest, VirtualClock, chaos
from tests.helpers import AMP_KEY, SEG_KEY, ListLogger, eventually


def resilient_client(
    collector: Collector, vclock: VirtualClock, rng: random.Random | None = None, **delivery: Any
) -> Client:
    client = Client(clock=vclock.now, sleep=vclock.sleep, rng=rng or vclock.rng)
    client.load(
        Options(
            environment=Environment.PRODUCTION,
            logger=ListLogger(),
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url),
                "segment": SegmentOptions(write_key=SEG_KEY, host=collector.segment_host),
            },
            delivery=DeliveryOptions(
                **{"flush_queue_size": 200, "max_retries": 40, "max_queue_size": 40_000, **delivery}
            ),
        )
    )
    return client


def assert_duplicates_share_ids(collector: Collector) -> int:
    """Every copy of an id on the wire is the same event; returns the number of copies."""
    seen: dict[tuple[str, str], bytes] = {}
    copies = 0
    for request in collector.requests:
        for event in request.events:
            # the same event carries the same id to both destinations, in different shapes
            key = (
                ("amplitude", event["insert_id"])
                if "insert_id" in event
                else (
                    "segment",
                    event["messageId"],
                )
            )
            body = orjson.dumps(
                {k: v for k, v in event.items() if k != "sentAt"}, option=orjson.OPT_SORT_KEYS
            )
            if key in seen:
                copies += 1
                assert seen[key] == body, f"id {key} was reused for a different event"
            seen[key] = body
    return copies


async def test_twenty_thousand_events_survive_chaos(
    collector: Collector, vclock: VirtualClock
) -> None:
    collector.add_rule(chaos(seed=7))
    client = resilient_client(collector, vclock)
    for i in range(20_000):
        await client.track(f"user-{i % 500:04d}", "Chaos", {"i": i})
    report = await client.flush(timeout=120)

    assert not report.timed_out, report.stats
    assert report.rejected == 0
    assert report.dropped == 0
    amp = Counter(e["insert_id"] for e in collector.amplitude_events())
    seg = Counter(m["messageId"] for m in collector.segment_messages())
    assert len(amp) == 20_000
    assert len(seg) == 20_000
    assert set(amp) == set(seg)
    statuses = Counter(r.status for r in collector.requests)
    assert statuses[413]
    assert statuses[429]
    assert statuses[None]  # dropped connections
    assert statuses[503] + statuses[500]
    assert assert_duplicates_share_ids(collector) > 0  # ingest=True faults made real duplicates
    await client.shutdown(timeout=5)


async def test_endpoint_down_then_back_delivers_everything(
    collector: Collector, vclock: VirtualClock
) -> None:
    back_at = vclock.now() + 8.0  # down for eight (virtual) seconds, then healthy

    def outage(request: RecordedRequest) -> Fault | None:
        if vclock.now() < back_at:
            return Fault(drop=True) if request.index % 2 else Fault(status=503)
        return None

    collector.add_rule(outage)
    # a seeded rng: backoff takes (virtual) time, as it would in a real outage
    client = resilient_client(collector, vclock, random.Random(3), flush_queue_size=50)
    for i in range(1000):
        await client.track(f"user-{i:04d}", "Outage", {"i": i})
    report = await client.flush(timeout=60)

    assert report.delivered == 2000  # 1000 to each destination
    assert len({e["insert_id"] for e in collector.amplitude_events()}) == 1000
    assert vclock.now() >= back_at
    assert sum(r.status != 200 for r in collector.requests) > 10
    await client.shutdown(timeout=5)


async def test_amplitude_429_delays_throttled_users_only(
    collector: Collector, vclock: VirtualClock
) -> None:
    collector.fail(
        429,
        path="/2/httpapi",
        body={
            "code": 429,
            "error": "Too many requests for some devices and users",
            "eps_threshold": 30,
            "throttled_users": {"user-hot": 31},
            "exceeded_daily_quota_users": {"user-spam": 500001},
        },
    )
    client = resilient_client(collector, vclock)
    await client.track("user-hot", "Click", {"n": 1})
    await client.track("user-calm", "Click", {"n": 2})
    await client.track("user-spam", "Click", {"n": 3})
    report = await client.flush(timeout=30)

    accepted = [e["user_id"] for e in collector.amplitude_events()]
    assert accepted == ["user-calm", "user-hot"]  # the calm user did not wait for the hot one
    assert 30.0 in vclock.waits
    amplitude = report.stats.destinations["amplitude"]
    assert amplitude.rejected == 1
    assert any("quota" in reason for reason in amplitude.rejected_by_reason)
    await client.shutdown(timeout=5)


async def test_segment_429_honours_retry_after(collector: Collector, vclock: VirtualClock) -> None:
    collector.fail(429, path="/v1/batch", headers={"Retry-After": "7"})
    client = resilient_client(collector, vclock)
    await client.track("user-0001", "Click")
    report = await client.flush(timeout=30)
    assert report.delivered == 2
    assert 7.0 in vclock.waits
    await client.shutdown(timeout=5)


async def test_configuration_error_is_logged_once_loudly(
    collector: Collector, vclock: VirtualClock
) -> None:
    collector.fail(401, times=None, path="/2/httpapi")
    logger = ListLogger()
    client = Client(clock=vclock.now, sleep=vclock.sleep, rng=vclock.rng)
    client.load(
        Options(
            logger=logger,
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            delivery=DeliveryOptions(max_retries=3, max_retry_duration=3600),
        )
    )
    await client.track("user-0001", "Click")
    report = await client.flush(timeout=30)
    # flush stops waiting once the destination refuses: nothing changes before the next
    # probe, minutes away; the report says why the event is not delivered
    assert not report.timed_out
    assert report.stats.destinations["amplitude"].refusing.startswith("HTTP 401")

    await eventually(lambda: client.stats().rejected == 1, "the retry budget runs out")
    assert sum(r.status == 401 for r in collector.requests) == 4  # first try + 3 retries
    refused = [m for _, m in logger.lines if "refused the request" in m]
    assert len(refused) == 1
    assert "'amplitude'" in refused[0]
    assert AMP_KEY not in logger.text()
    report = await client.flush(timeout=30)
    assert report.rejected == 1
    assert report.rejections[0].reason.startswith("gave up after 4 attempts")
    assert 300.0 in vclock.waits  # paused max_server_wait between probes, not hammered
    await client.shutdown(timeout=5)


async def test_a_refusing_destination_holds_new_events_until_its_next_probe(
    collector: Collector, vclock: VirtualClock
) -> None:
    """After a 403 only the next probe (the refused batch, max_server_wait later) goes
    out; new events wait for its answer instead of meeting the same refusal."""
    refusing = True
    sent_at: list[float] = []

    def key_revoked(request: RecordedRequest) -> Fault | None:
        sent_at.append(vclock.now())
        return Fault(status=403) if refusing else None

    collector.add_rule(key_revoked)
    probe_due = asyncio.Event()

    async def blocked_sleep(seconds: float) -> None:
        await probe_due.wait()  # the virtual clock stands still until the test moves it

    client = Client(clock=vclock.now, sleep=blocked_sleep, rng=vclock.rng)
    client.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            delivery=DeliveryOptions(flush_queue_size=10),
        )
    )
    await client.track("user-0000", "First")
    report = await client.flush(timeout=30)
    assert report.stats.destinations["amplitude"].refusing.startswith("HTTP 403")
    for i in range(30):  # three full batches: sent at once, were the destination fine
        await client.track(f"user-{i:04d}", "Later")
    for _ in range(200):  # turns enough for a full batch to reach the collector
        await asyncio.sleep(0)
    assert len(sent_at) == 1
    assert client.stats().pending == 31

    refusing = False  # the key is fixed; the probe goes out max_server_wait later
    vclock.advance(300)
    probe_due.set()
    amplitude = lambda: client.stats().destinations["amplitude"]  # noqa: E731
    await eventually(lambda: amplitude().refusing == "", "the probe is answered")
    report = await client.flush(timeout=30)
    assert report.delivered == 31
    assert report.stats.destinations["amplitude"].refusing == ""
    assert all(t >= sent_at[0] + 300 for t in sent_at[1:])
    await client.shutdown(timeout=5)


@pytest.mark.parametrize(
    ("vendor", "status"),
    [
        ("amplitude", 401),
        ("amplitude", 403),
        ("amplitude", 404),
        ("segment", 401),
        ("segment", 403),
    ],
)
async def test_shutdown_while_refused_says_so(
    collector: Collector, vendor: str, status: int
) -> None:
    collector.fail(status, times=None)
    destination = (
        AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
        if vendor == "amplitude"
        else SegmentOptions(write_key=SEG_KEY, host=collector.segment_host)
    )
    logger = ListLogger()
    client = Client()
    client.load(
        Options(
            environment=Environment.PRODUCTION,
            logger=logger,
            destinations={vendor: destination},
        )
    )
    for i in range(5):
        await client.track(f"user-{i:04d}", "Click")
    report = await client.shutdown(timeout=5)
    (reason,) = report.stats.dropped_by_reason
    assert reason.startswith(f"shutdown while refused (HTTP {status}")
    assert report.dropped == 5
    assert sum(1 for m in logger.text().splitlines() if "refused the request" in m) == 1
    assert AMP_KEY not in logger.text()
    assert SEG_KEY not in logger.text()


async def test_shutdown_against_a_dead_endpoint_keeps_its_deadline() -> None:
    async with Collector() as dead:
        dead.hang(times=None)
        client = Client()
        client.load(
            Options(
                environment=Environment.PRODUCTION,
                logger=ListLogger(),
                destinations={
                    "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=dead.amplitude_url)
                },
            )
        )
        for i in range(500):
            await client.track(f"user-{i:04d}", "Tick")
        started = time.monotonic()
        report = await client.shutdown(timeout=2)
        took = time.monotonic() - started

    assert took < 3.5  # a deadline, not a speed: it must not hang past ~2 s
    assert report.timed_out
    assert report.delivered == 0
    assert report.dropped == 500
    assert report.stats.dropped_by_reason == {"shutdown": 500}
