"""Generated packages, imported and run: events reach the test collector, async and sync."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from codegen import load_plan
from codegen.samples import call_arguments, sample
from codegen.samples import small_plan as plan_dict
from itly_async.testing import Collector, RecordingAdapter, ThreadedCollector

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "tracking-plan.json"
HOSTILE = ROOT / "examples" / "plans" / "hostile.json"

Importer = Callable[..., ModuleType]


def _options(pkg: ModuleType, collector: Any, **extra: Any) -> Any:
    return pkg.Options(
        context=pkg.Context(app_version="1.0"),
        destinations=pkg.DestinationsOptions(
            amplitude=pkg.AmplitudeOptions(server_url=collector.amplitude_url),
            segment=pkg.SegmentOptions(host=collector.segment_host),
        ),
        **extra,
    )


async def test_every_demo_event_is_delivered_async(import_generated: Importer) -> None:
    pkg = import_generated(json.loads(DEMO.read_text()), "backend")
    plan = load_plan(DEMO)
    events = plan.events_of("backend")
    async with Collector() as collector:
        pkg.load(_options(pkg, collector))
        expected = {}
        for event in events:
            args, kwargs, props = call_arguments(event)
            await getattr(pkg, event.ident)("user-1", *args, **kwargs)
            expected[event.name] = props
        report = await pkg.shutdown(10)
        assert report.delivered == 2 * len(events), report
        received = {e["event_type"]: e for e in collector.amplitude_events()}
        segment = {m["event"]: m for m in collector.segment_messages() if m["type"] == "track"}
    assert set(received) == set(expected) == set(segment)
    for name, props in expected.items():
        sent = received[name]["event_properties"]
        assert {k: sent[k] for k in props} == props, name  # original names as keys
        assert sent["app_version"] == "1.0"
        assert sent["platform"] == "server"
        assert segment[name]["properties"]["app_version"] == "1.0"


async def test_identify_group_alias_and_track(import_generated: Importer) -> None:
    pkg = import_generated(json.loads(DEMO.read_text()), "backend")
    async with Collector() as collector:
        pkg.load(_options(pkg, collector))
        await pkg.identify("user-1", "a@example.com", plan="pro")
        await pkg.group("user-1", "acme", "Acme Inc", seats=3)
        await pkg.alias("user-1", "anonymous-1")
        await pkg.track("user-1", "Not In The Plan", {"free form": 1})
        await pkg.flush(10)
        messages = collector.segment_messages()
        await pkg.shutdown(10)
    by_type = {m["type"]: m for m in messages}
    assert by_type["identify"]["traits"] == {"email": "a@example.com", "plan": "pro"}
    assert by_type["group"]["groupId"] == "acme"
    assert by_type["group"]["traits"] == {"name": "Acme Inc", "seats": 3}
    assert by_type["alias"]["previousId"] == "anonymous-1"
    assert by_type["track"]["properties"]["free form"] == 1


async def test_invalid_event_raises_in_development(import_generated: Importer) -> None:
    pkg = import_generated(json.loads(DEMO.read_text()), "backend")
    async with Collector() as collector:
        pkg.load(_options(pkg, collector))
        with pytest.raises(pkg.ValidationError) as info:
            await pkg.login_failed("user-1", "bad_password", 0)
        assert info.value.item == "Login Failed"
        await pkg.shutdown(10)
        assert collector.amplitude_events() == []


def test_every_demo_event_is_delivered_sync(import_generated: Importer) -> None:
    pkg = import_generated(json.loads(DEMO.read_text()), "worker")
    plan = load_plan(DEMO)
    events = plan.events_of("worker")
    with ThreadedCollector() as collector:
        pkg.sync.load(
            pkg.Options(
                context=pkg.Context(app_version="2.0"),
                destinations=pkg.DestinationsOptions(
                    amplitude=pkg.AmplitudeOptions(server_url=collector.amplitude_url)
                ),
            )
        )
        for event in events:
            args, kwargs, _ = call_arguments(event)
            getattr(pkg.sync, event.ident)("user-2", *args, **kwargs)
        pkg.sync.identify("user-2", "b@example.com")
        report = pkg.sync.shutdown(10)
        names = sorted(e["event_type"] for e in collector.amplitude_events())
    assert report.delivered == len(events) + 1, report
    assert names == sorted([e.name for e in events] + ["$identify"])


def test_sync_validation_error_raises_in_the_caller(import_generated: Importer) -> None:
    pkg = import_generated(json.loads(DEMO.read_text()), "worker")
    with ThreadedCollector() as collector:
        pkg.sync.load(
            pkg.Options(
                context=pkg.Context(app_version="2.0"),
                destinations=pkg.DestinationsOptions(
                    amplitude=pkg.AmplitudeOptions(server_url=collector.amplitude_url)
                ),
            )
        )
        with pytest.raises(pkg.ValidationError):
            pkg.sync.job_completed("user-2", "job-1", "default", -1.0, 1)
        pkg.sync.shutdown(10)


def test_load_requires_the_plans_context(import_generated: Importer) -> None:
    pkg = import_generated(json.loads(DEMO.read_text()), "worker")
    with pytest.raises(pkg.ConfigurationError, match=r"Context\(app_version=\.\.\.\)"):
        pkg.load(pkg.Options())


def test_load_requires_an_adapter_for_a_custom_destination(import_generated: Importer) -> None:
    data = plan_dict(
        sources={"backend": {"destinations": ["audit"]}},
        destinations={"audit": {"vendor": "custom"}},
    )
    pkg = import_generated(data)
    with pytest.raises(pkg.ConfigurationError, match="audit"):
        pkg.load(pkg.Options())


async def test_custom_destination_receives_events(import_generated: Importer) -> None:
    data = plan_dict(
        sources={"backend": {"destinations": ["audit"]}},
        destinations={"audit": {"vendor": "custom"}},
    )
    pkg = import_generated(data)
    recorder = RecordingAdapter()
    pkg.load(
        pkg.Options(destinations=pkg.DestinationsOptions(audit=pkg.CustomOptions(adapter=recorder)))
    )
    await pkg.process_started("user-1", available_processors=8)
    await pkg.process_started(None, event_options=pkg.EventOptions(device_id="device-123"))
    await pkg.shutdown(10)
    calls = recorder.events("Process Started")
    assert [c.properties for c in calls] == [{"available_processors": 8}, {}]


async def test_hostile_plan_delivers_original_names(import_generated: Importer) -> None:
    """Keywords, unicode, digits, quotes: every event arrives under its plan name."""
    pkg = import_generated(json.loads(HOSTILE.read_text()), "web")
    plan = load_plan(HOSTILE)
    recorder = RecordingAdapter()
    expected = {}
    async with Collector() as collector:
        pkg.load(
            pkg.Options(
                context=pkg.Context(class_="k", nandu=1, to_properties_=True, attrs_="a"),
                destinations=pkg.DestinationsOptions(
                    amplitude=pkg.AmplitudeOptions(server_url=collector.amplitude_url),
                    segment=pkg.SegmentOptions(host=collector.segment_host),
                    audit=pkg.CustomOptions(adapter=recorder),
                ),
            )
        )
        for event in plan.events_of("web"):
            args, kwargs, props = call_arguments(event)
            await getattr(pkg, event.ident)("user-1", *args, **kwargs)
            expected[event.name] = props
        assert plan.identify is not None
        assert plan.group is not None
        args, kwargs, traits = call_arguments(plan.identify)
        await pkg.identify("user-1", *args, **kwargs)
        report = await pkg.shutdown(10)
        amplitude = {
            e["event_type"]: e.get("event_properties")
            for e in collector.amplitude_events()
            if e["event_type"] != "$identify"
        }
    assert report.rejected == 0, report
    context = {"class": "k", "ñandú": 1, "to_properties": True, "attrs": "a"}
    for name, props in expected.items():
        assert amplitude[name] == {**context, **props}, name
        assert recorder.events(name)[0].properties == {**context, **props}, name
    assert sample({"type": "string"}) == "x"
    assert traits["self"] == "x"
