"""Check a JSON value against the plan's own JSON Schema, reporting every violation.

A JSON Schema validator that stops at the first error (fastjsonschema) cannot list every
problem of a plan, and a generic "must be string" does not say how to fix it. This small
evaluator covers exactly the draft-07 keywords ``plan.schema.json`` uses, keeps going
after a failure, and takes each fix sentence from the nearest ``x-fix`` annotation of the
schema. Keywords it does not know make it fail loudly, so the schema cannot silently use
more than is checked.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import attrs

from ._problems import Path, Problem, quote

#: keywords this evaluator understands; annotations are ignored
_ASSERTIONS = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "required",
        "properties",
        "additionalProperties",
        "propertyNames",
        "minProperties",
        "items",
        "minItems",
        "uniqueItems",
        "pattern",
        "minLength",
        "minimum",
        "exclusiveMinimum",
        "anyOf",
    }
)
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "definitions", "x-fix", "default"}
)
_GENERIC_FIX = "Correct this value; see codegen/plan.schema.json for the format."


@cache
def _plan_schema_text() -> str:
    return resources.files("codegen").joinpath("plan.schema.json").read_text("utf-8")


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of the tracking plan format, as shipped in ``codegen/``.

    A fresh copy each time: some validators (fastjsonschema) rewrite ``$ref`` in place.
    """
    schema: dict[str, Any] = json.loads(_plan_schema_text())
    return schema


def json_type(value: object) -> str:
    """The JSON type name of a parsed JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def is_type(value: object, name: str) -> bool:
    """Whether ``value`` has JSON Schema type ``name`` (1.0 is an integer, True is not)."""
    actual = json_type(value)
    if name == "number":
        return actual in ("integer", "number")
    if name == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())  # type: ignore[arg-type]
    return actual == name


def canonical(value: object) -> str:
    """A text key under which JSON-equal values (1 and 1.0) compare equal."""

    def norm(v: object) -> object:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v

    return json.dumps(norm(value), sort_keys=True)


_ARTICLE = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


def _describe(value: object) -> str:
    kind = json_type(value)
    if kind in ("object", "array"):
        return _ARTICLE[kind]
    text = quote(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{_ARTICLE[kind]} ({text})"


class _Checker:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise ValueError(f"plan schema: unsupported $ref {ref!r}")
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
            seen += 1
            if seen > 50:
                raise ValueError(f"plan schema: $ref loop at {ref!r}")
        return node

    def fix_of(self, node: Mapping[str, Any], fallback: str) -> str:
        if "x-fix" in node:
            return str(node["x-fix"])
        if "$ref" in node:
            return self.fix_of(self.resolve(node), fallback)
        return fallback

    def check(self, value: Any, node: Mapping[str, Any], path: Path, out: list[Problem]) -> None:
        fix = self.fix_of(node, _GENERIC_FIX)
        node = self.resolve(node)
        unknown = set(node) - _ASSERTIONS - _ANNOTATIONS
        if unknown:
            raise ValueError(f"plan schema uses unsupported keywords: {sorted(unknown)}")

        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            if not any(is_type(value, t) for t in types):
                wanted = " or ".join(_ARTICLE[t] for t in types)
                out.append(Problem(path, f"expected {wanted}, got {_describe(value)}.", fix))
                return
        if "enum" in node and canonical(value) not in {canonical(v) for v in node["enum"]}:
            allowed = ", ".join(quote(v) for v in node["enum"])
            out.append(Problem(path, f"{quote(value)} is not one of {allowed}.", fix))
            return
        if "anyOf" in node:
            trials: list[list[Problem]] = []
            for branch in node["anyOf"]:
                trial: list[Problem] = []
                self.check(value, branch, path, trial)
                if not trial:
                    break
                trials.append(trial)
            else:
                # a branch whose shape the value has, failing only inside (a list of types
                # with one typo), knows which element is wrong; else the anyOf's sentence
                inside = [t for t in trials if all(len(p.path) > len(path) for p in t)]
                if inside:
                    out.extend(inside[0])
                else:
                    out.append(Problem(path, f"{_describe(value)} is not allowed here.", fix))
                return

        if isinstance(value, dict):
            self._check_object(value, node, path, fix, out)
        elif isinstance(value, list):
            self._check_array(value, node, path, fix, out)
        elif isinstance(value, str):
            self._check_string(value, node, path, fix, out)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in node and value < node["minimum"]:
                out.append(Problem(path, f"must be at least {node['minimum']}.", fix))
            if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
                out.append(Problem(path, f"must be greater than {node['exclusiveMinimum']}.", fix))

    def _check_string(
        self, value: str, node: Mapping[str, Any], path: Path, fix: str, out: list[Problem]
    ) -> None:
        if "minLength" in node and len(value) < node["minLength"]:
            out.append(Problem(path, "must not be empty.", fix))
        elif "pattern" in node and not re.search(node["pattern"], value):
            out.append(Problem(path, f"{quote(value)} is not allowed here.", fix))

    def _check_array(
        self, value: list[Any], node: Mapping[str, Any], path: Path, fix: str, out: list[Problem]
    ) -> None:
        if "minItems" in node and len(value) < node["minItems"]:
            out.append(Problem(path, f"needs at least {node['minItems']} item(s).", fix))
        if node.get("uniqueItems"):
            seen: set[str] = set()
            for i, item in enumerate(value):
                key = canonical(item)
                if key in seen:
                    out.append(Problem((*path, i), f"{quote(item)} is listed twice.", fix))
                seen.add(key)
        if "items" in node:
            for i, item in enumerate(value):
                self.check(item, node["items"], (*path, i), out)

    def _check_object(
        self,
        value: Mapping[str, Any],
        node: Mapping[str, Any],
        path: Path,
        fix: str,
        out: list[Problem],
    ) -> None:
        declared: Mapping[str, Any] = node.get("properties", {})
        for key in node.get("required", ()):
            if key not in value:
                sub_fix = self.fix_of(declared.get(key, {}), fix)
                out.append(
                    Problem((*path, key), f"the required key {quote(key)} is missing.", sub_fix)
                )
        if "minProperties" in node and len(value) < node["minProperties"]:
            out.append(Problem(path, f"needs at least {node['minProperties']} entry.", fix))
        names = node.get("propertyNames")
        extra = node.get("additionalProperties", True)
        for key, item in value.items():
            if names is not None:
                trial: list[Problem] = []
                self.check(key, names, (*path, key), trial)
                for problem in trial:
                    message = f"the name {quote(key)} is not allowed."
                    out.append(attrs.evolve(problem, message=message))
            if key in declared:
                self.check(item, declared[key], (*path, key), out)
            elif extra is False:
                out.append(self._unknown_key(key, declared, path))
            elif isinstance(extra, dict):
                self.check(item, extra, (*path, key), out)

    @staticmethod
    def _unknown_key(key: str, declared: Mapping[str, Any], path: Path) -> Problem:
        known = [k for k in declared if not k.startswith("$")]
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"Did you mean {quote(close[0])}? " if close else ""
        return Problem(
            (*path, key),
            f"unknown key {quote(key)}.",
            f"{hint}Remove it or use one of: {', '.join(known)}.",
        )


def check_schema(value: Any, schema: Mapping[str, Any] | None = None) -> list[Problem]:
    """Every violation of ``schema`` (the plan schema by default) by ``value``."""
    root = plan_schema() if schema is None else schema
    out: list[Problem] = []
    _Checker(root).check(value, root, (), out)
    return out
