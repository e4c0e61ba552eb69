"""Synthetic tracking plans and valid sample values, for benchmarks and tests.

``make_large_plan(200)`` is the plan of the load-time target in DESIGN.md
(``import itly; itly.load(...)`` with a 200-event plan in <= 100 ms)::

    import json
    from codegen.samples import make_large_plan

    with open("large-plan.json", "w") as f:
        json.dump(make_large_plan(200), f)
    # then: itly pull bench --plan large-plan.json --out build/bench

``call_arguments(event)`` gives arguments that call an event's generated function with
valid values, e.g. to drive every event of a plan in a benchmark::

    plan = codegen.load_plan("large-plan.json")
    for event in plan.events_of("bench"):
        args, kwargs, _ = call_arguments(event)
        await getattr(itly_bench, event.ident)("user-1", *args, **kwargs)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._model import Item

_KINDS: tuple[dict[str, Any], ...] = (
    {"type": "string", "minLength": 1, "maxLength": 64},
    {"type": "integer", "minimum": 0},
    {"type": "number", "minimum": 0, "maximum": 1_000_000},
    {"type": "boolean"},
    {"enum": ["free", "pro", "team", "enterprise"]},
    {"type": ["string", "null"]},
    {"type": "array", "items": {"type": "string"}, "maxItems": 10},
    {"type": "string", "format": "email"},
)


def make_large_plan(
    n_events: int = 200, properties_per_event: int = 6, *, source: str = "bench"
) -> dict[str, Any]:
    """A valid plan of ``n_events`` events with a mix of property kinds, deterministic.

    Every event has ``properties_per_event`` properties (the first half required) drawn
    in rotation from strings with lengths, integers and numbers with bounds, booleans,
    enums, nullable strings, arrays and e-mail formats; every tenth event also has a
    nested object. One source sends all of them to Amplitude and Segment.
    """
    events = []
    for i in range(n_events):
        props: dict[str, Any] = {}
        for j in range(properties_per_event):
            props[f"property {j}"] = dict(_KINDS[(i + j) % len(_KINDS)])
        if i % 10 == 0:
            props["details"] = {
                "type": "object",
                "properties": {"code": {"type": "integer"}, "label": {"type": "string"}},
                "required": ["code"],
            }
        events.append(
            {
                "name": f"Synthetic Event {i:03d}",
                "description": f"Synthetic event number {i} for load-time benchmarks.",
                "version": "1.0.0",
                "sources": [source],
                "properties": props,
                "required": [f"property {j}" for j in range(properties_per_event // 2)],
            }
        )
    return {
        "version": "1.0.0",
        "sources": {source: {"destinations": ["amplitude", "segment"]}},
        "destinations": {
            "amplitude": {"vendor": "amplitude", "api_key": {"development": "bench-key"}},
            "segment": {"vendor": "segment", "write_key": {"development": "bench-key"}},
        },
        "context": {
            "properties": {"app_version": {"type": "string"}},
            "required": ["app_version"],
        },
        "events": events,
    }


def small_plan(**overrides: Any) -> dict[str, Any]:
    """A small valid plan (one source, Amplitude, one event); keywords replace top-level keys."""
    plan: dict[str, Any] = {
        "version": "1.0.0",
        "sources": {"backend": {"destinations": ["amplitude"]}},
        "destinations": {"amplitude": {"vendor": "amplitude", "api_key": {"development": "k"}}},
        "events": [
            {
                "name": "Process Started",
                "properties": {"available_processors": {"type": "integer", "minimum": 1}},
                "required": [],
            }
        ],
    }
    plan.update(overrides)
    return plan


#: sample strings for the patterns of the plans under examples/ (a general regex sampler
#: is out of scope: ``sample`` raises for any other pattern)
_PATTERN_SAMPLES = {
    "^ord_[0-9a-z]{8}$": "ord_0a1b2c3d",
    "^inv_": "inv_001",
    "^[\"'\\\\]+\\d{2}$": "\"'\\42",
}
_FORMAT_SAMPLES = {
    "email": "someone@example.com",
    "date-time": "2024-06-01T12:00:00Z",
    "date": "2024-06-01",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
}


def sample(schema: Mapping[str, Any]) -> Any:
    """A value valid against ``schema`` (the keywords the example plans use).

    Enums give their first value, numbers their lower bound, strings ``"x"`` or the
    sample of their format; a pattern must be one of ``_PATTERN_SAMPLES``.
    """
    if "const" in schema:
        return schema["const"]
    if schema.get("type") in ("null", ["null"]):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    declared = schema.get("type", "object" if "properties" in schema else None)
    kind = declared[0] if isinstance(declared, list) else declared
    if kind == "string":
        if "pattern" in schema:
            if schema["pattern"] not in _PATTERN_SAMPLES:
                raise ValueError(f"no sample for the pattern {schema['pattern']!r}")
            return _PATTERN_SAMPLES[schema["pattern"]]
        if "format" in schema:
            return _FORMAT_SAMPLES[schema["format"]]
        return "x" * max(int(schema.get("minLength", 1)), 1)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return int(low) if kind == "integer" else float(low) + 0.5
    if kind == "boolean":
        return True
    if kind == "array":
        items = schema.get("items", {"type": "string"})
        return [sample(items) for _ in range(max(int(schema.get("minItems", 1)), 1))]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: sample(v) for k, v in props.items()}
    return None if kind == "null" else "anything"


def call_arguments(item: Item) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Positional and keyword arguments for the generated function of ``item`` (after
    ``user_id``), and the properties dict it sends (const ones included)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    for prop in item.properties:
        value = sample(prop.schema)
        if prop.is_const:
            expected[prop.name] = value
        elif prop.required:
            args.append(value)
            expected[prop.name] = value
        elif value is not None:  # an optional None is not sent
            kwargs[prop.ident] = value
            expected[prop.name] = value
    return args, kwargs, expected
