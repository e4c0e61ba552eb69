"""JSON Schema -> Python type annotations, and the rules written into docstrings.

Mapping (documented in codegen/README.md):

=====================================  ===================================================
schema                                 annotation
=====================================  ===================================================
``string`` / ``integer`` / ``number``  ``str`` / ``int`` / ``float``
``boolean`` / ``null``                 ``bool`` / ``None``
``["string", "null"]``                 ``str | None``
``enum`` (str, int, bool, null)        a ``Literal[...]`` alias named after the property
``enum`` with a float, object...      the union of the values' types
``const`` (nested)                     ``Literal[value]`` (top-level consts are baked in)
``array`` with ``items``               ``Sequence[item type]`` (lists and tuples pass)
``object`` with ``properties``         a ``TypedDict`` (functional form, so its keys are
                                       the original names; optional keys ``NotRequired``)
``object`` without ``properties``      ``Mapping[str, Any]``
no ``type``                            ``Any``
=====================================  ===================================================

The aliases and TypedDicts are registered in a ``TypeRegistry`` which hands out unique
CamelCase names (a numeric suffix on a clash) and remembers the definitions in dependency
order, children first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from . import _names
from ._render import py_literal

_SIMPLE = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


@attrs.frozen
class LiteralAlias:
    name: str
    values: tuple[str, ...]  # code of each value


@attrs.frozen
class TypedDictDef:
    name: str
    fields: tuple[tuple[str, str, bool], ...]  # (original key, annotation, required)


@attrs.define
class TypeRegistry:
    """Unique type names and the definitions behind them, in dependency order."""

    taken: set[str] = attrs.field(factory=set)
    definitions: list[LiteralAlias | TypedDictDef] = attrs.field(factory=list)

    def unique(self, base: str) -> str:
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}{n}", n + 1
        self.taken.add(name)
        return name


def _literal_able(value: object) -> bool:
    return value is None or isinstance(value, str | bool | int)


def _value_type(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "Sequence[Any]"
    return "Mapping[str, Any]"


def _union(parts: Sequence[str]) -> str:
    out: list[str] = []
    for part in parts:
        if part not in out:
            out.append(part)
    if "float" in out and "int" in out:
        out.remove("int")  # an int is accepted where a float is expected
    if "None" in out:  # None last reads best: ``str | None``
        out.remove("None")
        out.append("None")
    if "Any" in out:
        return "Any"
    return " | ".join(out) or "Any"


def annotation(schema: Mapping[str, Any], hint: Sequence[str], reg: TypeRegistry) -> str:
    """The annotation for ``schema``; ``hint`` names it (identifiers of item and property)."""
    if "const" in schema:
        value = schema["const"]
        return f"Literal[{py_literal(value)}]" if _literal_able(value) else _value_type(value)
    if "enum" in schema:
        return _enum(schema["enum"], hint, reg)
    declared = schema.get("type")
    if declared is None:
        if isinstance(schema.get("properties"), dict):
            declared = "object"
        elif "items" in schema:
            declared = "array"
        else:
            return "Any"
    types = declared if isinstance(declared, list) else [declared]
    parts: list[str] = []
    for t in types:
        if t in _SIMPLE:
            parts.append(_SIMPLE[t])
        elif t == "array":
            items = schema.get("items")
            inner = annotation(items, (*hint, "item"), reg) if isinstance(items, dict) else "Any"
            parts.append(f"Sequence[{inner}]")
        elif t == "object":
            parts.append(_object(schema, hint, reg))
    return _union(parts)


def _enum(values: Sequence[Any], hint: Sequence[str], reg: TypeRegistry) -> str:
    """A Literal alias when every value can be a Literal; else the union of their types
    (a Literal of some values beside ``float`` would say nothing ``float`` does not)."""
    if not all(_literal_able(v) for v in values):
        return _union([_value_type(v) for v in values])
    literal = [v for v in values if v is not None]
    parts: list[str] = []
    if literal:
        name = reg.unique(_names.pascal(*hint))
        reg.definitions.append(LiteralAlias(name, tuple(py_literal(v) for v in literal)))
        parts.append(name)
    if any(v is None for v in values):
        parts.append("None")
    return _union(parts)


def _object(schema: Mapping[str, Any], hint: Sequence[str], reg: TypeRegistry) -> str:
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return "Mapping[str, Any]"
    required = set(schema.get("required", ()))
    name = reg.unique(_names.pascal(*hint))
    fields: list[tuple[str, str, bool]] = []
    for key, sub in props.items():
        sub_hint = _names.identifier(key, "property") or "field"
        fields.append((key, annotation(sub, (*hint, sub_hint), reg), key in required))
    reg.definitions.append(TypedDictDef(name, tuple(fields)))
    return name


# --- rules, for docstrings -------------------------------------------------------------

_TYPE_WORDS = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
    "array": "list",
    "object": "object",
}


def _show(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def rules(schema: Mapping[str, Any]) -> str:
    """The schema's constraints in one line of prose, e.g. ``string, 1-64 chars, email``."""
    out: list[str] = []
    if "const" in schema:
        return f"always {_show(schema['const'])}"
    declared = schema.get("type")
    if declared is not None:
        types = declared if isinstance(declared, list) else [declared]
        out.append(" or ".join(_TYPE_WORDS[t] for t in types))
    if "enum" in schema:
        out.append("one of " + ", ".join(_show(v) for v in schema["enum"]))
    bounds = [
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ]
    for key, op in bounds:
        if key in schema:
            out.append(f"{op} {_show(schema[key])}")
    if "multipleOf" in schema:
        out.append(f"multiple of {_show(schema['multipleOf'])}")
    out.extend(_range(schema, "minLength", "maxLength", "chars"))
    if "pattern" in schema:
        out.append(f"matches {_show(schema['pattern'])}")
    if "format" in schema:
        out.append(f"format {schema['format']}")
    out.extend(_range(schema, "minItems", "maxItems", "items"))
    if schema.get("uniqueItems"):
        out.append("unique items")
    items = schema.get("items")
    if isinstance(items, dict):
        inner = rules(items)
        if inner:
            out.append(f"each item: {inner}")
    return ", ".join(out)


def _range(schema: Mapping[str, Any], low: str, high: str, unit: str) -> list[str]:
    def units(n: object) -> str:
        return unit.removesuffix("s") if n == 1 else unit

    if low in schema and high in schema:
        return [f"{schema[low]}-{schema[high]} {unit}"]
    if low in schema:
        return [f"at least {schema[low]} {units(schema[low])}"]
    if high in schema:
        return [f"at most {schema[high]} {units(schema[high])}"]
    return []
