"""Configuration: immutable, validated, keyword-only values.

Every default lives in this module, with one sentence on its trade-off. A wrong value
raises ``ValueError`` at construction and the message names the field.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs
import orjson

if TYPE_CHECKING:
    from ._logger import ItlyLogger

# --- Defaults, one sentence each -------------------------------------------------------

#: Events per request. Amplitude's SDK uses 200; larger batches amortise the HTTP round
#: trip but make each retry resend more.
DEFAULT_FLUSH_QUEUE_SIZE = 200
#: Seconds a partial batch may wait. Short enough that a quiet service still reports
#: within a few seconds, long enough that a trickle of events shares requests.
DEFAULT_FLUSH_INTERVAL = 5.0
#: Events held per destination before the overflow policy applies. 20,000 is the retry
#: buffer of Amplitude's SDK; at under 1 KB an event it bounds memory near 20 MB.
DEFAULT_MAX_QUEUE_SIZE = 20_000
#: Seconds one HTTP request may take, connect to last byte. A hung collector costs one
#: destination this long per attempt, never the caller.
DEFAULT_TIMEOUT = 10.0
#: Attempts after the first send before an event is rejected as undeliverable. With the
#: default backoff this spans several minutes of outage.
DEFAULT_MAX_RETRIES = 12
#: Seconds from an event's first failed send after which it is no longer retried, so a
#: long outage cannot keep old events cycling forever.
DEFAULT_MAX_RETRY_DURATION = 600.0
#: First backoff step in seconds; each retry doubles it (full jitter: a random delay up to
#: the step), so a fleet of clients does not retry in lockstep.
DEFAULT_RETRY_BASE = 0.5
#: Longest backoff in seconds between two attempts of the same event.
DEFAULT_RETRY_CAP = 30.0
#: Longest wait in seconds a server may ask for (``Retry-After``, Amplitude's 30 s
#: throttle); a larger request is clipped so a bad header cannot park events for days.
DEFAULT_MAX_SERVER_WAIT = 300.0
#: Seconds ``shutdown()`` (and the exit hook) may spend delivering what is left; long enough
#: for a few round trips, short enough not to stall a deploy.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: Seconds a custom adapter's call may take before it is counted as failed; a hung adapter
#: must not hold its queue forever.
DEFAULT_ADAPTER_TIMEOUT = 10.0

OverflowPolicy = Literal["drop_newest", "drop_oldest", "block"]
_OVERFLOW_POLICIES = ("drop_newest", "drop_oldest", "block")
_SPOOL_MODES = ("write_through", "write_behind")


class Environment(enum.Enum):
    """Where the SDK runs; it picks the plan's keys and the validation default."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


# --- small validators with readable messages ------------------------------------------
#
# Every message starts with ``Class.field`` and says what was expected, so a wrong value
# is caught where it is written, not later as a TypeError deep in the flusher. A value is
# echoed only where it cannot be a secret (numbers, enum-like choices); strings that may
# hold a key never are.

_Check = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _where(inst: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(inst).__name__}.{attribute.name}"


def _kind(value: object) -> str:
    return type(value).__name__


def _shown(value: object) -> str:
    """A wrong choice as written (a str), or only its type (anything else)."""
    return repr(value) if isinstance(value, str) else _kind(value)


def _wrong_type(where: str, expected: str, value: object) -> ValueError:
    # a ValueError, not a TypeError: every option error is one, by contract (DESIGN.md)
    return ValueError(f"{where} must be {expected}, not {_kind(value)}")


def _int(*, minimum: int) -> _Check:
    """An ``int`` (never a bool or a float: ``2.5`` events per batch is a mistake)."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(_where(inst, attribute), "an int", value)
        if value < minimum:
            raise ValueError(f"{_where(inst, attribute)} must be >= {minimum}, got {value!r}")

    return check


def _seconds(*, positive: bool) -> _Check:
    """A finite number of seconds, int or float (a bool, NaN or infinity is a mistake)."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        where = _where(inst, attribute)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(where, "a number of seconds", value)
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number of seconds, got {value!r}")
        if positive and not value > 0:
            raise ValueError(f"{where} must be > 0, got {value!r}")
        if not value >= 0:
            raise ValueError(f"{where} must be >= 0, got {value!r}")

    return check


def _bool(*, optional: bool = False) -> _Check:
    """``True`` or ``False`` only: a truthy string such as ``"false"`` would invert intent."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if not isinstance(value, bool):
            expected = "a bool or None" if optional else "a bool"
            raise _wrong_type(_where(inst, attribute), expected, value)

    return check


def _optional_str(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise _wrong_type(_where(inst, attribute), "a str or None", value)


def _non_empty_str(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise _wrong_type(_where(inst, attribute), "a str", value)
    if not value.strip():
        raise ValueError(f"{_where(inst, attribute)} must not be empty")


def _optional_non_empty_str(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    # the value itself is never echoed: it may be a secret
    if value is None:
        return
    if not isinstance(value, str):
        raise _wrong_type(_where(inst, attribute), "a non-empty str or None", value)
    if not value.strip():
        raise ValueError(f"{_where(inst, attribute)} must be a non-empty str or None, got a blank")


def _optional_url(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    _optional_str(inst, attribute, value)
    if not value.startswith(("http://", "https://")):
        raise ValueError(
            f"{_where(inst, attribute)} must be an http:// or https:// URL, got {value!r}"
        )


def _choice(choices: tuple[str, ...]) -> _Check:
    def check(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise ValueError(
                f"{_where(inst, attribute)} must be one of {allowed}, got {_shown(value)}"
            )

    return check


def _optional_instance(cls: type) -> _Check:
    """An option object of its own class: a dict in its place would fail only at load()."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, cls):
            raise _wrong_type(_where(inst, attribute), f"a {cls.__name__} or None", value)

    return check


def _to_path(value: str | os.PathLike[str] | None) -> str | None:
    """``spool_path`` may be given as a ``pathlib.Path``; the spool works with a str."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _optional_path(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _wrong_type(_where(inst, attribute), "a str or os.PathLike path or None", value)
    if not value:
        raise ValueError(f"{_where(inst, attribute)} must not be empty (None turns the spool off)")


def _to_environment(value: Environment | str) -> Environment:
    if isinstance(value, Environment):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return Environment(value.lower())
    raise ValueError(
        "Options.environment must be Environment.DEVELOPMENT or Environment.PRODUCTION "
        f"(or 'development' / 'production'), got {_shown(value)}"
    )


def _json_object(value: Any, where: str) -> dict[str, Any] | None:
    """A mapping made JSON-ready once, at construction, so delivery never meets a bad value.

    ``normalize`` (the properties' converter) turns datetimes, Decimals, UUIDs, Enums,
    tuples and sets into JSON values and reports what it cannot convert with its key path.
    The orjson round trip then proves the result encodes (orjson also refuses integers
    beyond 64 bits) and leaves a private copy, so changing the caller's dict afterwards
    changes nothing already built.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _wrong_type(where, "a mapping (dict) or None", value)
    # imported here: _validation imports _plan, which imports this module
    from ._validation import normalize

    ready, errors = normalize(value)
    if errors:
        raise ValueError(f"{where} cannot be sent as JSON: " + "; ".join(map(str, errors)))
    try:
        result: dict[str, Any] = orjson.loads(orjson.dumps(ready))
    except orjson.JSONEncodeError as exc:
        path = unencodable_path(ready, "$")
        raise ValueError(f"{where} cannot be sent as JSON: {path}: {exc}") from None
    return result


def _encodes(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


def unencodable_path(value: Any, path: str) -> str:
    """The JSON path of the innermost value orjson refuses (error path only)."""
    if isinstance(value, dict):
        items: Any = value.items()
        step = ".{}"
    elif isinstance(value, list):
        items = enumerate(value)
        step = "[{}]"
    else:
        return path
    for key, item in items:
        if not _encodes(item):
            return unencodable_path(item, path + step.format(key))
    return path


def _to_user_properties(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return _json_object(value, "EventOptions.user_properties")


def _to_extra(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return _json_object(value, "EventOptions.extra")


# --- options ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ValidationOptions:
    """How events are checked against the plan.

    Args:
        disabled: skip validation entirely.
        fail_on_error: raise ``ValidationError`` in the caller. ``None`` lets the
            environment decide: True in development, False in production (log, count, send).
    """

    disabled: bool = attrs.field(default=False, validator=_bool())
    fail_on_error: bool | None = attrs.field(default=None, validator=_bool(optional=True))


@attrs.frozen(kw_only=True)
class DeliveryOptions:
    """How events are queued, batched and retried. Every field is bounded; see the defaults.

    Counts are ints; durations are seconds, int or float, finite. ``max_concurrent_requests``
    is per HTTP destination: how many batches may wait for their answers at once (adapters
    always get one call at a time). ``spool_path`` may be a ``str`` or a ``pathlib.Path``.

    Example::

        DeliveryOptions(flush_queue_size=500, flush_interval=1.0, overflow="drop_oldest")
    """

    flush_queue_size: int = attrs.field(default=DEFAULT_FLUSH_QUEUE_SIZE, validator=_int(minimum=1))
    flush_interval: float = attrs.field(
        default=DEFAULT_FLUSH_INTERVAL, validator=_seconds(positive=True)
    )
    max_queue_size: int = attrs.field(default=DEFAULT_MAX_QUEUE_SIZE, validator=_int(minimum=1))
    overflow: OverflowPolicy = attrs.field(
        default="drop_newest", validator=_choice(_OVERFLOW_POLICIES)
    )
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=_seconds(positive=True))
    max_retries: int = attrs.field(default=DEFAULT_MAX_RETRIES, validator=_int(minimum=0))
    max_retry_duration: float = attrs.field(
        default=DEFAULT_MAX_RETRY_DURATION, validator=_seconds(positive=True)
    )
    retry_base: float = attrs.field(default=DEFAULT_RETRY_BASE, validator=_seconds(positive=False))
    retry_cap: float = attrs.field(default=DEFAULT_RETRY_CAP, validator=_seconds(positive=False))
    max_server_wait: float = attrs.field(
        default=DEFAULT_MAX_SERVER_WAIT, validator=_seconds(positive=False)
    )
    shutdown_timeout: float = attrs.field(
        default=DEFAULT_SHUTDOWN_TIMEOUT, validator=_seconds(positive=True)
    )
    adapter_timeout: float = attrs.field(
        default=DEFAULT_ADAPTER_TIMEOUT, validator=_seconds(positive=True)
    )
    gzip: bool = attrs.field(default=False, validator=_bool())
    max_concurrent_requests: int = attrs.field(default=2, validator=_int(minimum=1))
    spool_path: str | None = attrs.field(default=None, converter=_to_path, validator=_optional_path)
    spool_mode: Literal["write_through", "write_behind"] = attrs.field(
        default="write_through", validator=_choice(_SPOOL_MODES)
    )

    def __attrs_post_init__(self) -> None:
        if self.flush_queue_size > self.max_queue_size:
            raise ValueError(
                f"DeliveryOptions.flush_queue_size ({self.flush_queue_size}) must not exceed "
                f"max_queue_size ({self.max_queue_size})"
            )


@attrs.frozen(kw_only=True)
class AmplitudeOptions:
    """Amplitude destination.

    Args:
        api_key: overrides the plan's key for the environment.
        server_zone: ``"US"`` or ``"EU"``.
        use_batch: use the Batch Event Upload API instead of HTTP V2.
        server_url: send here instead (a proxy, or a local collector in tests).
        min_id_length: the shortest ``user_id`` / ``device_id`` Amplitude accepts (5).
        group_type: the Amplitude group type that ``group(user_id, group_id)`` sets.
    """

    api_key: str | None = attrs.field(default=None, validator=_optional_non_empty_str, repr=False)
    server_zone: Literal["US", "EU"] = attrs.field(default="US", validator=_choice(("US", "EU")))
    use_batch: bool = attrs.field(default=False, validator=_bool())
    server_url: str | None = attrs.field(default=None, validator=_optional_url)
    min_id_length: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(_int(minimum=1))
    )
    group_type: str = attrs.field(default="group", validator=_non_empty_str)


@attrs.frozen(kw_only=True)
class SegmentOptions:
    """Segment destination.

    Args:
        write_key: overrides the plan's key for the environment.
        host: base URL, e.g. ``https://events.eu1.segmentapis.com`` or a local collector.
    """

    write_key: str | None = attrs.field(default=None, validator=_optional_non_empty_str, repr=False)
    host: str | None = attrs.field(default=None, validator=_optional_url)


@runtime_checkable
class Adapter(Protocol):
    """Marker for custom adapters: any object; every plugin method is optional.

    Methods looked up: ``load(options)``, ``track(user_id, event)``,
    ``identify(user_id, traits)``, ``group(user_id, group_id, traits)``,
    ``alias(user_id, previous_id)``, ``flush()``, ``shutdown()``; each sync or async.
    """


_ADAPTER_METHODS = ("load", "track", "identify", "group", "alias", "flush", "shutdown")


# not kw_only, unlike the other option classes: its one field is what it is, so
# ``CustomOptions(MyAdapter())`` reads as well as ``CustomOptions(adapter=MyAdapter())``
@attrs.frozen
class CustomOptions:
    """A custom destination: your adapter receives every event on the flusher's loop.

    An adapter that raises or hangs is isolated: the call is logged and counted, the
    other destinations are unaffected.

    Example::

        CustomOptions(MyAdapter())
    """

    adapter: object = attrs.field()

    @adapter.validator
    def _check_adapter(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None or not any(callable(getattr(value, m, None)) for m in _ADAPTER_METHODS):
            raise ValueError(
                "CustomOptions.adapter must be an object with at least one of the methods "
                f"{', '.join(_ADAPTER_METHODS)}, not {_kind(value)}"
            )


DestinationConfig = AmplitudeOptions | SegmentOptions | CustomOptions


@attrs.frozen(kw_only=True)
class EventOptions:
    """Per-call overrides, passed as ``event_options=`` to any tracking function.

    ``time`` is a timezone-aware ``datetime`` or milliseconds since the epoch (an int);
    ``extra`` holds further Amplitude fields (``platform``, ``country``...) and is merged
    as is. ``user_properties`` and ``extra`` are made JSON-ready here, like event
    properties (datetimes and dates to ISO strings, Decimals to floats, UUIDs to strings,
    Enums to their values, tuples and sets to lists) and copied; a value that cannot be
    sent raises ``ValueError`` naming its key path.
    """

    device_id: str | None = attrs.field(default=None, validator=_optional_str)
    time: _dt.datetime | int | None = attrs.field(default=None)
    insert_id: str | None = attrs.field(default=None, validator=_optional_str)
    session_id: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(_int(minimum=-1))
    )
    app_version: str | None = attrs.field(default=None, validator=_optional_str)
    platform: str | None = attrs.field(default=None, validator=_optional_str)
    os_name: str | None = attrs.field(default=None, validator=_optional_str)
    os_version: str | None = attrs.field(default=None, validator=_optional_str)
    country: str | None = attrs.field(default=None, validator=_optional_str)
    language: str | None = attrs.field(default=None, validator=_optional_str)
    ip: str | None = attrs.field(default=None, validator=_optional_str)
    user_properties: Mapping[str, Any] | None = attrs.field(
        default=None, converter=_to_user_properties
    )
    extra: Mapping[str, Any] | None = attrs.field(default=None, converter=_to_extra)

    @time.validator
    def _check_time(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(
                    "EventOptions.time must be timezone-aware (naive datetimes are ambiguous)"
                )
            return
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "a timezone-aware datetime, milliseconds since the epoch (int), or None"
            raise _wrong_type("EventOptions.time", expected, value)
        if value < 0:
            raise ValueError(f"EventOptions.time must be milliseconds >= 0, got {value!r}")


def _to_destinations(value: Any) -> Mapping[str, DestinationConfig] | None:
    """Accept a mapping, or an attrs instance with one field per destination (generated)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        items = dict(value)
    elif attrs.has(type(value)):
        items = {f.name: getattr(value, f.name) for f in attrs.fields(type(value))}
    else:
        raise ValueError(
            "Options.destinations must be a DestinationsOptions or a mapping of destination "
            f"name to AmplitudeOptions / SegmentOptions / CustomOptions, not {_kind(value)}"
        )
    out: dict[str, DestinationConfig] = {}
    for name, cfg in items.items():
        if cfg is None:
            continue
        if not isinstance(cfg, AmplitudeOptions | SegmentOptions | CustomOptions):
            raise ValueError(  # noqa: TRY004 - option errors are ValueErrors by contract
                f"Options.destinations[{name!r}] must be AmplitudeOptions, SegmentOptions or "
                f"CustomOptions, not {_kind(cfg)}"
            )
        out[str(name)] = cfg
    return out


def context_to_dict(context: object) -> dict[str, Any]:
    """Turn a context given as a mapping or an attrs instance into a dict (None omitted)."""
    if context is None:
        return {}
    if isinstance(context, Mapping):
        return dict(context)
    if attrs.has(type(context)):
        to_props = getattr(context, "to_properties", None)
        if callable(to_props):
            result: dict[str, Any] = to_props()
            return result
        fields = attrs.fields(type(context))  # type: ignore[arg-type]  # checked by attrs.has
        return {f.name: v for f in fields if (v := getattr(context, f.name)) is not None}
    raise ValueError(f"Options.context must be a Context, a mapping or None, not {_kind(context)}")


def _check_context(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    context_to_dict(value)


def _check_logger(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    missing = [
        m for m in ("debug", "info", "warn", "error") if not callable(getattr(value, m, None))
    ]
    if missing:
        raise ValueError(
            f"Options.logger must implement ItlyLogger; {_kind(value)} lacks: {', '.join(missing)}"
        )


@attrs.frozen(kw_only=True)
class Options:
    """Everything ``load()`` needs. Mirrors the legacy Itly SDK's options.

    Example::

        Options(context={"version": "1.0"}, environment=Environment.PRODUCTION,
                destinations={"amplitude": AmplitudeOptions(api_key="...")})
    """

    context: object = attrs.field(default=None, validator=_check_context)
    disabled: bool = attrs.field(default=False, validator=_bool())
    environment: Environment = attrs.field(
        default=Environment.DEVELOPMENT, converter=_to_environment
    )
    destinations: Mapping[str, DestinationConfig] | None = attrs.field(
        default=None, converter=_to_destinations
    )
    logger: ItlyLogger | None = attrs.field(default=None, validator=_check_logger)
    validation: ValidationOptions | None = attrs.field(
        default=None, validator=_optional_instance(ValidationOptions)
    )
    delivery: DeliveryOptions | None = attrs.field(
        default=None, validator=_optional_instance(DeliveryOptions)
    )

    @property
    def fail_on_error(self) -> bool:
        """Whether an invalid event raises, after the environment default is applied."""
        v = self.validation
        if v is not None and v.fail_on_error is not None:
            return v.fail_on_error
        return self.environment is Environment.DEVELOPMENT

    @property
    def validation_disabled(self) -> bool:
        return self.validation is not None and self.validation.disabled


Clock = Callable[[], float]
