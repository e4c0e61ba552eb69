"""Segment's wire format and response rules, table-tested without a network."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from itly_async._amplitude import dumps
from itly_async._config import EventOptions, SegmentOptions
from itly_async._destination import (
    DELIVERED,
    Action,
    HttpDestination,
    ResponseInfo,
    UnsupportedEvent,
    Verdict,
)
from itly_async._event import ALIAS, GROUP, IDENTIFY, TRACK, Event
from itly_async._exceptions import ConfigurationError
from itly_async._segment import (
    MAX_BYTES,
    MAX_EVENTS,
    MAX_MESSAGE_BYTES,
    Segment,
    iso_timestamp,
)

KEY = "seg-write-key-abcdef"
T0 = 1_700_000_000_123
STAMP = "2023-11-14T22:13:20.123Z"
NOW = 1_700_000_100.5
LIBRARY = {"name": "itly-async", "version": "0.1.0"}


def ev(
    kind: str = TRACK,
    name: str = "Clicked",
    user_id: str | None = "user-0001",
    properties: dict[str, Any] | None = None,
    *,
    options: EventOptions | None = None,
    group_id: str | None = None,
    previous_id: str | None = None,
    insert_id: str = "iid-1",
) -> Event:
    return Event(
        kind,
        name,
        user_id,
        dumps(properties if properties is not None else {}),  # as the client encodes them
        T0,
        insert_id,
        options,
        group_id,
        previous_id,
    )


def seg(host: str | None = None, **kw: Any) -> Segment:
    return Segment("segment", KEY, SegmentOptions(host=host), clock=lambda: NOW, **kw)


def message(dest: Segment, event: Event) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(dest.encode(event))
    return data


def test_is_an_http_destination() -> None:
    dest: HttpDestination = seg()
    assert dest.name == "segment"


# --- url, headers, limits ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url"),
    [
        pytest.param(None, "https://api.segment.io/v1/batch", id="default"),
        pytest.param(
            "https://events.eu1.segmentapis.com",
            "https://events.eu1.segmentapis.com/v1/batch",
            id="eu",
        ),
        pytest.param(
            "http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1/batch", id="trailing-slash"
        ),
    ],
)
def test_url(host: str | None, url: str) -> None:
    assert seg(host).url == url


def test_limits() -> None:
    dest = seg()
    assert dest.max_events == MAX_EVENTS == 2500
    assert dest.max_bytes == MAX_BYTES
    assert MAX_BYTES < 500_000
    assert MAX_MESSAGE_BYTES == 32 * 1024


def test_headers_use_basic_auth_with_an_empty_password() -> None:
    headers = dict(seg().headers())
    assert headers["Content-Type"] == "application/json"
    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token) == f"{KEY}:".encode()


@pytest.mark.parametrize("bad", ["", "  "])
def test_empty_key_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="write_key is empty"):
        Segment("segment", bad, SegmentOptions())


def test_key_is_never_in_repr() -> None:
    dest = seg("http://127.0.0.1:1")
    token = dict(dest.headers())["Authorization"].split(" ")[1]
    for text in (repr(dest), str(dest)):
        assert KEY not in text
        assert token not in text
    assert "segment" in repr(dest)
    assert KEY not in repr(SegmentOptions(write_key=KEY))


# --- timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        pytest.param(0, "1970-01-01T00:00:00.000Z", id="epoch"),
        pytest.param(T0, STAMP, id="millis"),
        pytest.param(1_700_000_000_000, "2023-11-14T22:13:20.000Z", id="whole-second"),
        pytest.param(1_700_000_000_999, "2023-11-14T22:13:20.999Z", id="last-milli"),
        pytest.param(951_782_400_000, "2000-02-29T00:00:00.000Z", id="leap-day"),
    ],
)
def test_iso_timestamp(ms: int, expected: str) -> None:
    assert iso_timestamp(ms) == expected
    parsed = dt.datetime.fromisoformat(expected.replace("Z", "+00:00"))
    assert round(parsed.timestamp() * 1000) == ms


# --- encode ------------------------------------------------------------------------------


def test_track_shape() -> None:
    assert message(seg(), ev(properties={"count": 3})) == {
        "type": "track",
        "userId": "user-0001",
        "event": "Clicked",
        "properties": {"count": 3},
        "timestamp": STAMP,
        "messageId": "iid-1",
        "context": {"library": LIBRARY},
    }


def test_identify_shape() -> None:
    assert message(seg(), ev(IDENTIFY, "identify", properties={"email": "a@b.c"})) == {
        "type": "identify",
        "userId": "user-0001",
        "traits": {"email": "a@b.c"},
        "timestamp": STAMP,
        "messageId": "iid-1",
        "context": {"library": LIBRARY},
    }


def test_group_shape() -> None:
    event = ev(GROUP, "group", properties={"plan": "pro"}, group_id="acme-corp")
    assert message(seg(), event) == {
        "type": "group",
        "userId": "user-0001",
        "groupId": "acme-corp",
        "traits": {"plan": "pro"},
        "timestamp": STAMP,
        "messageId": "iid-1",
        "context": {"library": LIBRARY},
    }


def test_alias_shape() -> None:
    event = ev(ALIAS, "alias", user_id="user-new-1", previous_id="user-old-1")
    assert message(seg(), event) == {
        "type": "alias",
        "userId": "user-new-1",
        "previousId": "user-old-1",
        "timestamp": STAMP,
        "messageId": "iid-1",
        "context": {"library": LIBRARY},
    }


def test_unknown_kind_is_unsupported() -> None:
    with pytest.raises(UnsupportedEvent, match="unknown event kind"):
        seg().encode(ev("screen"))


@pytest.mark.parametrize(
    ("user_id", "device_id", "expected"),
    [
        pytest.param("user-0001", None, {"userId": "user-0001"}, id="user"),
        pytest.param(None, "device-0001", {"anonymousId": "device-0001"}, id="anonymous"),
        pytest.param("user-0001", "device-0001", {"userId": "user-0001"}, id="user-wins"),
        pytest.param("", "device-0001", {"anonymousId": "device-0001"}, id="empty-user"),
        pytest.param(None, None, {}, id="neither"),
    ],
)
def test_identity(user_id: str | None, device_id: str | None, expected: dict[str, str]) -> None:
    out = message(seg(), ev(user_id=user_id, options=EventOptions(device_id=device_id)))
    assert {k: v for k, v in out.items() if k in ("userId", "anonymousId")} == expected


def test_context_from_event_options() -> None:
    opts = EventOptions(
        ip="203.0.113.7",
        language="nl-NL",
        app_version="2.1.0",
        os_name="Linux",
        os_version="6.1",
        user_properties={"plan": "pro"},
        platform="server",  # Amplitude-only: not in the Segment message
        country="NL",
        extra={"carrier": "x"},
    )
    out = message(seg(), ev(options=opts))
    assert out["context"] == {
        "library": LIBRARY,
        "ip": "203.0.113.7",
        "locale": "nl-NL",
        "app": {"version": "2.1.0"},
        "os": {"name": "Linux", "version": "6.1"},
        "traits": {"plan": "pro"},
    }


def test_context_os_with_name_only() -> None:
    out = message(seg(), ev(options=EventOptions(os_name="Linux")))
    assert out["context"]["os"] == {"name": "Linux"}


@pytest.mark.parametrize(
    ("library", "expected"),
    [
        pytest.param("itly-async/0.1.0", LIBRARY, id="default"),
        pytest.param("custom/2.0", {"name": "custom", "version": "2.0"}, id="custom"),
        pytest.param("bare", {"name": "bare"}, id="no-version"),
    ],
)
def test_library(library: str, expected: dict[str, str]) -> None:
    dest = Segment("segment", KEY, SegmentOptions(), library=library)
    assert message(dest, ev())["context"]["library"] == expected


class Color(enum.Enum):
    RED = "red"


def test_rich_property_values_serialize() -> None:
    props = {
        "at": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
        "day": dt.date(2024, 5, 1),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "color": Color.RED,
        "price": decimal.Decimal("9.99"),
    }
    assert message(seg(), ev(properties=props))["properties"] == {
        "at": "2024-05-01T12:30:00+00:00",
        "day": "2024-05-01",
        "id": "12345678-1234-5678-1234-567812345678",
        "color": "red",
        "price": 9.99,
    }


# --- body --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 4])
def test_body_round_trip_and_size(count: int) -> None:
    dest = seg()
    events = [
        ev(properties={"n": 1}, insert_id="a"),
        ev(IDENTIFY, "identify", properties={"email": "x@y.z"}, insert_id="b"),
        ev(GROUP, "group", properties={"plan": "pro"}, group_id="acme-corp", insert_id="c"),
        ev(ALIAS, "alias", previous_id="user-old-1", insert_id="d"),
    ][:count]
    encoded = [dest.encode(e) for e in events]
    body = dest.body(encoded)
    commas = max(0, len(encoded) - 1)
    assert dest.envelope_size() + sum(len(e) for e in encoded) + commas == len(body)
    parsed = orjson.loads(body)
    assert parsed == {
        "batch": [orjson.loads(e) for e in encoded],
        "sentAt": "2023-11-14T22:15:00.500Z",
    }


def test_key_is_not_in_the_body() -> None:
    dest = seg()
    assert KEY.encode() not in dest.body([dest.encode(ev())])


# --- precheck ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(ev(), None, id="ok"),
        pytest.param(
            ev(user_id=None, options=EventOptions(device_id="d")), None, id="anonymous-ok"
        ),
        pytest.param(ev(user_id="u"), None, id="short-ids-fine"),
        pytest.param(ev(user_id=None), "missing userId and anonymousId", id="no-ids"),
        pytest.param(ev(name=""), "without an event name", id="no-name"),
        pytest.param(ev(GROUP, "group"), "without a group_id", id="group-no-id"),
        pytest.param(ev(GROUP, "group", group_id="acme-corp"), None, id="group-ok"),
        pytest.param(ev(ALIAS, "alias"), "without a previous_id", id="alias-no-previous"),
        pytest.param(
            ev(ALIAS, "alias", user_id=None, previous_id="old-1"),
            "without a user_id",
            id="alias-no-user",
        ),
        pytest.param(ev(ALIAS, "alias", previous_id="old-1"), None, id="alias-ok"),
        pytest.param(
            ev(properties={"blob": "x" * MAX_MESSAGE_BYTES}), "message too large", id="too-big"
        ),
        pytest.param(
            ev(properties={"blob": "x" * (MAX_MESSAGE_BYTES - 300)}), None, id="just-fits"
        ),
    ],
)
def test_precheck(event: Event, expected: str | None) -> None:
    dest = seg()
    reason = dest.precheck(event, dest.encode(event))
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


# --- classify ----------------------------------------------------------------------------

EVENTS = [ev(insert_id="a"), ev(insert_id="b"), ev(insert_id="c")]
ONE = EVENTS[:1]


def resp(
    status: int | None, body: object = b"", headers: Mapping[str, str] | None = None
) -> ResponseInfo:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return ResponseInfo(status, raw, dict(headers or {}))


def rejected(reason: str, n: int) -> Verdict:
    return Verdict(Action.DONE, reason, rejected=dict.fromkeys(range(n), reason))


CLASSIFY_CASES = [
    pytest.param(
        ResponseInfo(None, error="connection dropped"),
        EVENTS,
        Verdict(Action.RETRY, "connection dropped"),
        id="network-error",
    ),
    pytest.param(
        ResponseInfo(None), EVENTS, Verdict(Action.RETRY, "network error"), id="no-reason"
    ),
    pytest.param(resp(200, {"success": True}), EVENTS, DELIVERED, id="200"),
    pytest.param(resp(200, b"OK"), EVENTS, DELIVERED, id="200-text"),
    pytest.param(resp(202), EVENTS, DELIVERED, id="202"),
    pytest.param(resp(400), EVENTS, Verdict(Action.SPLIT, "HTTP 400"), id="400-splits"),
    pytest.param(resp(400), ONE, rejected("HTTP 400", 1), id="400-single-rejected"),
    pytest.param(
        resp(400, {"message": "Request too large"}),
        EVENTS,
        Verdict(Action.SPLIT, "HTTP 400: Request too large"),
        id="400-with-message",
    ),
    pytest.param(
        resp(400, {"error": "bad\nrequest"}),
        ONE,
        rejected("HTTP 400: bad request", 1),
        id="400-error-single",
    ),
    pytest.param(
        resp(400, {"message": 42}), EVENTS, Verdict(Action.SPLIT, "HTTP 400"), id="400-odd-body"
    ),
    pytest.param(
        resp(400, b"<html>nope</html>"),
        EVENTS,
        Verdict(Action.SPLIT, "HTTP 400"),
        id="400-html",
    ),
    pytest.param(resp(413), EVENTS, Verdict(Action.SPLIT, "HTTP 413"), id="413"),
    pytest.param(
        resp(401), EVENTS, Verdict(Action.CONFIG, "HTTP 401: check the write key"), id="401"
    ),
    pytest.param(
        resp(403), EVENTS, Verdict(Action.CONFIG, "HTTP 403: check the write key"), id="403"
    ),
    pytest.param(resp(404), EVENTS, Verdict(Action.CONFIG, "HTTP 404: check the host"), id="404"),
    pytest.param(resp(408), EVENTS, Verdict(Action.RETRY, "HTTP 408"), id="408"),
    pytest.param(
        resp(429, b"", {"Retry-After": "20"}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 429", retry_after=20.0),
        id="429-retry-after",
    ),
    pytest.param(resp(429), EVENTS, Verdict(Action.RETRY, "HTTP 429"), id="429-no-header"),
    pytest.param(
        resp(429, b"", {"retry-after": "1e9"}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 429", retry_after=300.0),
        id="429-clipped",
    ),
    pytest.param(
        resp(503, b"", {"Retry-After": "garbage"}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 503"),
        id="503-bad-header",
    ),
    *[
        pytest.param(resp(status), EVENTS, Verdict(Action.RETRY, f"HTTP {status}"), id=f"{status}")
        for status in (500, 502, 503, 504, 507, 511, 599)
    ],
    pytest.param(resp(501), EVENTS, rejected("HTTP 501", 3), id="501-rejects"),
    pytest.param(resp(505), EVENTS, rejected("HTTP 505", 3), id="505-rejects"),
    pytest.param(
        resp(301),
        EVENTS,
        Verdict(Action.CONFIG, "HTTP 301: unexpected redirect, check the URL"),
        id="301",
    ),
    pytest.param(
        resp(405),
        EVENTS,
        Verdict(Action.CONFIG, "HTTP 405: the URL does not accept events"),
        id="405",
    ),
    pytest.param(resp(422), EVENTS, rejected("HTTP 422", 3), id="422"),
]


@pytest.mark.parametrize(("response", "events", "expected"), CLASSIFY_CASES)
def test_classify(response: ResponseInfo, events: list[Event], expected: Verdict) -> None:
    assert seg().classify(response, events) == expected


def test_classify_retry_after_http_date_uses_the_clock() -> None:
    dest = Segment("segment", KEY, SegmentOptions(), clock=lambda: 1_445_412_480.0 - 15)
    response = resp(429, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert dest.classify(response, EVENTS) == Verdict(Action.RETRY, "HTTP 429", retry_after=15.0)


def test_classify_masks_the_key_in_server_text() -> None:
    dest = seg()
    token = dict(dest.headers())["Authorization"].split(" ")[1]
    for text in (f"bad key {KEY}", f"bad auth {token}"):
        verdict = dest.classify(resp(400, {"message": text}), EVENTS)
        assert KEY not in verdict.reason
        assert token not in verdict.reason
        assert "***" in verdict.reason
