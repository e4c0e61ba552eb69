"""The tracking plan as the generator sees it, and every check beyond the plan's schema.

``load_plan(path)`` reads a plan file (ours or Iteratively's export), validates it
against ``plan.schema.json``, runs the checks a schema cannot express, and returns a
``TrackingPlan`` or raises ``PlanError`` listing every problem. ``check_plan_data`` is
the same on an already-parsed value and returns the problems instead of raising.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path as FsPath
from typing import Any, Literal

import attrs

from . import _compile, _names
from ._export import ExportDefaults, convert_export, is_export_shape
from ._jsonload import non_finite_problems, read_json_file
from ._problems import Path, PlanError, Problem, UsageError, format_path, quote
from ._schemacheck import canonical, check_schema, is_type

ItemKind = Literal["event", "context", "identify", "group"]

#: parameters every generated function of that kind has besides the item's properties
GENERATED_PARAMS: Mapping[ItemKind, tuple[str, ...]] = {
    "event": ("user_id", "event_options"),
    "identify": ("user_id", "event_options"),
    "group": ("user_id", "group_id", "event_options"),
    "context": (),
}

#: formats the precompiled validators check (fastjsonschema's draft-07 set, plus ``uuid``,
#: compiled as a pattern); any other format would silently not be checked
SUPPORTED_FORMATS = (
    "date",
    "date-time",
    "email",
    "hostname",
    "idn-email",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "iri",
    "iri-reference",
    "json-pointer",
    "regex",
    "relative-json-pointer",
    "time",
    "uri",
    "uri-reference",
    "uri-template",
    "uuid",
)

_TYPE_OF_VALUE = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


@attrs.frozen
class Property:
    """One property of an item: original name (sent on the wire) and Python identifier."""

    name: str
    ident: str
    schema: Mapping[str, Any] = attrs.field(eq=False)
    required: bool
    path: Path = attrs.field(eq=False)

    @property
    def is_const(self) -> bool:
        """Whether the property has one possible value: ``const``, or null and nothing else
        (``"type": "null"``, ``"enum": [null]``). Such a property is no parameter; the
        generated code always sends its value."""
        schema = self.schema
        return (
            "const" in schema
            or schema.get("type") in ("null", ["null"])
            or (schema.get("enum") == [None])
        )

    @property
    def const_value(self) -> Any:
        return self.schema.get("const")

    @property
    def description(self) -> str:
        return str(self.schema.get("description", ""))


@attrs.frozen
class Item:
    """An event, or the context / identify / group item."""

    kind: ItemKind
    name: str
    ident: str
    description: str
    version: str
    sources: tuple[str, ...] | None
    properties: tuple[Property, ...]
    path: Path = attrs.field(eq=False)

    @property
    def parameters(self) -> tuple[Property, ...]:
        """The properties that become parameters (const ones are baked in)."""
        return tuple(p for p in self.properties if not p.is_const)

    def json_schema(self) -> dict[str, Any]:
        """The item's full JSON Schema, as validated at runtime."""
        return {
            "type": "object",
            "properties": {p.name: dict(p.schema) for p in self.properties},
            "required": [p.name for p in self.properties if p.required],
            "additionalProperties": False,
        }


@attrs.frozen
class Destination:
    key: str
    vendor: Literal["amplitude", "segment", "custom"]
    keys: Mapping[str, str]


@attrs.frozen
class Source:
    name: str
    destinations: tuple[str, ...]


@attrs.frozen
class TrackingPlan:
    """A checked tracking plan. ``filename`` is the plan file's name, for headers."""

    version: str
    branch: str
    version_id: str
    sources: Mapping[str, Source]
    destinations: Mapping[str, Destination]
    context: Item | None
    identify: Item | None
    group: Item | None
    events: tuple[Item, ...]
    filename: str = "tracking-plan.json"

    def events_of(self, source: str) -> tuple[Item, ...]:
        """The events ``source`` sends, in plan order. Raises UsageError for an unknown source."""
        self.require_source(source)
        return tuple(e for e in self.events if e.sources is None or source in e.sources)

    def destinations_of(self, source: str) -> tuple[Destination, ...]:
        return tuple(self.destinations[k] for k in self.require_source(source).destinations)

    def require_source(self, source: str) -> Source:
        if source not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none"
            raise UsageError(f"the plan has no source {source!r}; its sources: {known}")
        return self.sources[source]


# --- loading ---------------------------------------------------------------------------


def load_plan(path: str | FsPath, *, defaults: ExportDefaults | None = None) -> TrackingPlan:
    """Read, check and model a plan file; raise ``PlanError`` listing every problem."""
    filename = FsPath(path).name
    data, problems = read_json_file(path)
    if problems:
        raise PlanError(problems, str(path))
    plan, problems = check_plan_data(data, filename=filename, defaults=defaults)
    if plan is None:
        raise PlanError(problems, str(path))
    return plan


def check_plan_data(
    data: Any, *, filename: str = "tracking-plan.json", defaults: ExportDefaults | None = None
) -> tuple[TrackingPlan | None, list[Problem]]:
    """Check an already-parsed plan (either shape). Returns the plan, or None and problems."""
    # what a plan file's reader reports before any check (load_plan stops there too)
    unreadable = non_finite_problems(data)
    if unreadable:
        return None, unreadable
    to_original = None
    shape_problems: list[Problem] = []  # already at the paths of the export
    if is_export_shape(data):
        data, to_original, shape_problems = convert_export(data, defaults or ExportDefaults())
    problems = check_schema(data)
    # the remaining checks run on what is well-formed, so one pass reports everything
    usable = _usable(data, problems)
    plan, more = _build(usable, filename) if usable is not None else (None, [])
    problems += more
    if to_original is not None:
        problems = [attrs.evolve(p, path=to_original(p.path)) for p in problems]
    problems = _dedupe([*shape_problems, *problems])
    return (plan if not problems else None), problems


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        key = (format_path(p.path), p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# --- what survives the schema check ---------------------------------------------------


class _Bad:
    """Stands in for a part of the plan that failed the schema check (already reported)."""


BAD = _Bad()
_TOP_DEFAULTS: Mapping[str, Any] = {
    "version": "",
    "branch": "",
    "version_id": "",
    "sources": {},
    "destinations": {},
    "events": [],
}


def _unit(path: Path) -> Path | None:
    """The part of the plan a schema problem at ``path`` makes unusable.

    Within an item, that is the deepest property on the path (``properties.<name>``,
    through ``items`` of arrays too): a typo in one nested property leaves its siblings,
    and the ``required`` list beside them, to the remaining checks.
    """
    if not path or not isinstance(path[0], str):
        return None
    head = path[0]
    if head in ("sources", "destinations"):
        return path[:2]
    if head in ("events", "context", "identify", "group"):
        base = path[:2] if head == "events" else path[:1]
        rest = path[len(base) :]
        # rest goes "properties", a name, that property's keywords: maybe "items" (of an
        # array, any number of times), then "properties" and a nested name, and so on
        end = i = 0
        while True:
            while i < len(rest) and rest[i] == "items":
                i += 1
            if i + 1 >= len(rest) or rest[i] != "properties":
                break
            end = i = i + 2
        return (*base, *rest[:end])
    return path[:1] if head in _TOP_DEFAULTS else None


def _usable(data: Any, problems: Sequence[Problem]) -> dict[str, Any] | None:
    """A copy of ``data`` where every part with a schema problem is ``BAD`` (or, at the top
    level, a neutral default), so the beyond-schema checks can run on the rest."""
    if not isinstance(data, dict):
        return None
    out: dict[str, Any] = copy.deepcopy(data)
    for key, default in _TOP_DEFAULTS.items():
        out.setdefault(key, copy.deepcopy(default))
    for problem in problems:
        unit = _unit(problem.path)
        if unit is None:
            continue
        if len(unit) == 1:
            key = str(unit[0])
            if key in _TOP_DEFAULTS:
                out[key] = copy.deepcopy(_TOP_DEFAULTS[key])
            else:
                out.pop(key, None)
            continue
        parent: Any = out
        for part in unit[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        last = unit[-1]
        present = (isinstance(parent, dict) and last in parent) or (
            isinstance(parent, list) and isinstance(last, int) and last < len(parent)
        )
        if present:
            parent[last] = BAD
        elif parent is not None and parent is not BAD:
            # a required key is missing: the object holding it is unusable
            _mark(out, unit[:-1])
    return out


def _mark(root: dict[str, Any], path: Path) -> None:
    parent: Any = root
    for part in path[:-1]:
        parent = parent[part]
    if len(path) == 1:
        root[str(path[0])] = copy.deepcopy(_TOP_DEFAULTS.get(str(path[0]), BAD))
    else:
        parent[path[-1]] = BAD


# --- the checks a schema cannot express ------------------------------------------------


def _build(data: Mapping[str, Any], filename: str) -> tuple[TrackingPlan | None, list[Problem]]:
    problems: list[Problem] = []
    destinations = _destinations(data["destinations"], problems)
    sources = _sources(data["sources"], set(data["destinations"]), problems)

    items: dict[str, Item | None] = {}
    kind: ItemKind
    for kind in ("context", "identify", "group"):
        raw = data.get(kind)
        items[kind] = (
            None if raw is None or raw is BAD else _item(kind, kind, raw, (kind,), problems)
        )

    events: list[Item] = []
    checked = [i for i in items.values() if i is not None]
    first_by_name: dict[str, int] = {}
    for index, raw in enumerate(data["events"]):
        if raw is BAD:
            continue
        path: Path = ("events", index)
        name = raw["name"]
        # a duplicate is checked like any event (its problems are problems too), but is
        # left out of the events, so it does not also collide with the first one
        event = _item("event", name, raw, path, problems)
        for source in event.sources or ():
            if source not in data["sources"]:
                i = list(event.sources or ()).index(source)
                problems.append(
                    Problem(
                        (*path, "sources", i),
                        f"the source {quote(source)} is not defined.",
                        f'Define it under "sources", or use one of: {_listing(sources)}.',
                    )
                )
        checked.append(event)
        if name in first_by_name:
            problems.append(
                Problem(
                    (*path, "name"),
                    f"the event name {quote(name)} is already used by "
                    f"{format_path(('events', first_by_name[name]))}.",
                    "Rename one of the two events, or merge them into one.",
                )
            )
            continue
        first_by_name[name] = index
        events.append(event)

    for source in sources:
        _check_collisions(
            [e for e in events if e.sources is None or source in e.sources],
            f"in source {quote(source)}",
            "event",
            problems,
        )

    for item in checked:
        error = _compile.definition_error(_compilable_schema(item, problems))
        if error is not None:
            problems.append(
                Problem(
                    item.path,
                    f"the validator cannot be compiled from this schema: {error}",
                    "Correct the property schemas of this item (see codegen/plan.schema.json).",
                )
            )
    if problems:
        return None, problems
    plan = TrackingPlan(
        version=data["version"],
        branch=data.get("branch", ""),
        version_id=data.get("version_id", ""),
        sources=sources,
        destinations=destinations,
        context=items["context"],
        identify=items["identify"],
        group=items["group"],
        events=tuple(events),
        filename=filename,
    )
    return plan, problems


def _compilable_schema(item: Item, problems: Sequence[Problem]) -> dict[str, Any]:
    """The item's schema without the properties that already have a problem.

    The compile check is the last resort for what the checks above do not know; a property
    they already reported (an invalid pattern, a part the schema check marked ``BAD``)
    would only be reported a second time, less clearly, as the whole item's failure.
    """
    reported = {p.path[: len(item.path) + 2] for p in problems}
    schema = item.json_schema()
    schema["properties"] = {
        prop.name: schema["properties"][prop.name]
        for prop in item.properties
        if prop.path not in reported and not _contains_bad(prop.schema)
    }
    return schema


def _contains_bad(value: Any) -> bool:
    if value is BAD:
        return True
    if isinstance(value, Mapping):
        return any(_contains_bad(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_bad(v) for v in value)
    return False


def _listing(names: Iterable[str]) -> str:
    return ", ".join(quote(n) for n in names) or "(none defined yet)"


def _destinations(raw: Mapping[str, Any], problems: list[Problem]) -> dict[str, Destination]:
    out: dict[str, Destination] = {}
    key_field = {"amplitude": "api_key", "segment": "write_key"}
    for key, spec in raw.items():
        if spec is BAD:
            continue
        path: Path = ("destinations", key)
        if key in _names.KEYWORDS:
            problems.append(
                Problem(
                    path,
                    f"the destination key {quote(key)} is a Python keyword and cannot be a "
                    "keyword argument of DestinationsOptions.",
                    f"Rename it, e.g. {quote(key + '_dest')}.",
                )
            )
        vendor = spec["vendor"]
        keys: dict[str, str] = {}
        for field in ("api_key", "write_key"):
            if field not in spec:
                continue
            if key_field.get(vendor) != field:
                wanted = key_field.get(vendor)
                fix = (
                    f'Rename it to "{wanted}".'
                    if wanted
                    else "Remove it: a custom destination gets no key from the plan."
                )
                problems.append(
                    Problem(
                        (*path, field),
                        f'"{field}" does not apply to a {vendor} destination.',
                        fix,
                    )
                )
                continue
            keys = dict(spec[field])
        out[key] = Destination(key=key, vendor=vendor, keys=keys)
    return out


def _sources(
    raw: Mapping[str, Any], destinations: Collection[str], problems: list[Problem]
) -> dict[str, Source]:
    """The sources; ``destinations`` holds every destination key, well-formed or not."""
    out: dict[str, Source] = {}
    for name, spec in raw.items():
        if spec is BAD:
            continue
        for i, dest in enumerate(spec["destinations"]):
            if dest not in destinations:
                problems.append(
                    Problem(
                        ("sources", name, "destinations", i),
                        f"the destination {quote(dest)} is not defined.",
                        f'Define it under "destinations", or use one of: {_listing(destinations)}.',
                    )
                )
        out[name] = Source(name=name, destinations=tuple(spec["destinations"]))
    return out


def _item(
    kind: ItemKind, name: str, raw: Mapping[str, Any], path: Path, problems: list[Problem]
) -> Item:
    props_raw: Mapping[str, Any] = raw.get("properties", {})
    required: list[str] = list(raw.get("required", []))
    _check_required(required, props_raw, (*path, "required"), problems)
    props: list[Property] = []
    for pname, schema in props_raw.items():
        if schema is BAD:
            continue
        ppath: Path = (*path, "properties", pname)
        _check_property_schema(schema, ppath, problems)
        ident = _names.identifier(pname, "property")
        if ident is None:
            problems.append(_no_identifier(pname, ppath, "property"))
            ident = "_invalid"
        props.append(
            Property(name=pname, ident=ident, schema=schema, required=pname in required, path=ppath)
        )

    params = GENERATED_PARAMS[kind]
    for prop in props:
        if not prop.is_const and prop.ident in params:
            problems.append(
                Problem(
                    prop.path,
                    f"the property {quote(prop.name)} becomes the parameter {prop.ident!r}, "
                    f"which every generated {kind} function already has "
                    f"({', '.join(params)}).",
                    "Rename the property (e.g. "
                    + quote(prop.name + " property")
                    + "), or drop it if it duplicates that argument.",
                )
            )
    _check_collisions(
        [p for p in props if p.ident != "_invalid"],
        f"in {_item_label(kind, name)}",
        "property",
        problems,
    )

    ident = kind
    if kind == "event":
        maybe = _names.identifier(name, "event")
        if maybe is None:
            problems.append(_no_identifier(name, (*path, "name"), "event"))
            maybe = "_invalid"
        ident = maybe
    sources = raw.get("sources")
    return Item(
        kind=kind,
        name=name,
        ident=ident,
        description=str(raw.get("description", "")),
        version=str(raw.get("version", "")),
        sources=None if sources is None else tuple(sources),
        properties=tuple(props),
        path=path,
    )


def _item_label(kind: ItemKind, name: str) -> str:
    return f"the event {quote(name)}" if kind == "event" else f"the {kind} item"


def _no_identifier(name: str, path: Path, kind: str) -> Problem:
    return Problem(
        path,
        f"the {kind} name {quote(name)} has no letters or digits to make a Python name from.",
        f"Rename the {kind} so it contains at least one letter or digit.",
    )


_PLURAL = {"event": "events", "property": "properties"}


def _check_collisions(
    things: Iterable[Property | Item], where: str, kind: str, problems: list[Problem]
) -> None:
    first: dict[str, Property | Item] = {}
    for thing in things:
        if thing.ident == "_invalid":
            continue
        other = first.setdefault(thing.ident, thing)
        if other is thing:
            continue
        problems.append(
            Problem(
                (*thing.path, "name") if isinstance(thing, Item) else thing.path,
                f"the {kind} names {quote(other.name)} and {quote(thing.name)} {where} both "
                f"become the Python name {thing.ident!r}.",
                f"Rename one of the two {_PLURAL[kind]} so their names differ in more than case, "
                "spacing or punctuation.",
            )
        )


def _check_required(
    required: list[str], declared: Mapping[str, Any], path: Path, problems: list[Problem]
) -> None:
    for i, name in enumerate(required):
        if name not in declared:
            problems.append(
                Problem(
                    (*path, i),
                    f'{quote(name)} is required but not defined in "properties".',
                    f'Add {quote(name)} to "properties", or remove it from "required".',
                )
            )


def _walk(schema: Mapping[str, Any], path: Path) -> Iterator[tuple[Mapping[str, Any], Path]]:
    """Every schema node of a property; nested parts the schema check rejected (``BAD``)
    are skipped, as they are reported already."""
    yield schema, path
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _walk(items, (*path, "items"))
    for key, sub in schema.get("properties", {}).items():
        if sub is not BAD:
            yield from _walk(sub, (*path, "properties", key))


def _types_of(schema: Mapping[str, Any]) -> list[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    return list(t) if isinstance(t, list) else [t]


def _check_property_schema(schema: Mapping[str, Any], path: Path, problems: list[Problem]) -> None:
    """What makes a well-formed property schema invalid or unsatisfiable."""
    for node, where in _walk(schema, path):
        types = _types_of(node)
        if "pattern" in node:
            try:
                re.compile(node["pattern"])
            except re.error as exc:
                problems.append(
                    Problem(
                        (*where, "pattern"),
                        f"the pattern {quote(node['pattern'])} is not a valid regular "
                        f"expression ({exc}).",
                        "Fix the regular expression (Python's re syntax, like ECMA 262 for "
                        "the usual constructs).",
                    )
                )
        if "format" in node and node["format"] not in SUPPORTED_FORMATS:
            problems.append(
                Problem(
                    (*where, "format"),
                    f"the format {quote(node['format'])} is not one the validators check.",
                    f"Use one of {', '.join(SUPPORTED_FORMATS)}, or express the rule as a "
                    '"pattern".',
                )
            )
        for low, high in (
            ("minimum", "maximum"),
            ("minLength", "maxLength"),
            ("minItems", "maxItems"),
            ("exclusiveMinimum", "exclusiveMaximum"),
        ):
            if low in node and high in node and node[low] > node[high]:
                problems.append(
                    Problem(
                        (*where, low),
                        f"{low} ({node[low]}) is greater than {high} ({node[high]}): no value "
                        "can satisfy both.",
                        f"Lower {low} or raise {high}.",
                    )
                )
        if "required" in node:
            _check_required(
                node["required"], node.get("properties", {}), (*where, "required"), problems
            )
        for keyword in ("enum", "const"):
            if keyword not in node or types is None:
                continue
            values = node["enum"] if keyword == "enum" else [node["const"]]
            for i, value in enumerate(values):
                if not any(is_type(value, t) for t in types):
                    at: Path = (*where, "enum", i) if keyword == "enum" else (*where, "const")
                    problems.append(
                        Problem(
                            at,
                            f"the {keyword} value {quote(value)} is not of the declared type "
                            f"{' or '.join(types)}, so it can never be valid.",
                            f"Change the value, or add {quote(_TYPE_OF_VALUE[type(value)])} "
                            'to "type".',
                        )
                    )
        if (
            "const" in node
            and "enum" in node
            and canonical(node["const"]) not in {canonical(v) for v in node["enum"]}
        ):
            problems.append(
                Problem(
                    (*where, "const"),
                    "the const value is not among the enum values, so no value is valid.",
                    'Keep only one of "const" and "enum".',
                )
            )
