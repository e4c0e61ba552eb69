"""Validation: a fast path that stops at the first error, and a slow path that explains.

The fast path is one precompiled fastjsonschema call per event. Only when it fails does
``Validator.explain`` work out *every* failing property, with per-property validators
compiled lazily and cached, so a valid event pays for nothing more.

Values are checked for JSON-ability in the same pass: ``datetime``/``date`` become ISO-8601
strings, ``Decimal`` a float, ``UUID`` a string, ``Enum`` its value, tuples and sets lists;
anything else (objects, NaN, infinities, non-string keys) is a validation error.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema

from ._exceptions import PropertyError
from ._fastcheck import ANNOTATIONS, compile_check, json_ready
from ._plan import Schema

ValidateFn = Callable[[Any], Any]


def _json_path(name: str) -> str:
    """fastjsonschema names the failing value ``data.prop[0]``; we say ``$.prop[0]``."""
    return "$" + name[4:] if name.startswith("data") else name


#: Formats fastjsonschema has no built-in check for, as patterns. Generated packages compile
#: their validators with the same table (codegen imports it), so both check alike.
FORMATS: Mapping[str, str] = {
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z",
}


def compile_schema(schema: Mapping[str, Any]) -> ValidateFn:
    """A fastjsonschema validator that never changes the data it checks.

    ``use_default=False``: fastjsonschema would otherwise write each property's
    ``default`` into the caller's dict while validating it.
    """
    validate: ValidateFn = fastjsonschema.compile(dict(schema), formats=FORMATS, use_default=False)
    return validate


_SCALARS = frozenset((str, int, bool, type(None)))
#: keywords ``Validator.explain`` checks itself when it walks into an object
_OBJECT_KEYWORDS = frozenset(("properties", "required", "additionalProperties"))


def normalize(properties: Mapping[str, Any]) -> tuple[dict[str, Any], list[PropertyError]]:
    """Return a JSON-ready ``properties`` and the values that cannot be sent.

    The common case (JSON types only, lists and dicts of them included) returns the input
    dict as is, without copying; a copy is made only when some value needs converting.
    The event's snapshot is its JSON, encoded in the same call right after validation
    (``Client._encode``), so a caller that reuses its dict changes nothing already tracked.
    """
    if isinstance(properties, dict):
        scalars = _SCALARS
        for value in properties.values():
            cls = value.__class__
            if cls in scalars or (cls is float and value - value == 0.0):
                continue
            if not json_ready(value):
                break
        else:
            return properties, []
    errors: list[PropertyError] = []
    out = {str(k): _convert(v, f"$.{k}", errors) for k, v in properties.items()}
    return out, errors


def _convert(value: Any, path: str, errors: list[PropertyError]) -> Any:
    if isinstance(value, bool | str | int) or value is None:
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        if not math.isfinite(value):
            errors.append(PropertyError(path, "finite", f"{value!r} cannot be sent as JSON"))
            return None
        return value
    if isinstance(value, enum.Enum):
        return _convert(value.value, path, errors)
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        number = float(value)  # Decimal('1e400') is finite, but not as a float
        if not math.isfinite(number):
            errors.append(PropertyError(path, "finite", f"{value!r} cannot be sent as JSON"))
            return None
        return number
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                errors.append(PropertyError(f"{path}", "keys", f"key {k!r} is not a string"))
                continue
            out[k] = _convert(v, f"{path}.{k}", errors)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_convert(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    errors.append(
        PropertyError(path, "serializable", f"{type(value).__name__} value cannot be sent as JSON")
    )
    return None


class Validator:
    """Checks one plan item (an event, context, identify or group traits).

    Accepts a schema dict, a precompiled validate function, or both (``Schema``). Built
    from a dict alone, it compiles at construction; generated packages pass both and
    compile nothing.
    """

    __slots__ = ("_fast", "_parts", "_quick", "_schema", "name", "proves_ready")

    def __init__(self, name: str, spec: Schema) -> None:
        self.name = name
        self._schema: Mapping[str, Any] | None = spec.schema
        fast = spec.validate
        quick = spec.check
        ready = spec.check_ready
        if fast is None:
            assert spec.schema is not None  # Schema guarantees one of the two
            fast = compile_schema(spec.schema)
            if quick is None:
                quick = compile_check(spec.schema, compile_schema)
                ready = True
        self._fast: ValidateFn = fast
        self._quick = quick
        #: the pre-check, when it also proves the data JSON as it is (``Schema.check_ready``)
        self.proves_ready: Callable[[Any], bool] | None = quick if ready else None
        #: validators of schema parts, by place in the schema (``explain``, failures only)
        self._parts: dict[tuple[str, ...], ValidateFn] = {}

    def check(self, properties: Mapping[str, Any], *, pre_check: bool = True) -> bool:
        """The fast path: True when valid. Never raises for bad data.

        ``pre_check=False`` skips the pre-check, for data it has already failed on.
        """
        quick = self._quick
        if pre_check and quick is not None and quick(properties):
            return True
        try:
            self._fast(properties)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def explain(self, properties: Mapping[str, Any]) -> list[PropertyError]:
        """Every failing value with its JSON path and rule (slow path, failures only).

        Walks the schema with the data: objects property by property (``required`` and
        ``additionalProperties`` checked here), arrays item by item, so one bad value does
        not hide another beside it or deeper down; the other keywords of each level are
        checked by a small validator of their own, compiled on first use and cached by
        its place in the schema.
        """
        schema = self._schema
        if schema is None:
            return self._first_error(properties)
        errors: list[PropertyError] = []
        self._explain(schema, properties, "$", (), errors)
        return errors or self._first_error(properties)

    def _explain(
        self,
        schema: Any,
        value: Any,
        path: str,
        where: tuple[str, ...],
        errors: list[PropertyError],
    ) -> None:
        if not isinstance(schema, Mapping):
            self._check_rest(schema, value, path, where, errors)
            return
        props = schema.get("properties")
        if isinstance(value, Mapping) and (
            props is not None or "required" in schema or "additionalProperties" in schema
        ):
            props = props if isinstance(props, Mapping) else {}
            for key in schema.get("required") or ():
                if key not in value:
                    errors.append(
                        PropertyError(f"{path}.{key}", "required", "required property is missing")
                    )
            extra = schema.get("additionalProperties", True)
            for key, item in value.items():
                sub = props.get(key)
                if sub is not None:
                    self._explain(sub, item, f"{path}.{key}", (*where, "p", key), errors)
                elif extra is False:
                    errors.append(
                        PropertyError(
                            f"{path}.{key}", "additionalProperties", "property is not in the plan"
                        )
                    )
                elif isinstance(extra, Mapping):
                    self._explain(extra, item, f"{path}.{key}", (*where, "a"), errors)
            rest = {k: v for k, v in schema.items() if k not in _OBJECT_KEYWORDS}
            self._check_rest(rest, value, path, (*where, "-object"), errors)
            return
        items = schema.get("items")
        if isinstance(value, list | tuple) and isinstance(items, Mapping):
            for index, item in enumerate(value):
                self._explain(items, item, f"{path}[{index}]", (*where, "i"), errors)
            rest = {k: v for k, v in schema.items() if k != "items"}
            self._check_rest(rest, value, path, (*where, "-items"), errors)
            return
        self._check_rest(schema, value, path, where, errors)

    def _check_rest(
        self,
        schema: Any,
        value: Any,
        path: str,
        where: tuple[str, ...],
        errors: list[PropertyError],
    ) -> None:
        """Check ``value`` against the keywords of ``schema`` not walked into."""
        if isinstance(schema, Mapping) and not any(k not in ANNOTATIONS for k in schema):
            return  # nothing left that could fail
        validate = self._parts.get(where)
        if validate is None:
            try:
                validate = compile_schema(schema if isinstance(schema, Mapping) else {})
            except fastjsonschema.JsonSchemaDefinitionException as exc:
                errors.append(PropertyError(path, "schema", f"the schema cannot be used: {exc}"))
                return
            self._parts[where] = validate
        try:
            validate(value)
        except fastjsonschema.JsonSchemaValueException as exc:
            name = exc.name or "data"
            suffix = name[4:] if name.startswith("data") else ""
            errors.append(PropertyError(path + suffix, str(exc.rule), exc.message))

    def _first_error(self, properties: Mapping[str, Any]) -> list[PropertyError]:
        try:
            self._fast(properties)
        except fastjsonschema.JsonSchemaValueException as exc:
            return [PropertyError(_json_path(exc.name or "data"), str(exc.rule), exc.message)]
        except fastjsonschema.JsonSchemaException as exc:
            return [PropertyError("$", "schema", str(exc))]
        return []
