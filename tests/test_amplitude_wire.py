"""Amplitude's wire format and response rules, table-tested without a network."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from itly_async._amplitude import (
    ALIAS_UNSUPPORTED,
    BATCH_MAX_BYTES,
    BATCH_MAX_EVENTS,
    HTTP_V2_MAX_BYTES,
    HTTP_V2_MAX_EVENTS,
    Amplitude,
    PlanMeta,
    UnsupportedEvent,
    dumps,
    identify_operations,
    json_default,
)
from itly_async._config import AmplitudeOptions, EventOptions
from itly_async._destination import DELIVERED, Action, HttpDestination, ResponseInfo, Verdict
from itly_async._event import ALIAS, GROUP, IDENTIFY, TRACK, Event
from itly_async._exceptions import ConfigurationError

KEY = "amp-secret-key-0123456789"
T0 = 1_700_000_000_123


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


def amp(*, plan: PlanMeta | None = None, clock_now: float = 0.0, **options: Any) -> Amplitude:
    return Amplitude(
        "amplitude", KEY, AmplitudeOptions(**options), plan=plan, clock=lambda: clock_now
    )


def wire(dest: Amplitude, event: Event) -> list[dict[str, Any]]:
    """The wire events of one call (a group call may be two)."""
    data: list[dict[str, Any]] = orjson.loads(b"[" + dest.encode(event) + b"]")
    return data


def test_is_an_http_destination() -> None:
    dest: HttpDestination = amp()
    assert dest.name == "amplitude"


# --- url and limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "url", "max_events", "max_bytes"),
    [
        pytest.param(
            {},
            "https://api2.amplitude.com/2/httpapi",
            HTTP_V2_MAX_EVENTS,
            HTTP_V2_MAX_BYTES,
            id="us-http-v2",
        ),
        pytest.param(
            {"server_zone": "EU"},
            "https://api.eu.amplitude.com/2/httpapi",
            HTTP_V2_MAX_EVENTS,
            HTTP_V2_MAX_BYTES,
            id="eu-http-v2",
        ),
        pytest.param(
            {"use_batch": True},
            "https://api2.amplitude.com/batch",
            BATCH_MAX_EVENTS,
            BATCH_MAX_BYTES,
            id="us-batch",
        ),
        pytest.param(
            {"use_batch": True, "server_zone": "EU"},
            "https://api.eu.amplitude.com/batch",
            BATCH_MAX_EVENTS,
            BATCH_MAX_BYTES,
            id="eu-batch",
        ),
        pytest.param(
            {"server_url": "http://127.0.0.1:9999/collect", "server_zone": "EU"},
            "http://127.0.0.1:9999/collect",
            HTTP_V2_MAX_EVENTS,
            HTTP_V2_MAX_BYTES,
            id="server-url-overrides",
        ),
        pytest.param(
            {"server_url": "http://proxy/amp", "use_batch": True},
            "http://proxy/amp",
            BATCH_MAX_EVENTS,
            BATCH_MAX_BYTES,
            id="server-url-with-batch",
        ),
    ],
)
def test_url_and_limits(options: dict[str, Any], url: str, max_events: int, max_bytes: int) -> None:
    dest = amp(**options)
    assert (dest.url, dest.max_events, dest.max_bytes) == (url, max_events, max_bytes)


def test_limits_stay_inside_the_api_even_when_every_call_is_two_wire_events() -> None:
    assert HTTP_V2_MAX_EVENTS * 2 < 2000
    assert BATCH_MAX_EVENTS * 2 <= 2000
    assert HTTP_V2_MAX_BYTES < 1_000_000
    assert BATCH_MAX_BYTES <= 20_000_000


def test_headers() -> None:
    assert dict(amp().headers()) == {"Content-Type": "application/json"}


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_key_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="api_key is empty"):
        Amplitude("amplitude", bad, AmplitudeOptions())


# --- encode ------------------------------------------------------------------------------


def test_track_shape() -> None:
    event = ev(properties={"count": 3, "ok": True})
    assert wire(amp(), event) == [
        {
            "event_type": "Clicked",
            "user_id": "user-0001",
            "time": T0,
            "insert_id": "iid-1",
            "event_properties": {"count": 3, "ok": True},
            "library": "itly-async/0.1.0",
        }
    ]


def test_track_without_properties_omits_them() -> None:
    (out,) = wire(amp(), ev())
    assert "event_properties" not in out
    assert "user_properties" not in out


def test_track_carries_user_properties_from_options_as_given() -> None:
    opts = EventOptions(user_properties={"plan": "pro", "$add": {"logins": 1}})
    (out,) = wire(amp(), ev(options=opts))
    assert out["user_properties"] == {"plan": "pro", "$add": {"logins": 1}}


def test_identify_shape() -> None:
    (out,) = wire(amp(), ev(IDENTIFY, "identify", properties={"email": "a@b.c"}))
    assert out == {
        "event_type": "$identify",
        "user_id": "user-0001",
        "time": T0,
        "insert_id": "iid-1",
        "user_properties": {"$set": {"email": "a@b.c"}},
        "library": "itly-async/0.1.0",
    }


def test_identify_without_traits_has_no_user_properties() -> None:
    (out,) = wire(amp(), ev(IDENTIFY, "identify"))
    assert out["event_type"] == "$identify"
    assert "user_properties" not in out


@pytest.mark.parametrize(
    ("traits", "user_properties", "expected"),
    [
        pytest.param({"a": 1}, None, {"$set": {"a": 1}}, id="traits-only"),
        pytest.param({}, None, {}, id="nothing"),
        pytest.param({}, {"b": 2}, {"$set": {"b": 2}}, id="plain-moves-under-set"),
        pytest.param(
            {"a": 1},
            {"a": 0, "b": 2, "$add": {"n": 1}},
            {"$set": {"a": 1, "b": 2}, "$add": {"n": 1}},
            id="traits-win-ops-kept",
        ),
        pytest.param(
            {"a": 1},
            {"$set": {"c": 3}, "$unset": {"d": "-"}},
            {"$set": {"c": 3, "a": 1}, "$unset": {"d": "-"}},
            id="set-merged",
        ),
    ],
)
def test_identify_operations(
    traits: dict[str, Any], user_properties: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    assert identify_operations(traits, user_properties) == expected


def test_group_with_traits_is_membership_identify_plus_groupidentify() -> None:
    dest = amp(group_type="company")
    event = ev(GROUP, "group", properties={"plan": "pro"}, group_id="acme-corp")
    membership, group = wire(dest, event)
    assert membership == {
        "event_type": "$identify",
        "user_id": "user-0001",
        "time": T0,
        "insert_id": "iid-1",
        "groups": {"company": "acme-corp"},
        "library": "itly-async/0.1.0",
    }
    assert group == {
        "event_type": "$groupidentify",
        "user_id": "user-0001",
        "time": T0,
        "insert_id": "iid-1:g",
        "groups": {"company": "acme-corp"},
        "group_properties": {"$set": {"plan": "pro"}},
        "library": "itly-async/0.1.0",
    }
    assert dest.wire_count(event) == 2


def test_group_without_traits_is_membership_only() -> None:
    dest = amp()
    event = ev(GROUP, "group", group_id="acme-corp")
    (membership,) = wire(dest, event)
    assert membership["groups"] == {"group": "acme-corp"}
    assert "group_properties" not in membership
    assert dest.wire_count(event) == 1


def test_group_encoding_is_stable_across_retries() -> None:
    dest = amp()
    event = ev(GROUP, "group", properties={"plan": "pro"}, group_id="acme-corp")
    assert dest.encode(event) == dest.encode(event)


def test_alias_is_unsupported() -> None:
    dest = amp()
    event = ev(ALIAS, "alias", previous_id="old-user-1")
    with pytest.raises(UnsupportedEvent) as info:
        dest.encode(event)
    assert info.value.reason == ALIAS_UNSUPPORTED
    assert dest.precheck(event, b"") == ALIAS_UNSUPPORTED
    assert dest.wire_count(event) == 0


def test_unknown_kind_is_unsupported() -> None:
    with pytest.raises(UnsupportedEvent, match="unknown event kind"):
        amp().encode(ev("page"))


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_rich_property_values_serialize() -> None:
    props = {
        "at": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
        "day": dt.date(2024, 5, 1),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "color": Color.RED,
        "level": Level.HIGH,
        "price": decimal.Decimal("9.99"),
        "nested": {"amounts": [decimal.Decimal("1.5"), 2], "tags": ("a", "b")},
    }
    (out,) = wire(amp(), ev(properties=props))
    assert out["event_properties"] == {
        "at": "2024-05-01T12:30:00+00:00",
        "day": "2024-05-01",
        "id": "12345678-1234-5678-1234-567812345678",
        "color": "red",
        "level": 3,
        "price": 9.99,
        "nested": {"amounts": [1.5, 2], "tags": ["a", "b"]},
    }


def test_json_default_only_knows_decimal() -> None:
    assert json_default(decimal.Decimal("2.5")) == 2.5
    with pytest.raises(TypeError, match="set"):
        json_default({1, 2})


def test_event_options_fields() -> None:
    opts = EventOptions(
        device_id="device-0001",
        session_id=1_700_000_000_000,
        app_version="2.1.0",
        platform="server",
        os_name="Linux",
        os_version="6.1",
        country="NL",
        language="nl",
        ip="$remote",
        extra={"device_model": "x86", "carrier": "none"},
    )
    (out,) = wire(amp(), ev(options=opts))
    assert out == {
        "event_type": "Clicked",
        "user_id": "user-0001",
        "device_id": "device-0001",
        "time": T0,
        "insert_id": "iid-1",
        "session_id": 1_700_000_000_000,
        "app_version": "2.1.0",
        "platform": "server",
        "os_name": "Linux",
        "os_version": "6.1",
        "country": "NL",
        "language": "nl",
        "ip": "$remote",
        "device_model": "x86",
        "carrier": "none",
        "library": "itly-async/0.1.0",
    }


def test_extra_cannot_override_named_fields() -> None:
    opts = EventOptions(
        platform="server",
        extra={"event_type": "Hacked", "user_id": "other", "insert_id": "x", "platform": "web"},
    )
    (out,) = wire(amp(), ev(options=opts))
    assert out["event_type"] == "Clicked"
    assert out["user_id"] == "user-0001"
    assert out["insert_id"] == "iid-1"
    assert out["platform"] == "server"


def test_device_only_event() -> None:
    (out,) = wire(amp(), ev(user_id=None, options=EventOptions(device_id="device-0001")))
    assert "user_id" not in out
    assert out["device_id"] == "device-0001"


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        pytest.param(
            PlanMeta(branch="main", source="backend", version="1.2.0", version_id="v-9"),
            {"branch": "main", "source": "backend", "version": "1.2.0", "versionId": "v-9"},
            id="full",
        ),
        pytest.param(
            PlanMeta(version="1.2.0", branch=""),
            {"version": "1.2.0"},
            id="partial",
        ),
        pytest.param(PlanMeta(), None, id="empty-omitted"),
        pytest.param(None, None, id="none"),
    ],
)
def test_plan_metadata(plan: PlanMeta | None, expected: dict[str, str] | None) -> None:
    (out,) = wire(amp(plan=plan), ev())
    assert out.get("plan") == expected


def test_plan_metadata_on_every_wire_event_of_a_group() -> None:
    dest = amp(plan=PlanMeta(version="1.0.0"))
    event = ev(GROUP, "group", properties={"plan": "pro"}, group_id="acme-corp")
    assert [w["plan"] for w in wire(dest, event)] == [{"version": "1.0.0"}] * 2


def test_custom_library() -> None:
    dest = Amplitude("a", KEY, AmplitudeOptions(), library="my-lib/9.9")
    (out,) = wire(dest, ev())
    assert out["library"] == "my-lib/9.9"


# --- body --------------------------------------------------------------------------------


def _batch() -> list[Event]:
    return [
        ev(properties={"n": 1}, insert_id="a"),
        ev(GROUP, "group", properties={"plan": "pro"}, group_id="acme-corp", insert_id="b"),
        ev(IDENTIFY, "identify", properties={"email": "x@y.z"}, insert_id="c"),
    ]


@pytest.mark.parametrize("count", [0, 1, 2, 3])
@pytest.mark.parametrize("min_id_length", [None, 3])
def test_body_round_trip_and_size(count: int, min_id_length: int | None) -> None:
    dest = amp(min_id_length=min_id_length)
    encoded = [dest.encode(e) for e in _batch()[:count]]
    body = dest.body(encoded)
    commas = max(0, len(encoded) - 1)
    assert dest.envelope_size() + sum(len(e) for e in encoded) + commas == len(body)
    parsed = orjson.loads(body)
    assert parsed["api_key"] == KEY
    expected_events = [w for e in encoded for w in orjson.loads(b"[" + e + b"]")]
    assert parsed["events"] == expected_events
    if min_id_length is None:
        assert "options" not in parsed
    else:
        assert parsed["options"] == {"min_id_length": min_id_length}


def test_key_is_never_in_repr() -> None:
    dest = amp(server_url="http://127.0.0.1:1/x")
    assert KEY not in repr(dest)
    assert KEY not in str(dest)
    assert "amplitude" in repr(dest)
    assert "http://127.0.0.1:1/x" in repr(dest)
    assert KEY not in repr(AmplitudeOptions(api_key=KEY))


# --- precheck ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "min_id_length", "expected"),
    [
        pytest.param(ev(), None, None, id="ok"),
        pytest.param(
            ev(user_id=None, options=EventOptions(device_id="device-0001")),
            None,
            None,
            id="device-only-ok",
        ),
        pytest.param(ev(user_id=None), None, "missing user_id and device_id", id="no-ids"),
        pytest.param(ev(user_id=""), None, "missing user_id and device_id", id="empty-user-id"),
        pytest.param(
            ev(user_id="abcd"), None, "user_id shorter than 5 characters", id="short-user"
        ),
        pytest.param(ev(user_id="abc"), 3, None, id="short-allowed-by-option"),
        pytest.param(ev(user_id="ab"), 3, "user_id shorter than 3", id="shorter-than-option"),
        pytest.param(
            ev(options=EventOptions(device_id="dev")),
            None,
            "device_id shorter than 5",
            id="short-device",
        ),
        pytest.param(ev(user_id="null"), 1, "user_id 'null' is refused", id="null-id"),
        pytest.param(ev(user_id="Anonymous"), None, "is refused", id="anonymous-any-case"),
        pytest.param(
            ev(user_id="00000000-0000-0000-0000-000000000000"), None, "is refused", id="zero-uuid"
        ),
        pytest.param(ev(user_id="-1"), 1, "is refused", id="minus-one"),
        pytest.param(
            ev(options=EventOptions(device_id="undefined")),
            None,
            "device_id 'undefined' is refused",
            id="bad-device",
        ),
        pytest.param(ev(name=""), None, "missing event_type", id="empty-name"),
        pytest.param(ev(GROUP, "group"), None, "without a group_id", id="group-no-id"),
        pytest.param(ev(ALIAS, "alias"), None, ALIAS_UNSUPPORTED, id="alias"),
    ],
)
def test_precheck(event: Event, min_id_length: int | None, expected: str | None) -> None:
    dest = amp(min_id_length=min_id_length)
    encoded = b"" if event.kind == ALIAS else dest.encode(event)
    reason = dest.precheck(event, encoded)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


def test_precheck_rejects_an_event_larger_than_a_request() -> None:
    dest = amp()
    event = ev(properties={"blob": "x" * HTTP_V2_MAX_BYTES})
    reason = dest.precheck(event, dest.encode(event))
    assert reason is not None
    assert "too large" in reason


# --- classify ----------------------------------------------------------------------------

EVENTS = [
    ev(user_id="user-0001", options=EventOptions(device_id="device-0001"), insert_id="a"),
    ev(user_id="user-0002", options=EventOptions(device_id="device-0002"), insert_id="b"),
    ev(user_id=None, options=EventOptions(device_id="device-0003"), insert_id="c"),
]
ONE = EVENTS[:1]


def resp(
    status: int | None, body: object = b"", headers: Mapping[str, str] | None = None
) -> ResponseInfo:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return ResponseInfo(status, raw, dict(headers or {}))


def done(
    reason: str,
    *,
    rejected: Mapping[int, str] | None = None,
    resend: Sequence[int] = (),
    delayed: Mapping[int, float] | None = None,
) -> Verdict:
    return Verdict(
        Action.DONE,
        reason,
        rejected=dict(rejected or {}),
        resend=frozenset(resend),
        delayed=dict(delayed or {}),
    )


CLASSIFY_CASES = [
    # --- transport ---
    pytest.param(
        ResponseInfo(None, error="timeout"), EVENTS, Verdict(Action.RETRY, "timeout"), id="timeout"
    ),
    pytest.param(
        ResponseInfo(None), EVENTS, Verdict(Action.RETRY, "network error"), id="no-reason"
    ),
    # --- 2xx ---
    pytest.param(
        resp(200, {"code": 200, "events_ingested": 3, "payload_size_bytes": 9}),
        EVENTS,
        DELIVERED,
        id="200",
    ),
    pytest.param(resp(200, b"<html>ok</html>"), EVENTS, DELIVERED, id="200-garbage-delivered"),
    pytest.param(resp(200), EVENTS, DELIVERED, id="200-empty"),
    pytest.param(resp(204), EVENTS, DELIVERED, id="204"),
    # --- 400 with per-event detail ---
    pytest.param(
        resp(
            400,
            {"code": 400, "error": "Request missing", "events_with_invalid_fields": {"time": [1]}},
        ),
        EVENTS,
        done(
            "HTTP 400: 1 of 3 events rejected", rejected={1: "invalid field: time"}, resend=[0, 2]
        ),
        id="400-invalid-field",
    ),
    pytest.param(
        resp(400, {"events_with_missing_fields": {"event_type": [0, 2]}}),
        EVENTS,
        done(
            "HTTP 400: 2 of 3 events rejected",
            rejected={0: "missing field: event_type", 2: "missing field: event_type"},
            resend=[1],
        ),
        id="400-missing-field",
    ),
    pytest.param(
        resp(400, {"events_with_invalid_id_lengths": {"user_id": [2], "device_id": [2]}}),
        EVENTS,
        done(
            "HTTP 400: 1 of 3 events rejected",
            rejected={2: "invalid id length: user_id; invalid id length: device_id"},
            resend=[0, 1],
        ),
        id="400-id-lengths",
    ),
    pytest.param(
        resp(400, {"silenced_events": [0]}),
        EVENTS,
        done("HTTP 400: 1 of 3 events rejected", rejected={0: "silenced device_id"}, resend=[1, 2]),
        id="400-silenced",
    ),
    pytest.param(
        resp(
            400,
            {
                "events_with_invalid_fields": {"time": [0], "ip": [0]},
                "events_with_missing_fields": {"event_type": [0]},
                "silenced_events": [0, 0],
            },
        ),
        EVENTS,
        done(
            "HTTP 400: 1 of 3 events rejected",
            rejected={
                0: "invalid field: time; invalid field: ip; missing field: event_type; "
                "silenced device_id"
            },
            resend=[1, 2],
        ),
        id="400-one-event-many-reasons",
    ),
    pytest.param(
        resp(400, {"events_with_invalid_fields": {"time": [0, 1, 2]}}),
        EVENTS,
        done(
            "HTTP 400: 3 of 3 events rejected",
            rejected={0: "invalid field: time", 1: "invalid field: time", 2: "invalid field: time"},
        ),
        id="400-all-listed",
    ),
    pytest.param(
        resp(400, {"events_with_invalid_fields": {"time": [1, 7, -1, "2", True, None, 1.0]}}),
        EVENTS,
        done(
            "HTTP 400: 1 of 3 events rejected", rejected={1: "invalid field: time"}, resend=[0, 2]
        ),
        id="400-bad-indexes-ignored",
    ),
    # --- 400 with request-level meaning ---
    pytest.param(
        resp(400, {"code": 400, "error": "Invalid API key: " + KEY}),
        EVENTS,
        Verdict(Action.CONFIG, "HTTP 400: invalid API key"),
        id="400-invalid-key",
    ),
    pytest.param(
        resp(
            400,
            {"code": 400, "error": "Request missing required field", "missing_field": "api_key"},
        ),
        EVENTS,
        Verdict(Action.CONFIG, "HTTP 400: request is missing field api_key"),
        id="400-missing-field-request",
    ),
    # --- 400 without usable detail: bisect ---
    pytest.param(
        resp(400, {"code": 400, "error": "Bad request"}),
        EVENTS,
        Verdict(Action.SPLIT, "HTTP 400: Bad request"),
        id="400-no-detail-splits",
    ),
    pytest.param(
        resp(400, {"code": 400, "error": "Bad request"}),
        ONE,
        done("HTTP 400: Bad request", rejected={0: "HTTP 400: Bad request"}),
        id="400-no-detail-single-rejected",
    ),
    pytest.param(resp(400, {}), EVENTS, Verdict(Action.SPLIT, "HTTP 400"), id="400-empty-object"),
    pytest.param(
        resp(400, {"events_with_invalid_fields": {"time": [3, 99, -1]}}),
        EVENTS,
        Verdict(Action.SPLIT, "HTTP 400"),
        id="400-indexes-out-of-range",
    ),
    pytest.param(
        resp(
            400,
            {
                "events_with_invalid_fields": [0, 1],
                "events_with_missing_fields": "time",
                "events_with_invalid_id_lengths": {"user_id": "0"},
                "silenced_events": {"0": 1},
            },
        ),
        EVENTS,
        Verdict(Action.SPLIT, "HTTP 400"),
        id="400-malformed-detail",
    ),
    pytest.param(
        resp(400, {"error": ["not", "a", "string"]}),
        EVENTS,
        Verdict(Action.SPLIT, "HTTP 400: ['not', 'a', 'string']"),
        id="400-odd-error-type",
    ),
    # --- 400 that is not JSON: retry ---
    pytest.param(
        resp(400, b"<html>Bad Request</html>"),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 400 with a non-JSON body"),
        id="400-html",
    ),
    pytest.param(
        resp(400, b"[0, 1]", {"Retry-After": "3"}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 400 with a non-JSON body", retry_after=3.0),
        id="400-json-array",
    ),
    # --- configuration ---
    *[
        pytest.param(
            resp(status),
            EVENTS,
            Verdict(Action.CONFIG, f"HTTP {status}: check the API key, server zone and URL"),
            id=f"{status}",
        )
        for status in (401, 403, 404)
    ],
    # --- 413 ---
    pytest.param(
        resp(413, {"code": 413, "error": "Payload too large"}),
        EVENTS,
        Verdict(Action.SPLIT, "HTTP 413: payload too large"),
        id="413",
    ),
    pytest.param(
        resp(413, b"garbage"),
        ONE,
        done("HTTP 413: payload too large", rejected={0: "HTTP 413: payload too large"}),
        id="413-single",
    ),
    # --- 429 ---
    pytest.param(
        resp(429, {"code": 429, "eps_threshold": 30, "throttled_users": {"user-0002": 31}}),
        EVENTS,
        done("HTTP 429: 1 throttled, 0 over daily quota", resend=[0, 2], delayed={1: 30.0}),
        id="429-throttled-user",
    ),
    pytest.param(
        resp(429, {"throttled_devices": {"device-0003": 40}}),
        EVENTS,
        done("HTTP 429: 1 throttled, 0 over daily quota", resend=[0, 1], delayed={2: 30.0}),
        id="429-throttled-device",
    ),
    pytest.param(
        resp(429, {"throttled_events": [0, 2, 9, "1"]}),
        EVENTS,
        done("HTTP 429: 2 throttled, 0 over daily quota", resend=[1], delayed={0: 30.0, 2: 30.0}),
        id="429-throttled-events",
    ),
    pytest.param(
        resp(429, {"throttled_users": {"user-0001": 31}}, {"retry-after": "12"}),
        EVENTS,
        done("HTTP 429: 1 throttled, 0 over daily quota", resend=[1, 2], delayed={0: 12.0}),
        id="429-retry-after-header",
    ),
    pytest.param(
        resp(429, {"throttled_users": {"user-0001": 31}}, {"Retry-After": "99999"}),
        EVENTS,
        done("HTTP 429: 1 throttled, 0 over daily quota", resend=[1, 2], delayed={0: 300.0}),
        id="429-retry-after-clipped",
    ),
    pytest.param(
        resp(429, {"exceeded_daily_quota_users": {"user-0002": 500001}}),
        EVENTS,
        done(
            "HTTP 429: 0 throttled, 1 over daily quota",
            rejected={1: "daily quota exceeded"},
            resend=[0, 2],
        ),
        id="429-daily-quota-user",
    ),
    pytest.param(
        resp(429, {"exceeded_daily_quota_devices": ["device-0003"]}),
        EVENTS,
        done(
            "HTTP 429: 0 throttled, 1 over daily quota",
            rejected={2: "daily quota exceeded"},
            resend=[0, 1],
        ),
        id="429-daily-quota-device-list",
    ),
    pytest.param(
        resp(
            429,
            {
                "exceeded_daily_quota_users": {"user-0001": 1},
                "throttled_users": {"user-0001": 50, "user-0002": 50},
            },
        ),
        EVENTS,
        done(
            "HTTP 429: 1 throttled, 1 over daily quota",
            rejected={0: "daily quota exceeded"},
            resend=[2],
            delayed={1: 30.0},
        ),
        id="429-quota-beats-throttle",
    ),
    pytest.param(
        resp(429, {"code": 429, "error": "Too many requests"}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 429: throttled", retry_after=30.0),
        id="429-no-detail",
    ),
    pytest.param(
        resp(429, {"throttled_users": {"someone-else": 40}, "throttled_events": [5]}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 429: throttled", retry_after=30.0),
        id="429-nothing-matches",
    ),
    pytest.param(
        resp(429, {"throttled_users": "user-0001", "throttled_devices": 7}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 429: throttled", retry_after=30.0),
        id="429-malformed",
    ),
    pytest.param(
        resp(429, b"slow down", {"Retry-After": "5"}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 429: throttled", retry_after=5.0),
        id="429-non-json",
    ),
    # --- 5xx and timeouts ---
    *[
        pytest.param(resp(status), EVENTS, Verdict(Action.RETRY, f"HTTP {status}"), id=f"{status}")
        for status in (500, 502, 503, 504, 507, 599)
    ],
    pytest.param(
        resp(503, b"", {"Retry-After": "7"}),
        EVENTS,
        Verdict(Action.RETRY, "HTTP 503", retry_after=7.0),
        id="503-retry-after",
    ),
    pytest.param(resp(408), EVENTS, Verdict(Action.RETRY, "HTTP 408"), id="408"),
    # --- anything else ---
    pytest.param(
        resp(302),
        EVENTS,
        Verdict(Action.CONFIG, "HTTP 302: unexpected redirect, check the URL"),
        id="302",
    ),
    pytest.param(
        resp(405),
        EVENTS,
        Verdict(Action.CONFIG, "HTTP 405: the URL does not accept events"),
        id="405",
    ),
    pytest.param(
        resp(422),
        ONE,
        done("HTTP 422", rejected={0: "HTTP 422"}),
        id="422",
    ),
]


@pytest.mark.parametrize(("response", "events", "expected"), CLASSIFY_CASES)
def test_classify(response: ResponseInfo, events: list[Event], expected: Verdict) -> None:
    assert amp().classify(response, events) == expected


def test_classify_retry_after_http_date_uses_the_clock() -> None:
    dest = amp(clock_now=1_445_412_480.0 - 20)
    response = resp(503, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert dest.classify(response, EVENTS) == Verdict(Action.RETRY, "HTTP 503", retry_after=20.0)


def test_classify_maps_wire_indexes_of_group_calls_back_to_calls() -> None:
    events = [
        ev(GROUP, "group", properties={"plan": "pro"}, group_id="acme-corp"),  # wire 0, 1
        ev(),  # wire 2
        ev(GROUP, "group", group_id="acme-corp"),  # wire 3
    ]
    dest = amp()
    assert [dest.wire_count(e) for e in events] == [2, 1, 1]
    verdict = dest.classify(
        resp(400, {"events_with_invalid_fields": {"group_properties": [1], "time": [3]}}), events
    )
    assert verdict == done(
        "HTTP 400: 2 of 3 events rejected",
        rejected={0: "invalid field: group_properties", 2: "invalid field: time"},
        resend=[1],
    )
    throttled = dest.classify(resp(429, {"throttled_events": [2]}), events)
    assert throttled == done(
        "HTTP 429: 1 throttled, 0 over daily quota", resend=[0, 2], delayed={1: 30.0}
    )
    # index 4 is past the last wire event: ignored, nothing usable -> bisect
    assert dest.classify(resp(400, {"silenced_events": [4]}), events) == Verdict(
        Action.SPLIT, "HTTP 400"
    )


def test_classify_masks_the_key_in_server_text() -> None:
    dest = amp()
    for body in (
        {"error": f"request for {KEY} is bad"},
        {"missing_field": KEY},
        {"events_with_invalid_fields": {KEY: [0]}},
    ):
        verdict = dest.classify(resp(400, body), EVENTS)
        assert KEY not in verdict.reason
        assert all(KEY not in r for r in verdict.rejected.values())


@pytest.mark.parametrize(
    ("status", "action"),
    [(400, Action.DONE), (413, Action.DONE), (429, Action.RETRY), (500, Action.RETRY)],
)
def test_classify_an_empty_batch_names_no_event(status: int, action: Action) -> None:
    """Indexes in a body that match no event of the batch are ignored, not a crash."""
    verdict = amp().classify(resp(status, {"events_with_invalid_fields": {"time": [0]}}), [])
    assert verdict.action is action
    assert not verdict.rejected
    assert not verdict.resend
    assert not verdict.delayed
