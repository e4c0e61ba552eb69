"""The fast pre-check is sound: whatever it accepts, fastjsonschema accepts too, and it is
JSON as it is (nothing for ``normalize`` to convert)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from itly_async._fastcheck import check_source, compile_check, json_ready
from itly_async._validation import compile_schema, normalize

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.text(max_size=4),
)
#: what callers pass besides JSON: values to convert (or refuse), NaN, tuples
ODD = st.one_of(
    st.just(float("nan")),
    st.just(float("inf")),
    st.tuples(st.text(max_size=2)),
    st.just(object()),
    st.dates(),
    st.sets(st.integers(0, 3), max_size=2),
)
JSON = st.recursive(
    SCALARS | ODD,
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
    # keywords the pre-check does not model: a delegate checks such a property
    if draw(st.integers(0, 5)) == 0:
        schema["pattern"] = draw(st.sampled_from(["^a", "b$", "^[a-c]*$", "x|y"]))
    if draw(st.integers(0, 6)) == 0:
        schema["format"] = draw(st.sampled_from(["date", "email", "uuid", "ipv4"]))
    if draw(st.integers(0, 6)) == 0:
        schema["uniqueItems"] = True
    if depth > 0 and draw(st.integers(0, 8)) == 0:
        schema["anyOf"] = [{"type": "string"}, {"type": "integer", "minimum": 0}]
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
    validate = compile_schema(schema)
    for check in (compile_check(schema), compile_check(schema, compile_schema)):
        if check is None:
            continue
        for value in data:
            if check(value):
                validate(value)  # raises if the pre-check was unsound
                assert json_ready(value)
                if isinstance(value, dict):
                    assert normalize(value) == (value, [])


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
    """Each of these was once proved valid by mistake; the pre-check must say "not sure"
    and leave the verdict to fastjsonschema (which accepts some of them: True == 1)."""
    check = compile_check(schema)
    assert check is not None
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
    # at the top level not even with a delegate: it would only be fastjsonschema again
    assert compile_check(schema, compile_schema) is None


ORDER = {
    "type": "object",
    "properties": {
        "orderId": {"type": "string", "pattern": "^ord_[0-9a-z]{8}$"},
        "placed": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "price": {"anyOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
        "total": {"type": "number", "minimum": 0},
    },
    "required": ["orderId", "total"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("data", "accepted"),
    [
        ({"orderId": "ord_0123abcd", "total": 1.5}, True),
        ({"orderId": "ord_0123abcd", "total": 1, "placed": "2026-12-04"}, True),
        ({"orderId": "ord_0123abcd", "total": 1, "tags": ["a", "b"], "price": 2}, True),
        ({"orderId": "ord_0123abcd\n", "total": 1}, False),  # $ is the end, not a newline
        ({"orderId": "ORD_0123abcd", "total": 1}, False),
        ({"orderId": "ord_0123abcd", "total": 1, "placed": "2026-13-01"}, False),
        ({"orderId": "ord_0123abcd", "total": 1, "tags": ["a", "a"]}, False),
        ({"orderId": "ord_0123abcd", "total": 1, "price": -1.5}, False),
        ({"orderId": "ord_0123abcd", "total": float("nan")}, False),  # cannot be sent
    ],
)
def test_a_property_it_does_not_model_is_checked_by_a_delegate(
    data: dict[str, Any], accepted: bool
) -> None:
    check = compile_check(ORDER, compile_schema)
    assert check is not None
    assert check(data) is accepted


def test_the_pre_check_proves_values_ready_to_send() -> None:
    schema = {
        "type": "object",
        "properties": {"free": {}, "described": {"description": "anything"}, "n": {"minimum": 0}},
        "additionalProperties": True,
    }
    check = compile_check(schema, compile_schema)
    assert check is not None
    assert check({"free": [1, {"a": "b"}], "described": None, "n": 3, "extra": "x"}) is True
    for unsendable in (object(), float("nan"), (1, 2), {1: "non-string key"}):
        assert check({"free": unsendable}) is False
        assert check({"extra": unsendable}) is False


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
