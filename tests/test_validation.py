"""Validation semantics per DESIGN.md: raise in development, log and send in production."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable

import pytest

from itly_async import (
    AmplitudeOptions,
    Client,
    Environment,
    Options,
    Plan,
    Schema,
    ValidationError,
    ValidationOptions,
)
from itly_async.testing import Collector
from tests.helpers import AMP_KEY, PLAN, ListLogger


def plan_client(
    collector: Collector, *, logger: ListLogger | None = None, **options: object
) -> Client:
    client = Client()
    client.load(
        Options(
            context={"app": "tests"},
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            logger=logger,
            **options,  # type: ignore[arg-type]
        ),
        plan=PLAN,
    )
    return client


async def test_development_raises_listing_every_failing_property(collector: Collector) -> None:
    client = plan_client(collector)
    with pytest.raises(ValidationError) as info:
        await client.track(
            "user-0001",
            "Process Started",
            {"available_processors": 0, "mode": "sideways", "tags": ["a", 2], "extra": 1},
        )
    error = info.value
    assert error.item == "Process Started"
    found = {(e.path, e.rule) for e in error.errors}
    assert ("$.available_processors", "minimum") in found
    assert ("$.mode", "enum") in found
    assert ("$.tags[1]", "type") in found
    assert ("$.extra", "additionalProperties") in found
    assert "Process Started" in str(error)
    assert isinstance(error, ValueError)
    report = await client.flush(timeout=5)
    assert report.stats.enqueued == 0
    assert collector.requests == []
    await client.shutdown(timeout=5)


async def test_missing_required_property_is_named(collector: Collector) -> None:
    client = plan_client(collector)
    with pytest.raises(ValidationError) as info:
        await client.track("user-0001", "Process Started", {"mode": "batch"})
    assert [(e.path, e.rule) for e in info.value.errors] == [("$.available_processors", "required")]
    await client.shutdown(timeout=5)


async def test_production_logs_through_the_custom_logger_and_still_sends(
    collector: Collector,
) -> None:
    logger = ListLogger()
    client = plan_client(collector, logger=logger, environment=Environment.PRODUCTION)
    await client.track("user-0001", "Process Started", {"available_processors": -5})
    await client.flush(timeout=10)

    (event,) = collector.amplitude_events()
    assert event["event_properties"] == {"available_processors": -5, "app": "tests"}
    assert client.stats().validation_errors == 1
    assert any(
        level == "error" and "available_processors" in msg and "minimum" in msg
        for level, msg in logger.lines
    )
    await client.shutdown(timeout=5)


async def test_disabled_validation_skips_checks(collector: Collector) -> None:
    client = plan_client(collector, validation=ValidationOptions(disabled=True))
    await client.track("user-0001", "Process Started", {"available_processors": "many"})
    await client.flush(timeout=10)
    assert len(collector.amplitude_events()) == 1
    assert client.stats().validation_errors == 0
    await client.shutdown(timeout=5)


async def test_fail_on_error_overrides_the_environment(collector: Collector) -> None:
    client = plan_client(
        collector,
        environment=Environment.PRODUCTION,
        validation=ValidationOptions(fail_on_error=True),
    )
    with pytest.raises(ValidationError):
        await client.track("user-0001", "Process Started", {"available_processors": 0})
    await client.shutdown(timeout=5)


class Color(enum.Enum):
    RED = "red"


async def test_rich_python_values_serialize(collector: Collector) -> None:
    client = Client()
    client.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            }
        )
    )
    when = dt.datetime(2026, 12, 3, 19, 0, tzinfo=dt.UTC)
    key = uuid.UUID(int=7)
    await client.track(
        "user-0001",
        "Rich",
        {
            "when": when,
            "day": dt.date(2026, 12, 3),
            "price": decimal.Decimal("9.5"),
            "id": key,
            "color": Color.RED,
            "tags": ("a", "b"),
            "nested": {"at": when},
        },
    )
    await client.flush(timeout=10)
    (event,) = collector.amplitude_events()
    assert event["event_properties"] == {
        "when": "2026-12-03T19:00:00+00:00",
        "day": "2026-12-03",
        "price": 9.5,
        "id": str(key),
        "color": "red",
        "tags": ["a", "b"],
        "nested": {"at": "2026-12-03T19:00:00+00:00"},
    }
    await client.shutdown(timeout=5)


async def test_unserializable_values_are_validation_errors(collector: Collector) -> None:
    client = plan_client(collector)
    with pytest.raises(ValidationError) as info:
        await client.track(
            "user-0001", "Process Started", {"available_processors": 2, "ratio": float("nan")}
        )
    first = info.value.errors[0]
    assert (first.path, first.rule) == ("$.ratio", "finite")
    with pytest.raises(ValidationError) as huge:  # finite as a Decimal, not as a float
        await client.track(
            "user-0001",
            "Process Started",
            {"available_processors": 2, "ratio": decimal.Decimal("1e400")},
        )
    assert [(e.path, e.rule) for e in huge.value.errors] == [("$.ratio", "finite")]
    with pytest.raises(ValidationError) as info2:
        await client.track("user-0001", "Unplanned", {"thing": object()})
    assert info2.value.errors[0].path == "$.thing"
    assert info2.value.errors[0].rule == "serializable"
    await client.shutdown(timeout=5)


async def test_unserializable_values_in_production_are_sent_as_null_and_logged(
    collector: Collector,
) -> None:
    logger = ListLogger()
    client = plan_client(collector, logger=logger, environment=Environment.PRODUCTION)
    await client.track("user-0001", "Unplanned", {"thing": object(), "ok": 1})
    await client.flush(timeout=10)
    (event,) = collector.amplitude_events()
    assert event["event_properties"]["thing"] is None
    assert event["event_properties"]["ok"] == 1
    assert "thing" in logger.text()
    await client.shutdown(timeout=5)


async def test_values_orjson_cannot_write_are_caught_in_the_call(collector: Collector) -> None:
    """Integers beyond 64 bits: a validation error where it is raised, null where it is
    logged; non-string keys are sent as strings (as the converting path does)."""
    client = plan_client(collector)
    with pytest.raises(ValidationError) as info:
        await client.track("user-0001", "Unplanned", {"big": 2**70, "ok": 1})
    assert [(e.path, e.rule) for e in info.value.errors] == [("$.big", "serializable")]
    with pytest.raises(ValidationError) as nested:
        await client.track("user-0001", "Unplanned", {"n": {"deep": [1, 2**70]}})
    assert [(e.path, e.rule) for e in nested.value.errors] == [("$.n.deep[1]", "serializable")]
    await client.shutdown(timeout=5)

    # validation off, development: logged and sent as null, like NaN or an object
    logger = ListLogger()
    client = plan_client(collector, logger=logger, validation=ValidationOptions(disabled=True))
    await client.track("user-0001", "Unplanned", {"big": 2**70, "ok": 2})
    assert "$.big" in logger.text()
    await client.flush(timeout=10)
    assert collector.amplitude_events()[-1]["event_properties"] == {
        "app": "tests",
        "big": None,
        "ok": 2,
    }
    await client.shutdown(timeout=5)

    logger = ListLogger()
    client = plan_client(collector, logger=logger, environment=Environment.PRODUCTION)
    await client.track("user-0001", "Unplanned", {"big": 2**70, "ok": 1})
    await client.track("user-0001", "Unplanned", {7: "seven"})
    await client.flush(timeout=10)
    first, second = collector.amplitude_events()[-2:]
    assert first["event_properties"] == {"app": "tests", "big": None, "ok": 1}
    assert second["event_properties"] == {"app": "tests", "7": "seven"}
    assert "$.big" in logger.text()
    await client.shutdown(timeout=5)


def test_context_is_validated_at_load(collector: Collector) -> None:
    client = Client()
    with pytest.raises(ValidationError) as info:
        client.load(
            Options(
                context={"app": 3},
                destinations={
                    "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.url)
                },
            ),
            plan=PLAN,
        )
    assert info.value.item == "context"
    assert info.value.errors[0].path == "$.app"


async def test_identify_and_group_traits_are_validated(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    client = plan_client(collector)
    with pytest.raises(ValidationError) as info:
        await client.identify("user-0001", {"email": "not-an-email"})
    assert info.value.item == "identify"
    with pytest.raises(ValidationError):
        await client.group("user-0001", "org-1", {"plan": "platinum"})
    await client.identify("user-0001", {"email": "a@example.com"})
    await client.shutdown(timeout=5)


def test_precompiled_validator_without_schema_still_explains() -> None:
    import fastjsonschema

    fast = fastjsonschema.compile({"type": "object", "properties": {"n": {"type": "integer"}}})
    plan = Plan(events={"E": Schema(validate=fast)})
    client = Client()
    client.load(Options(), plan=plan)
    event = None
    with pytest.raises(ValidationError) as info:
        event = client.make_track("user-0001", "E", {"n": "x"}, None)
    assert event is None
    assert info.value.errors[0].path == "$.n"


async def test_planned_values_that_need_converting_are_converted_then_validated(
    collector: Collector,
) -> None:
    """The pre-check cannot prove a datetime valid (it is not JSON yet): the call converts
    it, and the plan's rules then apply to the ISO string."""
    client = plan_client(collector)
    when = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)
    await client.track("user-0001", "Process Started", {"available_processors": 2, "when": when})
    with pytest.raises(ValidationError) as info:
        await client.track(
            "user-0001", "Process Started", {"available_processors": 2, "when": dt.date(2026, 1, 1)}
        )
    assert [(e.path, e.rule) for e in info.value.errors] == [("$.when", "format")]
    await client.flush(timeout=10)
    (event,) = collector.amplitude_events()
    assert event["event_properties"]["when"] == "2026-12-04T09:30:00+00:00"
    await client.shutdown(timeout=5)


async def test_validation_never_changes_the_callers_dict(collector: Collector) -> None:
    """fastjsonschema fills in ``default`` values unless told not to; a schema given as a
    dict is compiled so that it never does, on the passing and the failing path alike."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "default": "filled"}, "b": {"type": "integer"}},
        "required": ["b"],
        "additionalProperties": False,
    }
    client = Client()
    client.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
        ),
        plan=Plan(events={"E": Schema(schema=schema)}),
    )
    valid = {"b": 1}
    invalid = {"b": 1, "x": 2}
    await client.track("user-0001", "E", valid)
    with pytest.raises(ValidationError):
        await client.track("user-0001", "E", invalid)
    assert valid == {"b": 1}
    assert invalid == {"b": 1, "x": 2}
    await client.flush(timeout=10)
    (event,) = collector.amplitude_events()
    assert event["event_properties"] == {"b": 1}
    await client.shutdown(timeout=5)


def test_schemas_compiled_at_load_check_the_formats_generated_packages_check() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}}
    client = Client()
    client.load(Options(), plan=Plan(events={"E": Schema(schema=schema)}))
    assert client.make_track("user-0001", "E", {"id": str(uuid.UUID(int=7))}, None) is not None
    with pytest.raises(ValidationError) as info:
        client.make_track("user-0001", "E", {"id": "not-a-uuid"}, None)
    assert [(e.path, e.rule) for e in info.value.errors] == [("$.id", "format")]


def test_every_failing_value_is_listed_however_deep() -> None:
    """One bad value inside an object or an array does not hide the others around it."""
    schema = {
        "type": "object",
        "properties": {
            "addr": {
                "type": "object",
                "properties": {
                    "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                    "city": {"type": "string", "minLength": 2},
                    "street": {"type": "string"},
                },
                "required": ["zip", "street"],
                "additionalProperties": False,
            },
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "n": {"type": "integer"},
        },
        "additionalProperties": False,
    }
    client = Client()
    client.load(Options(), plan=Plan(events={"E": Schema(schema=schema)}))
    with pytest.raises(ValidationError) as info:
        client.make_track(
            "user-0001",
            "E",
            {"addr": {"zip": "abc", "city": "x", "bogus": 1}, "tags": [1, "a", 3], "n": "x"},
            None,
        )
    assert sorted((e.path, e.rule) for e in info.value.errors) == [
        ("$.addr.bogus", "additionalProperties"),
        ("$.addr.city", "minLength"),
        ("$.addr.street", "required"),
        ("$.addr.zip", "pattern"),
        ("$.n", "type"),
        ("$.tags", "maxItems"),
        ("$.tags[0]", "type"),
        ("$.tags[2]", "type"),
    ]
