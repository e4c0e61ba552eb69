"""The fast pre-check is sound: whatever it accepts, fastjsonschema accepts too."""

from __future__ import annotations

from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from itly_async._fastcheck import check_source, compile_check

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.text(max_size=4),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
TYPES = st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])


@st.composite
def schemas(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    if draw(st.booleans()):
        schema["type"] = draw(TYPES | st.lists(TYPES, min_size=1, max_size=2, unique=True))
    if draw(st.integers(0, 5)) == 0:
        schema["enum"] = draw(st.lists(SCALARS, min_size=1, max_size=3))
    if draw(st.integers(0, 6)) == 0:
        schema["const"] = draw(SCALARS)
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.integers(0, 4)) == 0:
            schema[key] = draw(st.integers(-3, 3) | st.floats(-3, 3, allow_nan=False))
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if draw(st.integers(0, 4)) == 0:
            schema[key] = draw(st.integers(0, 3))
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        schema["items"] = draw(schemas(depth + 1))
    if depth < 2 and draw(st.integers(0, 2)) == 0:
        names = draw(st.lists(st.text(max_size=3), max_size=3, unique=True))
        schema["properties"] = {n: draw(schemas(depth + 1)) for n in names}
        schema["required"] = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
        schema["additionalProperties"] = draw(st.booleans())
    return schema


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schemas(), data=st.lists(JSON, min_size=1, max_size=6))
def test_whatever_the_pre_check_accepts_fastjsonschema_accepts(
    schema: dict[str, Any], data: list[Any]
) -> None:
    check = compile_check(schema)
    if check is None:
        return
    validate = fastjsonschema.compile(schema)
    for value in data:
        if check(value):
            validate(value)  # raises if the pre-check was unsound


EVENT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "count": {"type": "integer", "minimum": 0},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "enabled": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
        "mode": {"enum": ["a", "b"]},
        "note": {"type": ["string", "null"]},
        "nested": {
            "type": "object",
            "properties": {"x": {"type": "integer"}},
            "required": ["x"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "count"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("data", "accepted"),
    [
        ({"name": "n", "count": 1}, True),
        (
            {
                "name": "n",
                "count": 0,
                "ratio": 0.5,
                "enabled": True,
                "tags": ["a"],
                "mode": "b",
                "note": None,
                "nested": {"x": 3},
            },
            True,
        ),
        ({"name": "", "count": 1}, False),
        ({"name": "n", "count": True}, False),
        ({"name": "n", "count": 1, "extra": 1}, False),
        ({"count": 1}, False),
        ({"name": "n", "count": 1, "mode": "c"}, False),
        ({"name": "n", "count": 1, "tags": ["a", 1]}, False),
        ({"name": "n", "count": 1, "nested": {"x": 1, "y": 2}}, False),
        ({"name": "n", "count": 1, "ratio": 2}, False),
    ],
)
def test_common_event_shapes_are_decided_without_fastjsonschema(
    data: dict[str, Any], accepted: bool
) -> None:
    check = compile_check(EVENT)
    assert check is not None
    assert check(data) is accepted


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"minimum": 3}, True),  # bool is an int to fastjsonschema: True < 3 is invalid
        ({"maximum": 0}, True),
        ({"exclusiveMinimum": 1}, True),
        ({"enum": [1]}, True),  # but True is not the JSON number 1
        ({"const": 0}, False),
        ({"enum": ["a"], "type": "string"}, "b"),
    ],
)
def test_regressions_found_by_reading_the_guards(schema: dict[str, Any], value: Any) -> None:
    check = compile_check(schema)
    assert check is not None
    try:
        fastjsonschema.compile(schema)(value)
    except fastjsonschema.JsonSchemaValueException:
        assert check(value) is False


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "format": "email"},
        {"type": "string", "pattern": "^a"},
        {"type": "array", "uniqueItems": True},
        {"enum": [1.5]},
        {"type": "array", "items": [{"type": "string"}]},
        {"type": "object", "additionalProperties": {"type": "string"}},
    ],
)
def test_keywords_it_does_not_model_give_no_pre_check(schema: dict[str, Any]) -> None:
    assert compile_check(schema) is None


def test_hostile_names_stay_inside_string_literals() -> None:
    name = "x'); import os; os._exit(3) #"
    source = check_source(
        {"type": "object", "properties": {name: {"type": "string"}}, "required": [name]},
        "check_hostile",
    )
    assert source is not None
    assert repr(name) in source
    check = compile_check({"type": "object", "required": [name]})
    assert check is not None
    assert check({name: 1}) is True
    assert check({}) is False
