"""The local collector, exercised over real HTTP on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

import itly_async.testing
from itly_async.testing import Collector, Fault, RecordedRequest, ThreadedCollector

PROJECT_ROOT = Path(__file__).resolve().parents[1]


# -- helpers -----------------------------------------------------------------------------


def amp_event(i: int = 0, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_type": "Process Started",
        "user_id": "user-12345",
        "insert_id": f"insert-{i}",
        "time": 1_700_000_000_000 + i,
    }
    event.update(fields)
    return event


def amp_body(events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"api_key": "amp-key", "events": events, **extra}


def seg_message(i: int = 0, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": "Process Started",
        "userId": "user-12345",
        "messageId": f"message-{i}",
        "timestamp": "2026-12-03T19:00:00.000Z",
        "properties": {"n": i},
    }
    message.update(fields)
    return message


def basic_auth(write_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    compress: bool = False,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    data = orjson.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if compress:
        data = gzip.compress(data)
        all_headers["Content-Encoding"] = "gzip"
    async with session.post(url, data=data, headers=all_headers) as response:
        return response.status, await response.json(), response


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    async with Collector() as c:
        yield c


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


# -- surface -----------------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert itly_async.testing.__all__ == [
        "Call",
        "Collector",
        "Fault",
        "RecordedRequest",
        "RecordingAdapter",
        "ThreadedCollector",
        "VirtualClock",
        "chaos",
    ]


async def test_urls_point_at_the_bound_port(collector: Collector) -> None:
    assert collector.url.startswith("http://127.0.0.1:")
    assert int(collector.url.rsplit(":", 1)[1]) > 0
    assert collector.amplitude_url == collector.url + "/2/httpapi"
    assert collector.amplitude_batch_url == collector.url + "/batch"
    assert collector.segment_host == collector.url


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = Collector().url


def test_fault_rejects_contradictions() -> None:
    with pytest.raises(ValueError, match="both hang and drop"):
        Fault(hang=True, drop=True)
    with pytest.raises(ValueError, match="HTTP status"):
        Fault(status=99)
    with pytest.raises(ValueError, match="delay"):
        Fault(delay=-1.0)
    with pytest.raises(ValueError, match="needs a status"):
        Fault(body={"code": 1})
    with pytest.raises(ValueError, match="times"):
        Collector().fail(503, times=0)


def test_recorded_request_counts_its_events() -> None:
    request = RecordedRequest(index=0, path="/2/httpapi", events=[amp_event(), amp_event(1)])
    assert request.event_count == 2
    assert RecordedRequest(index=1, path="/").event_count == 0


# -- Amplitude emulation -----------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["amplitude_url", "amplitude_batch_url"])
async def test_amplitude_accepts_and_records(
    collector: Collector, session: aiohttp.ClientSession, endpoint: str
) -> None:
    events = [amp_event(0), amp_event(1, user_id=None, device_id="device-123")]
    body = amp_body(events)
    status, reply, _ = await post(session, getattr(collector, endpoint), body)

    assert status == 200
    assert reply["code"] == 200
    assert reply["events_ingested"] == 2
    assert reply["payload_size_bytes"] == len(orjson.dumps(body))
    assert isinstance(reply["server_upload_time"], int)
    assert collector.amplitude_events() == events
    [request] = collector.requests
    assert request.index == 0
    assert request.path == getattr(collector, endpoint).removeprefix(collector.url)
    assert request.method == "POST"
    assert request.status == 200
    assert request.fault is None
    assert request.payload == body
    assert request.events == events
    assert request.event_count == 2
    assert request.raw_size == len(orjson.dumps(body))
    assert request.headers["content-type"] == "application/json"


async def test_amplitude_events_keep_arrival_order_across_endpoints(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    await post(session, collector.amplitude_url, amp_body([amp_event(0)]))
    await post(session, collector.amplitude_batch_url, amp_body([amp_event(1), amp_event(2)]))
    await post(session, collector.amplitude_url, amp_body([amp_event(3)]))
    assert [e["insert_id"] for e in collector.amplitude_events()] == [
        f"insert-{i}" for i in range(4)
    ]
    assert [r.index for r in collector.requests] == [0, 1, 2]


async def test_amplitude_missing_api_key(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    status, reply, _ = await post(session, collector.amplitude_url, {"events": [amp_event()]})
    assert status == 400
    assert reply == {
        "code": 400,
        "error": "Request missing required field",
        "missing_field": "api_key",
    }
    assert collector.amplitude_events() == []


async def test_amplitude_unknown_api_key_is_refused_without_echoing_it(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    collector.api_keys = {"the-right-key"}
    body = {"api_key": "secret-wrong-key", "events": [amp_event()]}
    status, reply, _ = await post(session, collector.amplitude_url, body)
    assert status == 400
    assert reply["error"].startswith("Invalid API key")
    assert "secret-wrong-key" not in json.dumps(reply)

    body["api_key"] = "the-right-key"
    status, _, _ = await post(session, collector.amplitude_url, body)
    assert status == 200
    assert len(collector.amplitude_events()) == 1


async def test_amplitude_lists_invalid_events_and_accepts_none_of_the_request(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    events = [
        amp_event(0),
        {"user_id": "user-12345"},  # no event_type
        {"event_type": "x"},  # neither id
        amp_event(3, user_id="abc"),  # id shorter than 5
        amp_event(4, time="yesterday"),  # time not an int
        amp_event(5, user_id="Anonymous"),  # a refused id
        amp_event(6, device_id="dev"),  # valid user_id, short device_id
        amp_event(7, time=1.5),
        amp_event(8),
    ]
    status, reply, _ = await post(session, collector.amplitude_url, amp_body(events))

    assert status == 400
    assert reply["code"] == 400
    assert reply["events_with_missing_fields"] == {"event_type": [1], "user_id": [2]}
    assert reply["events_with_invalid_id_lengths"] == {"user_id": [3], "device_id": [6]}
    assert reply["events_with_invalid_fields"] == {"time": [4, 7], "user_id": [5]}
    assert collector.amplitude_events() == []
    assert collector.requests[0].status == 400
    assert collector.requests[0].event_count == len(events)


async def test_amplitude_min_id_length_option(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    short = [amp_event(0, user_id="abc")]
    status, _, _ = await post(
        session, collector.amplitude_url, amp_body(short, options={"min_id_length": 3})
    )
    assert status == 200
    status, reply, _ = await post(
        session, collector.amplitude_url, amp_body(short, options={"min_id_length": 0})
    )
    assert status == 400
    assert "min_id_length" in reply["error"]
    assert collector.amplitude_events() == short


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", {"code": 400, "error": "Invalid JSON request body"}),
        (
            b'{"api_key": "k"}',
            {"code": 400, "error": "Request missing required field", "missing_field": "events"},
        ),
    ],
)
async def test_amplitude_malformed_requests(
    collector: Collector, session: aiohttp.ClientSession, body: bytes, expected: dict[str, Any]
) -> None:
    async with session.post(collector.amplitude_url, data=body) as response:
        assert response.status == 400
        assert await response.json() == expected
    assert collector.requests[0].payload == (None if body.startswith(b"{not") else {"api_key": "k"})


def body_of_size(size: int) -> bytes:
    """An Amplitude body of exactly ``size`` bytes, padded in one event property."""
    body = amp_body([amp_event(event_properties={"pad": ""})])
    padding = size - len(orjson.dumps(body))
    body["events"][0]["event_properties"]["pad"] = "x" * padding
    data = orjson.dumps(body)
    assert len(data) == size
    return data


async def test_amplitude_body_size_limits_differ_per_endpoint(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # HTTP V2 takes bodies under 1 MB (1,000,000 bytes); the Batch API up to 20 MB.
    async with session.post(collector.amplitude_url, data=body_of_size(1_000_000)) as response:
        assert response.status == 413
        assert await response.json() == {"code": 413, "error": "Payload too large"}
    assert collector.amplitude_events() == []
    async with session.post(collector.amplitude_url, data=body_of_size(999_999)) as response:
        assert response.status == 200
    async with session.post(collector.amplitude_batch_url, data=body_of_size(1_000_000)) as r:
        assert r.status == 200
    assert len(collector.amplitude_events()) == 2


async def test_amplitude_event_count_limits(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    events = [{"event_type": "e", "user_id": "user-12345"}] * 2000
    status, reply, _ = await post(session, collector.amplitude_url, amp_body(events))
    assert (status, reply["error"]) == (413, "Payload too large")  # HTTP V2: fewer than 2000
    status, _, _ = await post(session, collector.amplitude_url, amp_body(events[:1999]))
    assert status == 200
    status, _, _ = await post(session, collector.amplitude_batch_url, amp_body(events))
    assert status == 200  # Batch: at most 2000
    status, _, _ = await post(
        session, collector.amplitude_batch_url, amp_body([*events, events[0]])
    )
    assert status == 413
    assert len(collector.amplitude_events()) == 3999


async def test_gzip_bodies_are_decoded_and_sized_on_the_wire(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    events = [amp_event(i) for i in range(50)]
    body = amp_body(events)
    status, reply, _ = await post(session, collector.amplitude_url, body, compress=True)
    assert status == 200
    assert reply["payload_size_bytes"] == len(orjson.dumps(body))
    [request] = collector.requests
    assert request.payload == body
    assert request.raw_size == len(gzip.compress(orjson.dumps(body)))
    assert request.raw_size < len(orjson.dumps(body))
    assert collector.amplitude_events() == events


async def test_bad_content_encodings(collector: Collector, session: aiohttp.ClientSession) -> None:
    headers = {"Content-Encoding": "gzip"}
    async with session.post(collector.amplitude_url, data=b"not gzip", headers=headers) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "Invalid gzip body"
    headers = {"Content-Encoding": "br"}
    async with session.post(collector.amplitude_url, data=b"{}", headers=headers) as r:
        assert r.status == 415


async def test_unknown_path_and_wrong_method(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    status, reply, _ = await post(session, collector.url + "/v2/elsewhere", amp_body([amp_event()]))
    assert status == 404
    assert reply["code"] == 404
    async with session.get(collector.amplitude_url) as response:
        assert response.status == 405
    assert [(r.path, r.method, r.status) for r in collector.requests] == [
        ("/v2/elsewhere", "POST", 404),
        ("/2/httpapi", "GET", 405),
    ]
    assert collector.requests[0].events == []
    assert collector.amplitude_events() == []


# -- Segment emulation -------------------------------------------------------------------


async def test_segment_accepts_an_authenticated_batch(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    batch = [seg_message(0), seg_message(1, type="identify", traits={"plan": "pro"})]
    body = {"batch": batch, "sentAt": "2026-12-03T19:00:00.000Z"}
    url = collector.segment_host + "/v1/batch"
    status, reply, _ = await post(session, url, body, headers=basic_auth("wk"), compress=True)
    assert status == 200
    assert reply == {"success": True}
    assert collector.segment_messages() == batch
    assert collector.requests[0].events == batch
    assert collector.amplitude_events() == []


async def test_segment_requires_basic_auth(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    url = collector.segment_host + "/v1/batch"
    body = {"batch": [seg_message()]}
    status, _, _ = await post(session, url, body)
    assert status == 401
    status, _, _ = await post(session, url, body, headers={"Authorization": "Bearer wk"})
    assert status == 401

    collector.write_keys = {"right"}
    status, reply, _ = await post(session, url, body, headers=basic_auth("wrong"))
    assert status == 401
    assert "wrong" not in json.dumps(reply)
    status, _, _ = await post(session, url, body, headers=basic_auth("right"))
    assert status == 200
    assert collector.segment_messages() == [seg_message()]


async def test_segment_size_limits(collector: Collector, session: aiohttp.ClientSession) -> None:
    url = collector.segment_host + "/v1/batch"
    auth = basic_auth("wk")
    too_big_message = seg_message(0, properties={"blob": "x" * 33_000})
    status, reply, _ = await post(session, url, {"batch": [too_big_message]}, headers=auth)
    assert (status, reply["code"]) == (400, "message_too_large")

    # 20 messages of ~30 KB: each under 32 KB, together over 500 KB.
    batch = [seg_message(i, properties={"blob": "x" * 30_000}) for i in range(20)]
    status, reply, _ = await post(session, url, {"batch": batch}, headers=auth)
    assert (status, reply["code"]) == (400, "request_too_large")

    many = [{"type": "track", "event": "e", "userId": "u"}] * 2501  # ~100 KB, too many
    status, reply, _ = await post(session, url, {"batch": many}, headers=auth)
    assert (status, reply["code"]) == (400, "request_too_large")
    status, _, _ = await post(session, url, {"batch": ["not an object"]}, headers=auth)
    assert status == 400

    status, _, _ = await post(session, url, {"batch": batch[:15]}, headers=auth)
    assert status == 200
    status, _, _ = await post(session, url, {"batch": many[:2500]}, headers=auth)
    assert status == 200
    assert len(collector.segment_messages()) == 2515


# -- faults ------------------------------------------------------------------------------


async def test_fail_answers_the_status_then_recovers(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    collector.fail(429, body={"code": 429, "eps_threshold": 30}, headers={"Retry-After": "3"})
    body = amp_body([amp_event()])
    status, reply, response = await post(session, collector.amplitude_url, body)
    assert status == 429
    assert reply == {"code": 429, "eps_threshold": 30}
    assert response.headers["Retry-After"] == "3"
    assert collector.amplitude_events() == []

    status, _, _ = await post(session, collector.amplitude_url, body)
    assert status == 200
    first, second = collector.requests
    expected = Fault(status=429, body=reply, headers={"Retry-After": "3"})
    assert (first.status, first.fault) == (429, expected)
    assert (second.status, second.fault) == (200, None)
    assert len(collector.amplitude_events()) == 1


async def test_fail_counts_times_and_filters_by_path(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    collector.fail(503, times=2, path="/v1/batch")
    seg_url = collector.segment_host + "/v1/batch"
    seg_body = {"batch": [seg_message()]}
    status, _, _ = await post(session, collector.amplitude_url, amp_body([amp_event()]))
    assert status == 200  # another path: untouched
    statuses = [
        (await post(session, seg_url, seg_body, headers=basic_auth("wk")))[0] for _ in range(3)
    ]
    assert statuses == [503, 503, 200]
    assert collector.requests[1].fault == Fault(status=503)
    assert len(collector.segment_messages()) == 1


async def test_fail_every_request(collector: Collector, session: aiohttp.ClientSession) -> None:
    collector.fail(500, times=None)
    for _ in range(3):
        status, reply, _ = await post(session, collector.amplitude_url, amp_body([amp_event()]))
        assert (status, reply) == (500, {"code": 500, "error": "Internal Server Error"})
    assert collector.amplitude_events() == []


async def test_hang_never_answers(collector: Collector, session: aiohttp.ClientSession) -> None:
    collector.hang()
    timeout = aiohttp.ClientTimeout(total=0.05)
    with pytest.raises(TimeoutError):
        await session.post(collector.amplitude_url, json=amp_body([amp_event()]), timeout=timeout)
    status, _, _ = await post(session, collector.amplitude_url, amp_body([amp_event(1)]))
    assert status == 200
    hung, answered = collector.requests
    assert (hung.status, hung.fault) == (None, Fault(hang=True))
    assert answered.status == 200
    assert [e["insert_id"] for e in collector.amplitude_events()] == ["insert-1"]


async def test_stopping_releases_a_hung_request(session: aiohttp.ClientSession) -> None:
    arrived = asyncio.Event()

    def hang_and_signal(_request: RecordedRequest) -> Fault:
        arrived.set()
        return Fault(hang=True)

    collector = await Collector().start()
    collector.add_rule(hang_and_signal)
    pending = asyncio.create_task(post(session, collector.amplitude_url, amp_body([amp_event()])))
    await arrived.wait()
    await collector.stop()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await pending
    await collector.stop()  # idempotent


async def test_drop_closes_without_a_response(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    collector.drop(path="/2/httpapi")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(session, collector.amplitude_url, amp_body([amp_event()]))
    status, _, _ = await post(session, collector.amplitude_url, amp_body([amp_event(1)]))
    assert status == 200
    dropped = collector.requests[0]
    assert (dropped.status, dropped.fault) == (None, Fault(drop=True))
    assert [e["insert_id"] for e in collector.amplitude_events()] == ["insert-1"]


async def test_delay_answers_normally_but_late(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    collector.delay(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, _, _ = await post(session, collector.amplitude_url, amp_body([amp_event()]))
    assert loop.time() - started >= 0.05
    assert status == 200
    assert collector.requests[0].fault == Fault(delay=0.05)
    assert collector.requests[0].status == 200
    assert len(collector.amplitude_events()) == 1


async def test_rule_on_batch_size(collector: Collector, session: aiohttp.ClientSession) -> None:
    collector.add_rule(lambda r: Fault(status=413) if r.event_count > 50 else None)
    status, _, _ = await post(session, collector.amplitude_url, amp_body([amp_event()] * 60))
    assert status == 413
    status, _, _ = await post(session, collector.amplitude_url, amp_body([amp_event()] * 30))
    assert status == 200
    assert len(collector.amplitude_events()) == 30


async def test_rule_on_arrival_order_and_first_rule_wins(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    collector.fail(500)
    collector.add_rule(lambda r: Fault(status=503) if r.index < 3 else None)
    statuses = [
        (await post(session, collector.amplitude_url, amp_body([amp_event(i)])))[0]
        for i in range(5)
    ]
    assert statuses == [500, 503, 503, 200, 200]
    assert [e["insert_id"] for e in collector.amplitude_events()] == ["insert-3", "insert-4"]


async def test_ingesting_faults_accept_then_fail(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    faults = iter([Fault(status=500, ingest=True), Fault(drop=True, ingest=True)])
    collector.add_rule(lambda _r: next(faults, None))
    status, _, _ = await post(session, collector.amplitude_url, amp_body([amp_event(0)]))
    assert status == 500
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(session, collector.amplitude_url, amp_body([amp_event(1)]))
    assert [e["insert_id"] for e in collector.amplitude_events()] == ["insert-0", "insert-1"]
    assert [r.status for r in collector.requests] == [500, None]


# -- waiting and concurrency -------------------------------------------------------------


async def test_wait_for_amplitude_wakes_on_accepted_batches(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    waiting = asyncio.create_task(collector.wait_for_amplitude(3))
    await post(session, collector.amplitude_url, amp_body([amp_event(0), amp_event(1)]))
    assert not waiting.done()
    await post(session, collector.amplitude_url, amp_body([amp_event(2)]))
    events = await waiting
    assert len(events) == 3


async def test_wait_times_out_with_what_arrived(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    collector.fail(503)
    await post(session, collector.amplitude_url, amp_body([amp_event()]))
    with pytest.raises(TimeoutError, match=r"1 accepted Amplitude events: 0 accepted .*503: 1"):
        await collector.wait_for_amplitude(1, timeout=0.01)
    with pytest.raises(TimeoutError, match="Segment messages"):
        await collector.wait_for_segment(1, timeout=0.01)


async def test_concurrent_requests_are_all_recorded(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    bodies = [amp_body([amp_event(i)]) for i in range(40)]
    results = await asyncio.gather(*(post(session, collector.amplitude_url, b) for b in bodies))
    assert {status for status, _, _ in results} == {200}
    assert [r.index for r in collector.requests] == list(range(40))
    assert sorted(e["insert_id"] for e in await collector.wait_for_amplitude(40)) == sorted(
        f"insert-{i}" for i in range(40)
    )


def test_summary_counts_accepted_events_by_name() -> None:
    with ThreadedCollector() as collector:
        collector.fail(503, path="/2/httpapi")
        for _ in range(2):
            _sync_post(collector.amplitude_url, amp_body([amp_event(), amp_event(event_type="B")]))
        _sync_post(
            collector.segment_host + "/v1/batch",
            {"batch": [seg_message(), seg_message(type="identify", event=None)]},
            headers=basic_auth("wk"),
        )
        summary = collector.summary()
    assert summary == {
        "requests": 3,
        "faults": 1,
        "statuses": {"200": 2, "503": 1},
        "amplitude": {"events": 2, "by_event_type": {"B": 1, "Process Started": 1}},
        "segment": {
            "messages": 2,
            "by_type": {"identify": 1, "track": 1},
            "by_event": {"Process Started": 1},
        },
    }


# -- the threaded collector, from blocking code --------------------------------------------


def _sync_post(url: str, body: Any, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(
        url,
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def test_threaded_collector_from_sync_code() -> None:
    with ThreadedCollector(write_keys={"wk"}) as collector:
        collector.fail(503)
        assert _sync_post(collector.amplitude_url, amp_body([amp_event(0)])) == 503
        assert _sync_post(collector.amplitude_url, amp_body([amp_event(1)])) == 200
        assert [e["insert_id"] for e in collector.wait_for_amplitude_sync(1, timeout=5)] == [
            "insert-1"
        ]
        seg_url = collector.segment_host + "/v1/batch"
        assert _sync_post(seg_url, {"batch": [seg_message()]}, basic_auth("other")) == 401
        assert _sync_post(seg_url, {"batch": [seg_message()]}, basic_auth("wk")) == 200
        assert collector.wait_for_segment_sync(1, timeout=5) == [seg_message()]
        with pytest.raises(TimeoutError, match="2 accepted Segment messages"):
            collector.wait_for_segment_sync(2, timeout=0.01)
        assert [r.status for r in collector.requests] == [503, 200, 401, 200]
    collector.stop()  # idempotent


async def test_threaded_collector_awaited_from_another_loop(
    session: aiohttp.ClientSession,
) -> None:
    with ThreadedCollector() as collector:
        waiting = asyncio.create_task(collector.wait_for_amplitude(2, timeout=5))
        for i in range(2):
            status, _, _ = await post(session, collector.amplitude_url, amp_body([amp_event(i)]))
            assert status == 200
        assert len(await waiting) == 2


async def test_a_taken_port_is_reported(collector: Collector) -> None:
    port = int(collector.url.rsplit(":", 1)[1])
    with pytest.raises(OSError):  # noqa: PT011 - the errno text differs per platform
        await Collector(port=port).start()
    with pytest.raises(OSError):  # noqa: PT011
        ThreadedCollector(port=port).start()


# -- python -m itly_async.testing --------------------------------------------------------


async def test_module_runs_a_collector_process(session: aiohttp.ClientSession) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "itly_async.testing",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ").strip()

        status, _, _ = await post(session, url + "/2/httpapi", amp_body([amp_event()]))
        assert status == 200
        status, _, _ = await post(
            session, url + "/v1/batch", {"batch": [seg_message()]}, headers=basic_auth("wk")
        )
        assert status == 200
        async with session.get(url + "/_summary") as response:
            summary = await response.json()
        assert summary["amplitude"] == {"events": 1, "by_event_type": {"Process Started": 1}}
        assert summary["segment"]["by_event"] == {"Process Started": 1}
        assert summary["requests"] == 2
        async with session.get(url + "/_events") as response:
            assert await response.json() == {"amplitude": [amp_event()], "segment": [seg_message()]}
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=10)
    assert process.returncode == 0
    assert orjson.loads(rest)["amplitude"]["events"] == 1
