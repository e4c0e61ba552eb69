"""Option classes: every field is type-checked at construction, with a message naming it."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import pathlib
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from itly_async import (
    AmplitudeOptions,
    Client,
    CustomOptions,
    DeliveryOptions,
    Environment,
    EventOptions,
    Options,
    SegmentOptions,
    ValidationOptions,
)
from itly_async.testing import Collector, RecordingAdapter
from tests.helpers import AMP_KEY, ListLogger

NAN = math.nan
INF = math.inf
NAIVE = dt.datetime(2024, 1, 1, 12, 0)  # no tzinfo: ambiguous

# (class, field, wrong value): each must raise ValueError naming "Class.field"
BAD: list[tuple[type, str, object]] = [
    (ValidationOptions, "disabled", "no"),
    (ValidationOptions, "disabled", 1),
    (ValidationOptions, "fail_on_error", "true"),
    (DeliveryOptions, "flush_queue_size", "10"),
    (DeliveryOptions, "flush_queue_size", 2.5),
    (DeliveryOptions, "flush_queue_size", True),
    (DeliveryOptions, "flush_queue_size", 0),
    (DeliveryOptions, "flush_interval", "5"),
    (DeliveryOptions, "flush_interval", True),
    (DeliveryOptions, "flush_interval", NAN),
    (DeliveryOptions, "flush_interval", INF),
    (DeliveryOptions, "flush_interval", 0),
    (DeliveryOptions, "max_queue_size", 1000.0),
    (DeliveryOptions, "max_queue_size", None),
    (DeliveryOptions, "overflow", 1),
    (DeliveryOptions, "overflow", "drop_all"),
    (DeliveryOptions, "timeout", None),
    (DeliveryOptions, "timeout", -INF),
    (DeliveryOptions, "max_retries", "3"),
    (DeliveryOptions, "max_retries", -1),
    (DeliveryOptions, "max_retries", 3.0),
    (DeliveryOptions, "max_retry_duration", INF),
    (DeliveryOptions, "retry_base", -0.1),
    (DeliveryOptions, "retry_base", False),
    (DeliveryOptions, "retry_cap", "30"),
    (DeliveryOptions, "max_server_wait", NAN),
    (DeliveryOptions, "shutdown_timeout", 0),
    (DeliveryOptions, "adapter_timeout", decimal.Decimal(10)),
    (DeliveryOptions, "gzip", "yes"),
    (DeliveryOptions, "gzip", 1),
    (DeliveryOptions, "max_concurrent_requests", 0),
    (DeliveryOptions, "max_concurrent_requests", 1.5),
    (DeliveryOptions, "spool_path", 5),
    (DeliveryOptions, "spool_path", b"events.sqlite"),
    (DeliveryOptions, "spool_path", ""),
    (DeliveryOptions, "spool_mode", "sync"),
    (DeliveryOptions, "spool_mode", None),
    (AmplitudeOptions, "api_key", 123),
    (AmplitudeOptions, "server_zone", "us"),
    (AmplitudeOptions, "server_zone", None),
    (AmplitudeOptions, "use_batch", "true"),
    (AmplitudeOptions, "server_url", 8080),
    (AmplitudeOptions, "server_url", "ftp://collector"),
    (AmplitudeOptions, "min_id_length", "5"),
    (AmplitudeOptions, "min_id_length", 5.0),
    (AmplitudeOptions, "min_id_length", True),
    (AmplitudeOptions, "min_id_length", 0),
    (AmplitudeOptions, "group_type", ""),
    (AmplitudeOptions, "group_type", None),
    (SegmentOptions, "write_key", 123),
    (SegmentOptions, "write_key", ""),
    (SegmentOptions, "host", 5),
    (SegmentOptions, "host", "collector:8080"),
    (CustomOptions, "adapter", None),
    (CustomOptions, "adapter", object()),
    (EventOptions, "device_id", 5),
    (EventOptions, "time", "2024-01-01"),
    (EventOptions, "time", 1.7e12),
    (EventOptions, "time", True),
    (EventOptions, "time", -1),
    (EventOptions, "time", NAIVE),
    (EventOptions, "time", dt.date(2024, 1, 1)),
    (EventOptions, "insert_id", 5),
    (EventOptions, "session_id", "1700000000000"),
    (EventOptions, "session_id", 1.5),
    (EventOptions, "session_id", True),
    (EventOptions, "app_version", 2.1),
    (EventOptions, "platform", 1),
    (EventOptions, "os_name", 1),
    (EventOptions, "os_version", 6.1),
    (EventOptions, "country", 1),
    (EventOptions, "language", 1),
    (EventOptions, "ip", 127),
    (EventOptions, "user_properties", [("plan", "pro")]),
    (EventOptions, "user_properties", "plan=pro"),
    (EventOptions, "extra", 5),
    (Options, "context", 5),
    (Options, "disabled", "false"),
    (Options, "environment", "staging"),
    (Options, "environment", 1),
    (Options, "destinations", 5),
    (Options, "destinations", {"amplitude": {"api_key": "k"}}),
    (Options, "logger", object()),
    (Options, "validation", {"disabled": True}),
    (Options, "validation", ValidationOptions),
    (Options, "delivery", {"flush_queue_size": 10}),
    (Options, "delivery", ValidationOptions()),
]


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    BAD,
    ids=[f"{c.__name__}.{f}={v!r}"[:60] for c, f, v in BAD],
)
def test_a_wrong_value_raises_a_value_error_naming_class_and_field(
    cls: type, field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{cls.__name__}.{field}")) as info:
        cls(**{field: value})
    assert "must" in str(info.value)  # it says what is expected, not only what is wrong


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: DeliveryOptions(flush_queue_size="10"), "must be an int, not str"),  # type: ignore[arg-type]
        (lambda: DeliveryOptions(timeout=True), "must be a number of seconds, not bool"),
        (lambda: DeliveryOptions(flush_interval=NAN), "finite"),
        (lambda: Options(validation={"disabled": True}), "ValidationOptions or None, not dict"),  # type: ignore[arg-type]
        (lambda: EventOptions(time="2024-01-01"), "datetime"),  # type: ignore[arg-type]
    ],
)
def test_the_message_says_what_is_expected(build: Callable[[], object], expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        build()


def test_key_values_never_appear_in_type_errors() -> None:
    secret = "super-secret-key-456"
    for build in (
        lambda: AmplitudeOptions(api_key=secret.encode()),  # type: ignore[arg-type]
        lambda: AmplitudeOptions(api_key=[secret]),  # type: ignore[arg-type]
        lambda: SegmentOptions(write_key={"key": secret}),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="_key must be a non-empty str or None") as info:
            build()
        assert secret not in str(info.value)


class Adapter:
    def track(self, user_id: str | None, event: object) -> None:
        return None


GOOD: list[Callable[[], object]] = [
    ValidationOptions,
    lambda: ValidationOptions(disabled=True, fail_on_error=False),
    DeliveryOptions,
    lambda: DeliveryOptions(
        flush_queue_size=1,
        flush_interval=1,  # an int is a fine number of seconds
        max_queue_size=1,
        overflow="block",
        timeout=0.25,
        max_retries=0,
        max_retry_duration=60,
        retry_base=0,
        retry_cap=0.0,
        max_server_wait=0,
        shutdown_timeout=1,
        adapter_timeout=2.5,
        gzip=True,
        max_concurrent_requests=8,
        spool_path="events.sqlite",
        spool_mode="write_behind",
    ),
    AmplitudeOptions,
    lambda: AmplitudeOptions(
        api_key="k",
        server_zone="EU",
        use_batch=True,
        server_url="http://127.0.0.1:1/2/httpapi",
        min_id_length=1,
        group_type="org",
    ),
    lambda: SegmentOptions(write_key="k", host="https://events.eu1.segmentapis.com"),
    lambda: CustomOptions(adapter=Adapter()),
    EventOptions,
    lambda: EventOptions(
        device_id="device-0001",
        time=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        insert_id="id-1",
        session_id=1_700_000_000_000,
        app_version="2.1.0",
        platform="server",
        os_name="Linux",
        os_version="6.1",
        country="NL",
        language="nl",
        ip="$remote",
        user_properties={"plan": "pro", "$add": {"logins": 1}},
        extra={"carrier": None, "price": 9.5},
    ),
    lambda: EventOptions(time=0, session_id=-1),  # -1: Amplitude's "no session"
    Options,
    lambda: Options(
        context={"app": "x"},
        disabled=True,
        environment="Production",
        destinations={"amplitude": AmplitudeOptions(api_key="k"), "off": None},
        logger=ListLogger(),
        validation=ValidationOptions(),
        delivery=DeliveryOptions(),
    ),
]


@pytest.mark.parametrize("build", GOOD)
def test_good_values_are_accepted(build: Callable[[], object]) -> None:
    build()


def test_defaults_are_unchanged() -> None:
    d = DeliveryOptions()
    assert (d.flush_queue_size, d.flush_interval, d.max_queue_size) == (200, 5.0, 20_000)
    assert (d.overflow, d.timeout, d.max_retries, d.spool_path) == ("drop_newest", 10.0, 12, None)
    assert d.spool_mode == "write_through"
    assert Options().environment is Environment.DEVELOPMENT
    assert AmplitudeOptions().server_zone == "US"


def test_a_spool_path_may_be_a_pathlib_path(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "events.sqlite"
    assert DeliveryOptions(spool_path=path).spool_path == str(path)  # type: ignore[arg-type]


def test_custom_options_takes_the_adapter_positionally() -> None:
    adapter = RecordingAdapter()
    assert CustomOptions(adapter).adapter is adapter
    assert CustomOptions(adapter) == CustomOptions(adapter=adapter)
    with pytest.raises(ValueError, match=r"CustomOptions\.adapter"):
        CustomOptions(object())


def test_other_option_classes_stay_keyword_only() -> None:
    with pytest.raises(TypeError):
        DeliveryOptions(200)  # type: ignore[misc]
    with pytest.raises(TypeError):
        AmplitudeOptions("key")  # type: ignore[misc]


class Color(enum.Enum):
    RED = "red"


def test_event_option_mappings_are_made_json_ready() -> None:
    opts = EventOptions(
        user_properties={
            "at": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
            "day": dt.date(2024, 5, 1),
            "price": decimal.Decimal("9.99"),
            "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "color": Color.RED,
            "pair": (1, 2),
            "tags": {"a"},
            "nested": {"when": dt.date(2024, 5, 2), "n": [decimal.Decimal(2)]},
        },
        extra={"device_model": ("x86",)},
    )
    assert opts.user_properties == {
        "at": "2024-05-01T12:30:00+00:00",
        "day": "2024-05-01",
        "price": 9.99,
        "id": "12345678-1234-5678-1234-567812345678",
        "color": "red",
        "pair": [1, 2],
        "tags": ["a"],
        "nested": {"when": "2024-05-02", "n": [2.0]},
    }
    assert opts.extra == {"device_model": ["x86"]}


def test_event_option_mappings_are_a_snapshot() -> None:
    props: dict[str, Any] = {"plan": "free", "seats": [1]}
    opts = EventOptions(user_properties=props)
    props["plan"] = "pro"
    props["seats"].append(2)
    assert opts.user_properties == {"plan": "free", "seats": [1]}


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("user_properties", {"who": object()}, "$.who"),
        ("user_properties", {"a": {"b": [1, NAN]}}, "$.a.b[1]"),
        ("user_properties", {"price": decimal.Decimal("1e400")}, "$.price"),
        ("user_properties", {"price": decimal.Decimal("NaN")}, "$.price"),
        ("extra", {"ratio": INF}, "$.ratio"),
        ("extra", {"big": {"n": 2**64}}, "$.big.n"),
        ("extra", {"by_id": {1: "a"}}, "$.by_id"),
        ("extra", {"items": (1, object())}, "$.items[1]"),
    ],
)
def test_event_option_values_that_cannot_be_sent_name_the_key_path(
    field: str, value: dict[str, Any], path: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"EventOptions.{field}")) as info:
        EventOptions(**{field: value})
    assert path in str(info.value)


async def test_converted_event_options_reach_the_wire(collector: Collector) -> None:
    client = Client()
    client.load(
        Options(
            environment=Environment.PRODUCTION,
            logger=ListLogger(),
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
        )
    )
    opts = EventOptions(
        user_properties={"since": dt.date(2024, 1, 2), "ltv": decimal.Decimal("12.5")},
        extra={"country": "NL", "carrier": Color.RED, "tags": {"beta"}},
    )
    await client.track("user-0001", "Bought", {"n": 1}, event_options=opts)
    report = await client.flush(timeout=10)
    assert report.delivered == 1
    assert report.rejected == 0
    (event,) = collector.amplitude_events()
    assert event["user_properties"] == {"since": "2024-01-02", "ltv": 12.5}
    assert (event["country"], event["carrier"], event["tags"]) == ("NL", "red", ["beta"])
    await client.shutdown(timeout=5)
