"""Iteratively's ``schema.json`` export: item name -> full JSON Schema.

The export maps ``context``, ``identify``, ``group`` and each event name to a complete
draft-07 schema::

    {"Process Started": {"$id": "https://iterative.ly/company/<id>/event/Process%20Started/version/1.0.0",
                         "$schema": "http://json-schema.org/draft-07/schema#",
                         "title": "Process Started", "description": "...",
                         "type": "object", "properties": {...}, "required": [...],
                         "additionalProperties": false}, ...}

It has no sources, destinations or plan version. ``convert_export`` turns it into our
plan format and fills those from ``ExportDefaults`` (set by the CLI flags ``--source``,
``--destination`` and ``--plan-version``): by default one source named after the one
being pulled (or ``default``), one Amplitude destination named ``amplitude`` with no keys
(give them at load time through ``DestinationsOptions``), and version ``0.0.0``. The event
version comes from the ``$id``'s ``/version/X`` suffix, or a ``version`` key.
Problems found later are reported at the paths of the original file.

An item's ``"additionalProperties": false`` is what every generated item is anyway. Any
other value (``true``, a schema) is a problem rather than dropped: the generated
validators and functions accept only the plan's properties, so an export that allows
more would silently start rejecting events the export called valid.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._problems import Path, Problem, quote

_ITEMS = ("context", "identify", "group")
_VERSION_IN_ID = re.compile(r"/version/([^/]+)/?\Z")
#: keys of an exported item schema that carry no information the plan needs
_IGNORED = frozenset({"$id", "$schema", "title", "$comment", "type"})


@attrs.frozen(kw_only=True)
class ExportDefaults:
    """What an export lacks: the source's name, its destinations (key -> vendor), a version."""

    source: str = "default"
    destinations: Mapping[str, str] = attrs.field(factory=lambda: {"amplitude": "amplitude"})
    version: str = "0.0.0"


def _schema_like(value: object) -> bool:
    return isinstance(value, dict) and (
        "$id" in value
        or "$schema" in value
        or (value.get("type") == "object" and isinstance(value.get("properties"), dict))
    )


def is_export_shape(data: object) -> bool:
    """True for an Iteratively export: every top-level value is an item's full JSON Schema."""
    return isinstance(data, dict) and bool(data) and all(_schema_like(v) for v in data.values())


def _event_version(name: str, schema: Mapping[str, Any]) -> str:
    if isinstance(schema.get("version"), str):
        return str(schema["version"])
    id_ = schema.get("$id")
    if isinstance(id_, str):
        match = _VERSION_IN_ID.search(id_)
        if match:
            return urllib.parse.unquote(match.group(1))
    return ""


def convert_export(
    data: Mapping[str, Any], defaults: ExportDefaults
) -> tuple[dict[str, Any], Callable[[Path], Path], list[Problem]]:
    """Our plan format from an export, a function mapping paths back, and shape problems."""
    problems: list[Problem] = []
    plan: dict[str, Any] = {
        "version": defaults.version,
        "sources": {defaults.source: {"destinations": list(defaults.destinations)}},
        "destinations": {key: {"vendor": vendor} for key, vendor in defaults.destinations.items()},
        "events": [],
    }
    event_names: list[str] = []
    for name, schema in data.items():
        if schema.get("type", "object") != "object":
            problems.append(
                Problem(
                    (name, "type"),
                    f"the item {quote(name)} has type {quote(schema.get('type'))}.",
                    'Every item of the export must be an object schema ("type": "object").',
                )
            )
        extra = schema.get("additionalProperties", False)
        if extra is not False:
            problems.append(
                Problem(
                    (name, "additionalProperties"),
                    f'"additionalProperties": {quote(extra)} is not supported: every property '
                    "must be in the plan.",
                    'Remove it or set it to false, and declare under "properties" each '
                    "property the item may have.",
                )
            )
        item: dict[str, Any] = {}
        for key, value in schema.items():
            if key in _IGNORED or key in ("version", "additionalProperties"):
                continue
            item[key] = value
        if name in _ITEMS:
            plan[name] = item
        else:
            version = _event_version(name, schema)
            event = {"name": name, **item}
            if version:
                event["version"] = version
            plan["events"].append(event)
            event_names.append(name)

    def to_original(path: Path) -> Path:
        if path[:1] == ("events",) and len(path) >= 2 and isinstance(path[1], int):
            index = path[1]
            if index < len(event_names):
                rest = path[2:]
                if rest[:1] == ("name",):
                    rest = ()
                return (event_names[index], *rest)
        if path[:1] and path[0] in ("version", "sources", "destinations"):
            return ()
        return path

    return plan, to_original, problems
