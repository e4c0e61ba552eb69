"""A fast, sound pre-check for event schemas, which also proves the data ready to encode.

fastjsonschema's generated code is thorough but spends ~1 us on a five-property event
(set arithmetic on keys, per-property bookkeeping), more with patterns and formats.
``check_source`` writes a plain Python function for a schema that returns True only when
it has *proved* two things: the data is valid, and it is JSON as it is (every value a
``str``, ``int``, finite ``float``, ``bool``, ``None``, ``list`` or ``dict`` with string
keys), so the caller may encode it without converting anything (``normalize``).

It is sound, not complete: False means "not proved here", and the validator then asks
fastjsonschema, which decides (and explains). So it may be conservative (an integer given
as ``1.0``, a tuple for an array, a NaN) but it can never accept what fastjsonschema
rejects. Type checks are ``type(x) is ...``; bounds, lengths, enums, required and allowed
keys are written out. A property whose schema uses a keyword this module does not model
(``pattern``, ``format``, ``uniqueItems``, ``anyOf``...) is handed whole to a fastjsonschema
validator compiled for that property alone (a *delegate*, supplied by the caller), so one
such keyword costs one small call, not the pre-check of the whole event. Without a
delegate, or at the top level, such a schema gets no pre-check at all (``None``).

Generated packages embed the source (compiled at generation time, the delegates with the
item validators); plain schema dicts given to the runtime are compiled at ``load()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Given a subschema, return the name of a function that raises for invalid data (the
#: caller compiles it with fastjsonschema and defines the name), or None when it cannot.
Delegate = Callable[[Mapping[str, Any]], "str | None"]

#: Keywords that never change validity.
ANNOTATIONS = frozenset(
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
    # ``x - x == 0.0`` is False for NaN and the infinities, which JSON cannot carry
    "number": "(type({v}) is int or (type({v}) is float and {v} - {v} == 0.0))",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
    "array": "type({v}) is list",
    "object": "type({v}) is dict",
}
_BOUNDED = "(type({v}) is int or type({v}) is float or type({v}) is bool)"
#: JSON types whose type test alone proves a value ready to encode
_SCALAR_TYPES = frozenset(("string", "integer", "number", "boolean", "null"))


class _Unsupported(Exception):  # noqa: N818 - internal control flow, never escapes
    pass


class _Writer:
    def __init__(self, name: str, delegate: Delegate | None) -> None:
        self.name = name
        self.delegate = delegate
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


def _emit(schema: Any, v: str, w: _Writer, indent: int, *, top: bool = False) -> None:
    """Write statements that ``return False`` unless ``v`` provably matches ``schema`` and
    is ready to encode. Below the top level, a schema it cannot model goes to a delegate."""
    lines, consts = len(w.lines), len(w.consts)
    try:
        _emit_modelled(schema, v, w, indent)
    except _Unsupported:
        if top or w.delegate is None or not isinstance(schema, Mapping):
            raise
        del w.lines[lines:], w.consts[consts:]
        _emit_delegated(schema, v, w, indent)


def _emit_delegated(schema: Mapping[str, Any], v: str, w: _Writer, indent: int) -> None:
    assert w.delegate is not None
    kinds = _kinds(schema)
    function = w.delegate(schema)
    if function is None:
        raise _Unsupported
    if kinds:
        w.fail_unless(" or ".join(_TYPE_TESTS[k].format(v=v) for k in kinds), indent)
    pad = " " * indent
    # the delegate is fastjsonschema's own code: whatever it raises, the answer is "not
    # proved here", and the full validator decides
    w.lines.append(f"{pad}try:")
    w.lines.append(f"{pad}    {function}({v})")
    w.lines.append(f"{pad}except Exception:")
    w.lines.append(f"{pad}    return False")
    if not kinds or not kinds <= _SCALAR_TYPES:
        w.fail_unless(f"_ready({v})", indent)


def _kinds(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return set()
    kinds = [kind] if isinstance(kind, str) else kind
    if not isinstance(kinds, list) or not kinds or any(k not in _TYPE_TESTS for k in kinds):
        raise _Unsupported
    return set(kinds)


def _emit_modelled(schema: Any, v: str, w: _Writer, indent: int) -> None:
    if schema is True:
        w.fail_unless(f"_ready({v})", indent)  # any value, as long as it can be sent
        return
    if not isinstance(schema, Mapping):
        raise _Unsupported
    for key in schema:
        if key not in _HANDLED and key not in ANNOTATIONS:
            raise _Unsupported
    conditions: list[str] = []
    kinds = sorted(_kinds(schema))
    if kinds:
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
    if not _proves_ready(schema, kinds):
        w.fail_unless(f"_ready({v})", indent)


def _proves_ready(schema: Mapping[str, Any], kinds: list[str]) -> bool:
    """Whether the checks written for ``schema`` leave only values ready to encode.

    Scalars are pinned by their exact type tests (and enums by theirs); an array by its
    ``items`` schema, whose checks prove each item; an object by ``additionalProperties:
    false``, every key then being one of its properties, each proved by its own checks.
    Anything else gets a ``_ready`` walk.
    """
    if not kinds:
        return "enum" in schema or "const" in schema
    for kind in kinds:
        if kind in _SCALAR_TYPES:
            continue
        if kind == "array" and "items" in schema:
            continue
        if kind == "object" and schema.get("additionalProperties", True) is False:
            continue
        return False
    return True


def _emit_items(items: Any, v: str, w: _Writer, indent: int, *, known: bool) -> None:
    if not isinstance(items, Mapping):
        raise _Unsupported  # tuple validation
    item = w.var()
    inner = _Writer(w.name, w.delegate)
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


def check_source(
    schema: Mapping[str, Any], name: str, delegate: Delegate | None = None
) -> str | None:
    """Python source defining ``def <name>(data) -> bool`` (plus its constants), or None.

    ``name`` must be a valid identifier; every other name in the source derives from it.
    Strings from the schema appear only through ``repr()``. The source needs ``PRELUDE``
    (and the functions ``delegate`` named) defined before it.
    """
    if not name.isidentifier():
        raise ValueError(f"not an identifier: {name!r}")
    w = _Writer(name, delegate)
    try:
        _emit(schema, "data", w, 4, top=True)
    except (_Unsupported, TypeError, ValueError):
        return None
    body = "\n".join(w.lines) if w.lines else "    pass"
    consts = "\n".join(w.consts)
    return f"{consts}\n\n\ndef {name}(data: Any) -> bool:\n{body}\n    return True\n"


#: What every pre-check needs, as source: generated ``_validators.py`` modules embed it
#: (they import nothing from the runtime's private modules), and the runtime executes
#: the same text once, below, for its own ``json_ready``. ``_ready`` is True when a value
#: is JSON as it is: nothing to convert, nothing that cannot be sent.
PRELUDE = """\
from typing import Any

_MISSING = object()
_JSON_SCALARS = frozenset((str, int, bool, type(None)))


def _ready(value: Any) -> bool:
    cls = type(value)
    if cls in _JSON_SCALARS:
        return True
    if cls is float:
        return bool(value - value == 0.0)  # False for NaN and the infinities
    # loops, not all(<generator>): measured about twice as fast on short lists
    if cls is list:
        for item in value:
            if not _ready(item):
                return False
        return True
    if cls is dict:
        for key, item in value.items():
            if type(key) is not str or not _ready(item):
                return False
        return True
    return False
"""

_prelude: dict[str, Any] = {}
exec(compile(PRELUDE, "<itly-fastcheck-prelude>", "exec"), _prelude)  # noqa: S102
#: True when a value is JSON as it is (see ``PRELUDE``)
json_ready: Callable[[Any], bool] = _prelude["_ready"]


def compile_check(
    schema: Mapping[str, Any], compile_delegate: Callable[[Mapping[str, Any]], Any] | None = None
) -> Callable[[Any], bool] | None:
    """Compile ``check_source`` in memory (for schemas given to the runtime as dicts).

    ``compile_delegate`` turns a subschema into a validator that raises when data is
    invalid (``_validation.compile_schema``); it may raise itself when it cannot. Without
    it, schemas with keywords this module does not model get no pre-check.
    """
    namespace = dict(_prelude)

    def delegate(subschema: Mapping[str, Any]) -> str | None:
        assert compile_delegate is not None
        try:
            validator = compile_delegate(subschema)
        except Exception:  # noqa: BLE001 - a subschema it cannot compile gets no delegate
            return None
        ident = f"_delegate{len(namespace)}"
        namespace[ident] = validator
        return ident

    source = check_source(schema, "check", delegate if compile_delegate else None)
    if source is None:
        return None
    exec(compile(source, "<itly-fastcheck>", "exec"), namespace)  # noqa: S102
    fn: Callable[[Any], bool] = namespace["check"]
    return fn
