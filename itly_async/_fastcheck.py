"""A fast, sound pre-check for the common shapes of event schemas.

fastjsonschema's generated code is thorough but spends ~2 us on a five-property event
(set arithmetic on keys, per-property bookkeeping). ``check_source`` writes a plain
Python function for a schema that returns True only when it has *proved* the data valid:
type checks by ``type(x) is ...``, bounds, lengths, enums, required and allowed keys.

It is sound, not complete: False means "not proved here", and the validator then asks
fastjsonschema, which decides (and explains). So it may be conservative (an integer given
as ``1.0``, a tuple for an array) but it can never accept what fastjsonschema rejects. A
schema with a keyword it does not model (``format``, ``pattern``, ``uniqueItems``...)
gets no pre-check at all (``None``); only that property's value gets none if nested.

Generated packages embed the source (compiled at generation time); plain schema dicts
given to the runtime are compiled at ``load()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Keywords that never change validity.
_ANNOTATIONS = frozenset(
    ("$id", "$schema", "$comment", "title", "description", "default", "examples", "deprecated")
)
_HANDLED = frozenset(
    (
        "type",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "additionalProperties",
    )
)
_TYPE_TESTS = {
    "string": "type({v}) is str",
    "integer": "type({v}) is int",
    "number": "(type({v}) is int or type({v}) is float)",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
    "array": "type({v}) is list",
    "object": "type({v}) is dict",
}
_BOUNDED = "(type({v}) is int or type({v}) is float or type({v}) is bool)"


class _Unsupported(Exception):  # noqa: N818 - internal control flow, never escapes
    pass


class _Writer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.consts: list[str] = []
        self.lines: list[str] = []
        self.counter = 0

    def var(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def const(self, value: str) -> str:
        self.counter += 1
        ident = f"_{self.name}_c{self.counter}"
        self.consts.append(f"{ident} = {value}")
        return ident

    def fail_unless(self, condition: str, indent: int) -> None:
        self.lines.append(" " * indent + f"if not ({condition}):")
        self.lines.append(" " * indent + "    return False")


def _literal_set(values: list[Any]) -> str:
    return "frozenset((" + "".join(f"{v!r}, " for v in values) + "))"


def _enum_test(values: list[Any], v: str, w: _Writer) -> str:
    """Sound membership: the same JSON type and value (``1 == True`` must not match)."""
    strings = [x for x in values if type(x) is str]
    ints = [x for x in values if type(x) is int]
    bools = [x for x in values if type(x) is bool]
    has_null = any(x is None for x in values)
    if len(strings) + len(ints) + len(bools) + has_null != len(values):
        raise _Unsupported  # floats, arrays, objects: leave to fastjsonschema
    parts = []
    if strings:
        parts.append(f"(type({v}) is str and {v} in {w.const(_literal_set(strings))})")
    if ints:
        parts.append(f"(type({v}) is int and {v} in {w.const(_literal_set(ints))})")
    if bools:
        parts.append(f"(type({v}) is bool and {v} in {w.const(_literal_set(bools))})")
    if has_null:
        parts.append(f"{v} is None")
    return " or ".join(parts) or "False"


def _number(value: Any) -> str:
    if type(value) not in (int, float) or value != value:  # noqa: PLR0124 - NaN test
        raise _Unsupported
    return repr(value)


def _emit(schema: Any, v: str, w: _Writer, indent: int) -> None:
    """Write statements that ``return False`` unless ``v`` provably matches ``schema``."""
    if schema is True or schema == {}:
        return
    if not isinstance(schema, Mapping):
        raise _Unsupported
    for key in schema:
        if key not in _HANDLED and key not in _ANNOTATIONS:
            raise _Unsupported
    conditions: list[str] = []
    kind = schema.get("type")
    kinds: list[str] = []
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if not kinds or any(k not in _TYPE_TESTS for k in kinds):
            raise _Unsupported
        conditions.append(" or ".join(_TYPE_TESTS[k].format(v=v) for k in kinds))
    if "enum" in schema:
        if not isinstance(schema["enum"], list):
            raise _Unsupported
        conditions.append(_enum_test(schema["enum"], v, w))
    if "const" in schema:
        conditions.append(_enum_test([schema["const"]], v, w))
    # a keyword applies only to values of its JSON type; once the type is pinned to that
    # one type, the guard is redundant
    only = kinds[0] if len(kinds) == 1 else None
    # fastjsonschema applies numeric bounds to anything isinstance(int | float), bools too
    number_guard = "" if only in ("integer", "number") else f"not {_BOUNDED.format(v=v)} or "
    string_guard = "" if only == "string" else f"type({v}) is not str or "
    array_guard = "" if only == "array" else f"type({v}) is not list or "
    for key, op in (
        ("minimum", ">="),
        ("maximum", "<="),
        ("exclusiveMinimum", ">"),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            conditions.append(f"{number_guard}{v} {op} {_number(schema[key])}")
    for key, op in (("minLength", ">="), ("maxLength", "<=")):
        if key in schema:
            conditions.append(f"{string_guard}len({v}) {op} {int(schema[key])}")
    for key, op in (("minItems", ">="), ("maxItems", "<=")):
        if key in schema:
            conditions.append(f"{array_guard}len({v}) {op} {int(schema[key])}")
    if conditions:
        w.fail_unless(" and ".join(f"({c})" for c in conditions), indent)
    if "items" in schema:
        _emit_items(schema["items"], v, w, indent, known=only == "array")
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        _emit_object(schema, v, w, indent, known=only == "object")


def _emit_items(items: Any, v: str, w: _Writer, indent: int, *, known: bool) -> None:
    if not isinstance(items, Mapping):
        raise _Unsupported  # tuple validation
    item = w.var()
    inner = _Writer(w.name)
    inner.counter = w.counter
    _emit(items, item, inner, indent + 8)
    w.counter = inner.counter
    w.consts.extend(inner.consts)
    if not inner.lines:
        return
    if known:
        w.lines.append(" " * indent + f"for {item} in {v}:")
        w.lines.extend(line[4:] for line in inner.lines)
        return
    w.lines.append(" " * indent + f"if type({v}) is list:")
    w.lines.append(" " * indent + f"    for {item} in {v}:")
    w.lines.extend(inner.lines)


def _emit_object(
    schema: Mapping[str, Any], v: str, w: _Writer, indent: int, *, known: bool
) -> None:
    props = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if (
        not isinstance(props, Mapping)
        or not isinstance(required, list)
        or extra
        not in (
            True,
            False,
        )
    ):
        raise _Unsupported
    if not all(isinstance(k, str) for k in required):
        raise _Unsupported
    if known:
        body = indent
    else:
        w.lines.append(" " * indent + f"if type({v}) is dict:")
        body = indent + 4
    start = len(w.lines)
    keys = []
    if required:
        keys.append(f"{w.const(_literal_set(sorted(required)))} <= {v}.keys()")
    if extra is False:
        keys.append(f"{v}.keys() <= {w.const(_literal_set(sorted(props)))}")
    if keys:
        w.fail_unless(" and ".join(keys), body)
    for key, sub in props.items():
        x = w.var()
        if key in required:
            w.lines.append(" " * body + f"{x} = {v}[{key!r}]")
            _emit(sub, x, w, body)
        else:
            mark = len(w.lines)
            w.lines.append(" " * body + f"{x} = {v}.get({key!r}, _MISSING)")
            w.lines.append(" " * body + f"if {x} is not _MISSING:")
            checks = len(w.lines)
            _emit(sub, x, w, body + 4)
            if len(w.lines) == checks:
                del w.lines[mark:]  # nothing to check for this property
    if len(w.lines) == start and not known:
        w.lines.append(" " * body + "pass")


def check_source(schema: Mapping[str, Any], name: str) -> str | None:
    """Python source defining ``def <name>(data) -> bool`` (plus its constants), or None.

    ``name`` must be a valid identifier; every other name in the source derives from it.
    Strings from the schema appear only through ``repr()``.
    """
    if not name.isidentifier():
        raise ValueError(f"not an identifier: {name!r}")
    w = _Writer(name)
    try:
        _emit(schema, "data", w, 4)
    except (_Unsupported, TypeError, ValueError):
        return None
    body = "\n".join(w.lines) if w.lines else "    pass"
    consts = "\n".join(w.consts)
    return f"{consts}\n\n\ndef {name}(data: Any) -> bool:\n{body}\n    return True\n"


_PRELUDE = "from typing import Any\n_MISSING = object()\n"


def compile_check(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """Compile ``check_source`` in memory (for schemas given to the runtime as dicts)."""
    source = check_source(schema, "check")
    if source is None:
        return None
    namespace: dict[str, Any] = {}
    exec(compile(_PRELUDE + source, "<itly-fastcheck>", "exec"), namespace)  # noqa: S102
    fn: Callable[[Any], bool] = namespace["check"]
    return fn


PRELUDE = _PRELUDE
