"""Issue 2 acceptance: events reach real loopback collectors once each, whatever they answer."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from itly_async import AmplitudeOptions, Client, CustomOptions, DeliveryOptions, Options
from itly_async.testing import (
    Collector,
    Fault,
    RecordedRequest,
    RecordingAdapter,
    VirtualClock,
)
from tests.helpers import AMP_KEY, SEG_KEY


async def test_ten_thousand_events_arrive_once_each_with_the_wire_shapes(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    client = make_client(segment=True, delivery=DeliveryOptions(flush_queue_size=500))
    for i in range(10_000):
        await client.track(f"user-{i % 97:04d}", "Order Placed", {"n": i, "sku": f"sku-{i}"})
    report = await client.flush(timeout=30)

    assert not report.timed_out
    assert report.pending == 0
    amp = collector.amplitude_events()
    seg = collector.segment_messages()
    assert len(amp) == len(seg) == 10_000
    assert len({e["insert_id"] for e in amp}) == 10_000
    assert len({m["messageId"] for m in seg}) == 10_000
    assert {e["insert_id"] for e in amp} == {m["messageId"] for m in seg}
    assert sorted(e["event_properties"]["n"] for e in amp) == list(range(10_000))

    first = amp[0]
    assert first["event_type"] == "Order Placed"
    assert first["user_id"].startswith("user-")
    assert isinstance(first["time"], int)
    assert first["library"].startswith("itly-async/")
    msg = seg[0]
    assert msg["type"] == "track"
    assert msg["event"] == "Order Placed"
    assert msg["timestamp"].endswith("Z")
    assert msg["context"]["library"]["name"] == "itly-async"

    for request in collector.requests:
        assert request.event_count <= 500
        if request.path == "/v1/batch":
            assert request.raw_size < 500 * 1024
            assert request.headers["Authorization"].startswith("Basic ")
        else:
            assert request.raw_size < 1_000_000
            assert request.payload["api_key"] == AMP_KEY
    stats = client.stats()
    assert stats.sent == 20_000
    assert stats.destinations["amplitude"].sent == 10_000
    await client.shutdown(timeout=5)


async def test_byte_cap_cuts_batches_under_the_limit(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    client = make_client(segment=True, delivery=DeliveryOptions(flush_queue_size=2000))
    big = "x" * 2000  # ~2 KB an event: 2000 events would be ~4 MB in one request
    for i in range(1200):
        await client.track(f"user-{i:05d}", "Blob", {"blob": big, "i": i})
    await client.flush(timeout=30)
    assert len(collector.amplitude_events()) == 1200
    assert len(collector.segment_messages()) == 1200
    segment_sizes = [r.raw_size for r in collector.requests if r.path == "/v1/batch"]
    amplitude_sizes = [r.raw_size for r in collector.requests if r.path == "/2/httpapi"]
    assert max(segment_sizes) < 500 * 1024
    assert max(amplitude_sizes) < 1_000_000
    assert len(segment_sizes) > 4  # the cap, not the count, cut these batches
    await client.shutdown(timeout=5)


async def test_503_three_times_then_200_delivers_all_with_the_same_ids(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    collector.fail(503, times=3)
    client = make_client()
    for i in range(50):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    report = await client.flush(timeout=30)

    assert report.delivered == 50
    assert len(collector.amplitude_events()) == 50
    attempts: Counter[str] = Counter()
    for request in collector.requests:
        attempts.update(e["insert_id"] for e in request.events)
    assert set(attempts) == {e["insert_id"] for e in collector.amplitude_events()}
    assert [r.status for r in collector.requests][:4] == [503, 503, 503, 200]
    assert client.stats().retried >= 150
    await client.shutdown(timeout=5)


async def test_retry_after_zero_does_not_spend_the_retry_budget_at_once(
    collector: Collector, vclock: VirtualClock
) -> None:
    """A proxy answering 503 with ``Retry-After: 0`` for five (virtual) seconds: the
    header is a floor under our backoff, so thirteen sends spread out past the outage
    instead of burning out in the first instant."""
    down_until = vclock.now() + 5.0

    def outage(request: RecordedRequest) -> Fault | None:
        if vclock.now() < down_until:
            return Fault(status=503, headers={"Retry-After": "0"})
        return None

    collector.add_rule(outage)
    client = Client(clock=vclock.now, sleep=vclock.sleep, rng=random.Random(7))
    client.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            delivery=DeliveryOptions(flush_queue_size=100),
        )
    )
    for i in range(20):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    report = await client.flush(timeout=30)
    assert report.delivered == 20
    assert report.rejected == 0
    assert sum(vclock.waits) >= 5.0
    await client.shutdown(timeout=5)


async def test_413_over_fifty_events_is_split_until_everything_fits(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    def too_large(request: RecordedRequest) -> Fault | None:
        if request.event_count > 50:
            return Fault(status=413, body={"code": 413, "error": "Payload too large"})
        return None

    collector.add_rule(too_large)
    client = make_client(delivery=DeliveryOptions(flush_queue_size=400))
    for i in range(1000):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    report = await client.flush(timeout=30)

    assert report.delivered == 1000
    assert report.rejected == 0
    delivered = collector.amplitude_events()
    assert len({e["insert_id"] for e in delivered}) == 1000
    assert all(r.event_count <= 50 for r in collector.requests if r.status == 200)
    await client.shutdown(timeout=5)


async def test_400_naming_event_3_rejects_only_that_event(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    body = {
        "code": 400,
        "error": "Request contains invalid fields",
        "events_with_invalid_fields": {"time": [3]},
    }
    collector.fail(400, body=body)
    client = make_client()
    for i in range(10):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    report = await client.flush(timeout=30)

    assert report.rejected == 1
    assert report.delivered == 9
    (rejection,) = report.rejections
    assert rejection.destination == "amplitude"
    assert "time" in rejection.reason
    delivered = sorted(e["event_properties"]["i"] for e in collector.amplitude_events())
    assert delivered == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    await client.shutdown(timeout=5)


async def test_hanging_amplitude_does_not_hold_up_segment_or_the_caller(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    collector.hang(times=None, path="/2/httpapi")
    client = make_client(segment=True, delivery=DeliveryOptions(flush_queue_size=100))
    for i in range(1000):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    await collector.wait_for_segment(1000, timeout=20)

    assert collector.amplitude_events() == []
    assert client.stats().destinations["amplitude"].pending == 1000
    report = await client.shutdown(timeout=1)
    assert report.timed_out
    assert report.stats.destinations["segment"].sent == 1000
    assert report.stats.destinations["amplitude"].dropped_by_reason == {"shutdown": 1000}


async def test_dropped_connections_and_garbage_bodies_are_retried(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    collector.drop(times=2)
    collector.fail(502, body=None, times=1)
    client = make_client()
    for i in range(20):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    report = await client.flush(timeout=30)
    assert report.delivered == 20
    assert len({e["insert_id"] for e in collector.amplitude_events()}) == 20
    await client.shutdown(timeout=5)


class ExplodingAdapter:
    def track(self, user_id: str | None, event: object) -> None:
        raise RuntimeError("adapter bug")

    def identify(self, user_id: str | None, traits: object) -> None:
        raise RuntimeError("adapter bug")


class RecordingAsyncAdapter:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def track(self, user_id: str | None, event: object) -> None:
        self.seen.append(getattr(event, "name", "?"))


async def test_a_raising_adapter_is_isolated_and_counted(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    good = RecordingAsyncAdapter()
    client = make_client(
        segment=True,
        destinations={
            "bad": CustomOptions(adapter=ExplodingAdapter()),
            "good": CustomOptions(adapter=good),
        },
    )
    for i in range(30):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    await client.identify("user-0001", {"email": "a@example.com"})
    report = await client.flush(timeout=30)

    assert len(collector.amplitude_events()) == 31  # 30 events + 1 identify
    assert len(collector.segment_messages()) == 31
    assert good.seen == ["Tick"] * 30
    stats = client.stats()
    assert stats.adapter_errors == 31
    bad = stats.destinations["bad"]
    assert bad.rejected == 31
    assert bad.sent == 0
    assert any("RuntimeError" in reason for reason in bad.rejected_by_reason)
    assert report.stats.destinations["segment"].sent == 31
    await client.shutdown(timeout=5)


async def test_a_hanging_adapter_times_out_without_blocking_others(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    never = asyncio.Event()

    class Hanging:
        async def track(self, user_id: str | None, event: object) -> None:
            await never.wait()

    client = make_client(
        destinations={"stuck": CustomOptions(adapter=Hanging())},
        delivery=DeliveryOptions(flush_queue_size=10, adapter_timeout=0.2),
    )
    for i in range(10):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    await collector.wait_for_amplitude(10, timeout=10)
    report = await client.flush(timeout=10)
    assert report.stats.destinations["stuck"].rejected == 10
    assert report.stats.adapter_errors == 10
    await client.shutdown(timeout=5)


async def test_an_adapter_whose_load_hangs_holds_up_no_other_destination(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    """Each lane starts in its own task: while one adapter's async load() hangs and
    another's sync load() blocks its thread, Amplitude receives everything."""
    release = asyncio.Event()
    unblock = threading.Event()

    class HangingLoad:
        async def load(self, options: object) -> None:
            await release.wait()

        async def track(self, user_id: str | None, event: object) -> None:
            return None

    class BlockingLoad:
        def load(self, options: object) -> None:
            unblock.wait()

        def track(self, user_id: str | None, event: object) -> None:
            return None

    client = make_client(
        destinations={
            "hangs": CustomOptions(adapter=HangingLoad()),
            "blocks": CustomOptions(adapter=BlockingLoad()),
        },
        delivery=DeliveryOptions(flush_queue_size=10, adapter_timeout=60),
    )
    for i in range(25):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    received = await collector.wait_for_amplitude(25, timeout=10)
    assert sorted(e["event_properties"]["i"] for e in received) == list(range(25))
    stats = client.stats().destinations
    assert stats["hangs"].pending == stats["blocks"].pending == 25
    release.set()
    unblock.set()
    report = await client.flush(timeout=10)
    assert report.pending == 0
    assert report.stats.destinations["hangs"].sent == 25
    assert report.stats.destinations["blocks"].sent == 25
    await client.shutdown(timeout=5)


async def test_identify_group_alias_wire_shapes(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    client = make_client(segment=True)
    await client.identify("user-0001", {"email": "a@example.com"})
    await client.group("user-0001", "org-42", {"plan": "pro"})
    await client.alias("user-0001", "anon-0001")
    await client.flush(timeout=10)

    seg = {m["type"]: m for m in collector.segment_messages()}
    assert seg["identify"]["traits"] == {"email": "a@example.com"}
    assert seg["group"]["groupId"] == "org-42"
    assert seg["group"]["traits"] == {"plan": "pro"}
    assert seg["alias"]["previousId"] == "anon-0001"
    amp = collector.amplitude_events()
    types = [e["event_type"] for e in amp]
    assert "$identify" in types
    assert "$groupidentify" in types
    ident = next(e for e in amp if e["event_type"] == "$identify" and "groups" not in e)
    assert ident["user_properties"] == {"$set": {"email": "a@example.com"}}
    stats = client.stats().destinations["amplitude"]
    assert stats.rejected_by_reason  # alias is not an Amplitude HTTP V2 call: reported
    await client.shutdown(timeout=5)


async def test_gzip_bodies_are_accepted(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    client = make_client(segment=True, delivery=DeliveryOptions(flush_queue_size=100, gzip=True))
    for i in range(300):
        await client.track(f"user-{i:04d}", "Tick", {"i": i, "pad": "y" * 400})
    await client.flush(timeout=30)
    assert len(collector.amplitude_events()) == 300
    assert len(collector.segment_messages()) == 300
    assert all(r.headers.get("Content-Encoding") == "gzip" for r in collector.requests)
    payload_sizes = [len(orjson.dumps(r.payload)) for r in collector.requests]
    assert all(r.raw_size < size for r, size in zip(collector.requests, payload_sizes, strict=True))
    await client.shutdown(timeout=5)


async def test_segment_key_is_sent_as_basic_auth(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    collector.write_keys = {SEG_KEY}
    client = make_client(amplitude=False, segment=True)
    await client.track("user-0001", "Tick", {"i": 1})
    await client.flush(timeout=10)
    assert len(collector.segment_messages()) == 1
    await client.shutdown(timeout=5)


async def test_recording_adapter_sees_every_kind_of_call(
    make_client: Callable[..., Client],
) -> None:
    recorder = RecordingAdapter()
    client = make_client(amplitude=False, destinations={"rec": CustomOptions(adapter=recorder)})
    await client.track("user-0001", "Signed Up", {"plan": "pro"})
    await client.identify("user-0001", {"email": "a@example.com"})
    await client.group("user-0001", "org-1", {"seats": 3})
    await client.alias("user-0001", "anon-0001")
    await client.flush(timeout=10)
    await client.shutdown(timeout=5)

    assert [c.method for c in recorder.calls] == ["track", "identify", "group", "alias"]
    (signed_up,) = recorder.events("Signed Up")
    assert signed_up.properties == {"plan": "pro"}
    assert signed_up.insert_id
    assert recorder.calls[2].group_id == "org-1"
    assert recorder.calls[3].previous_id == "anon-0001"
    assert recorder.loaded_with is not None
    assert recorder.flushes == 2  # our flush, and the one shutdown() does first
    assert recorder.shutdowns == 1


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_requests_in_flight_are_bounded_by_max_concurrent_requests(
    collector: Collector, make_client: Callable[..., Client], concurrency: int
) -> None:
    """With a slow service, up to ``max_concurrent_requests`` batches wait at once (on a
    100 ms link one at a time caps a lane at ten batches a second), never more."""
    all_held = asyncio.Event()
    held: list[RecordedRequest] = []

    def hold(request: RecordedRequest) -> Fault:  # runs on this loop, per request
        held.append(request)
        if len(held) == concurrency:
            all_held.set()
        return Fault(hang=True)

    collector.add_rule(hold)
    client = make_client(
        delivery=DeliveryOptions(flush_queue_size=100, max_concurrent_requests=concurrency)
    )
    for i in range(1000):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    async with asyncio.timeout(10):
        await all_held.wait()

    report = await client.shutdown(timeout=1)
    assert len(held) == concurrency  # every slot taken, and not one request more
    ids = [e["insert_id"] for r in held for e in r.events]
    assert len(ids) == len(set(ids)) == 100 * concurrency  # distinct batches
    assert report.stats.destinations["amplitude"].dropped_by_reason == {"shutdown": 1000}


async def test_a_reused_properties_dict_does_not_change_what_was_tracked(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    """Events are sent later; the caller may reuse or mutate its dict right away."""
    client = make_client(segment=True)
    props: dict[str, Any] = {"i": 0, "tags": ["first"], "meta": {"step": 0}}
    for i in range(3):
        props["i"] = i
        await client.track("user-0001", "Step", props)
        props["tags"].append(f"after-{i}")
        props["meta"]["step"] = i + 100
    report = await client.flush(timeout=10)

    assert report.delivered == 6
    expected = [{"i": 0, "tags": ["first"], "meta": {"step": 0}}]
    expected += [
        {"i": i, "tags": ["first", *(f"after-{k}" for k in range(i))], "meta": {"step": i + 99}}
        for i in (1, 2)
    ]
    amp = sorted(collector.amplitude_events(), key=lambda e: e["event_properties"]["i"])
    seg = sorted(collector.segment_messages(), key=lambda m: m["properties"]["i"])
    assert [e["event_properties"] for e in amp] == expected
    assert [m["properties"] for m in seg] == expected


async def test_resent_events_carry_all_their_properties(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    """Events hold their properties as JSON bytes spliced into each destination's wire
    JSON; every resend must still be the full event, group calls included."""
    collector.fail(503, times=4)
    client = make_client(segment=True)
    for i in range(20):
        await client.track(f"user-{i:04d}", "Tick", {"i": i, "tags": ["x"]})
    await client.identify("user-0001", {"plan": "pro"})
    await client.group("user-0001", "org-1", {"seats": 5})
    report = await client.flush(timeout=30)

    assert report.delivered == 2 * 22
    first_copy: dict[tuple[str, str, str], dict[str, Any]] = {}
    for request in collector.requests:
        for wire in request.events:
            copy = {k: v for k, v in wire.items() if k != "sentAt"}
            key = (
                request.path,
                wire.get("insert_id") or wire["messageId"],
                str(wire.get("event_type")),
            )
            assert first_copy.setdefault(key, copy) == copy  # every resend identical
    ticks = [e for e in collector.amplitude_events() if e["event_type"] == "Tick"]
    assert sorted(e["event_properties"]["i"] for e in ticks) == list(range(20))
    group_ops = [e for e in collector.amplitude_events() if e["event_type"] == "$groupidentify"]
    assert group_ops[0]["group_properties"] == {"$set": {"seats": 5}}
    assert [m["traits"] for m in collector.segment_messages() if m["type"] == "group"] == [
        {"seats": 5}
    ]
    assert [r.status for r in collector.requests].count(503) == 4


async def test_a_400_after_a_resend_still_names_the_right_event_behind_a_group_call(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    """A group call with traits is two wire events; the 400's indexes count wire events,
    also on a resend."""
    invalid = {
        "code": 400,
        "error": "Request contains invalid fields",
        "events_with_invalid_fields": {"event_type": [23]},
    }
    answers = iter([Fault(status=503), Fault(status=400, body=invalid)])
    collector.add_rule(lambda request: next(answers, None))
    client = make_client()
    for i in range(20):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})  # wire 0-19
    await client.identify("user-0001", {"plan": "pro"})  # wire 20
    await client.group("user-0001", "org-1", {"seats": 5})  # wire 21 and 22
    await client.track("user-0001", "Tock", {"i": 99})  # wire 23
    report = await client.flush(timeout=30)

    assert report.rejected == 1
    (rejection,) = report.rejections
    assert rejection.event == "Tock"
    types = Counter(e["event_type"] for e in collector.amplitude_events())
    assert types == {"Tick": 20, "$identify": 2, "$groupidentify": 1}
