"""Configuration: immutable, validated, keyword-only values.

Every default lives in this module, with one sentence on its trade-off. A wrong value
raises ``ValueError`` at construction and the message names the field.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

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


class Environment(enum.Enum):
    """Where the SDK runs; it picks the plan's keys and the validation default."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


# --- small validators with readable messages ------------------------------------------


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _optional_non_empty_str(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        # the value itself is never echoed: it may be a secret
        raise ValueError(f"{attribute.name} must be a non-empty string or None")


def _optional_url(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{attribute.name} must be an http:// or https:// URL, got {value!r}")


def _to_environment(value: Environment | str) -> Environment:
    if isinstance(value, Environment):
        return value
    try:
        return Environment(str(value).lower())
    except ValueError:
        raise ValueError(
            f"environment must be Environment.DEVELOPMENT or Environment.PRODUCTION, got {value!r}"
        ) from None


# --- options ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ValidationOptions:
    """How events are checked against the plan.

    Args:
        disabled: skip validation entirely.
        fail_on_error: raise ``ValidationError`` in the caller. ``None`` lets the
            environment decide: True in development, False in production (log, count, send).
    """

    disabled: bool = False
    fail_on_error: bool | None = None


@attrs.frozen(kw_only=True)
class DeliveryOptions:
    """How events are queued, batched and retried. Every field is bounded; see the defaults.

    ``max_concurrent_requests`` is per HTTP destination: how many batches may wait for
    their answers at once (adapters always get one call at a time).

    Example::

        DeliveryOptions(flush_queue_size=500, flush_interval=1.0, overflow="drop_oldest")
    """

    flush_queue_size: int = attrs.field(default=DEFAULT_FLUSH_QUEUE_SIZE, validator=_positive)
    flush_interval: float = attrs.field(default=DEFAULT_FLUSH_INTERVAL, validator=_positive)
    max_queue_size: int = attrs.field(default=DEFAULT_MAX_QUEUE_SIZE, validator=_positive)
    overflow: OverflowPolicy = attrs.field(default="drop_newest")
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=_positive)
    max_retries: int = attrs.field(default=DEFAULT_MAX_RETRIES, validator=_non_negative)
    max_retry_duration: float = attrs.field(default=DEFAULT_MAX_RETRY_DURATION, validator=_positive)
    retry_base: float = attrs.field(default=DEFAULT_RETRY_BASE, validator=_non_negative)
    retry_cap: float = attrs.field(default=DEFAULT_RETRY_CAP, validator=_non_negative)
    max_server_wait: float = attrs.field(default=DEFAULT_MAX_SERVER_WAIT, validator=_non_negative)
    shutdown_timeout: float = attrs.field(default=DEFAULT_SHUTDOWN_TIMEOUT, validator=_positive)
    adapter_timeout: float = attrs.field(default=DEFAULT_ADAPTER_TIMEOUT, validator=_positive)
    gzip: bool = False
    max_concurrent_requests: int = attrs.field(default=2, validator=_positive)
    spool_path: str | None = None
    spool_mode: Literal["write_through", "write_behind"] = attrs.field(default="write_through")

    @spool_mode.validator
    def _check_spool_mode(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in ("write_through", "write_behind"):
            raise ValueError(f"spool_mode must be 'write_through' or 'write_behind', got {value!r}")

    @overflow.validator
    def _check_overflow(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in _OVERFLOW_POLICIES:
            raise ValueError(
                f"overflow must be one of {', '.join(_OVERFLOW_POLICIES)}, got {value!r}"
            )

    def __attrs_post_init__(self) -> None:
        if self.flush_queue_size > self.max_queue_size:
            raise ValueError(
                f"flush_queue_size ({self.flush_queue_size}) must not exceed "
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
    server_zone: Literal["US", "EU"] = attrs.field(default="US")
    use_batch: bool = False
    server_url: str | None = attrs.field(default=None, validator=_optional_url)
    min_id_length: int | None = attrs.field(default=None)
    group_type: str = "group"

    @server_zone.validator
    def _check_zone(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in ("US", "EU"):
            raise ValueError(f"server_zone must be 'US' or 'EU', got {value!r}")

    @min_id_length.validator
    def _check_min_id(self, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or value < 1):
            raise ValueError(f"min_id_length must be a positive integer or None, got {value!r}")


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


@attrs.frozen(kw_only=True)
class CustomOptions:
    """A custom destination: your adapter receives every event on the flusher's loop.

    An adapter that raises or hangs is isolated: the call is logged and counted, the
    other destinations are unaffected.
    """

    adapter: object = attrs.field()

    @adapter.validator
    def _check_adapter(self, attribute: attrs.Attribute[Any], value: object) -> None:
        methods = ("load", "track", "identify", "group", "alias", "flush", "shutdown")
        if value is None or not any(callable(getattr(value, m, None)) for m in methods):
            raise ValueError(
                "adapter must be an object with at least one of the methods " + ", ".join(methods)
            )


DestinationConfig = AmplitudeOptions | SegmentOptions | CustomOptions


@attrs.frozen(kw_only=True)
class EventOptions:
    """Per-call overrides, passed as ``event_options=`` to any tracking function.

    ``time`` is a timezone-aware ``datetime`` or milliseconds since the epoch; ``extra``
    holds further Amplitude fields (``platform``, ``country``...) and is merged as is.
    """

    device_id: str | None = None
    time: _dt.datetime | int | None = attrs.field(default=None)
    insert_id: str | None = None
    session_id: int | None = None
    app_version: str | None = None
    platform: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    country: str | None = None
    language: str | None = None
    ip: str | None = None
    user_properties: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] | None = None

    @time.validator
    def _check_time(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, _dt.datetime) and value.tzinfo is None:
            raise ValueError("time must be timezone-aware (naive datetimes are ambiguous)")
        if isinstance(value, bool) or (isinstance(value, int) and value < 0):
            raise ValueError(f"time must be a datetime or milliseconds >= 0, got {value!r}")


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
            "destinations must be a DestinationsOptions or a mapping of destination name to "
            f"AmplitudeOptions / SegmentOptions / CustomOptions, got {type(value).__name__}"
        )
    out: dict[str, DestinationConfig] = {}
    for name, cfg in items.items():
        if cfg is None:
            continue
        if not isinstance(cfg, AmplitudeOptions | SegmentOptions | CustomOptions):
            raise ValueError(  # noqa: TRY004 - option errors are ValueErrors by contract
                f"destinations[{name!r}] must be AmplitudeOptions, SegmentOptions or "
                f"CustomOptions, got {type(cfg).__name__}"
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
    raise ValueError(f"context must be a Context or a mapping, got {type(context).__name__}")


def _check_context(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    context_to_dict(value)


def _check_logger(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    missing = [
        m for m in ("debug", "info", "warn", "error") if not callable(getattr(value, m, None))
    ]
    if missing:
        raise ValueError(f"logger must implement ItlyLogger; missing: {', '.join(missing)}")


@attrs.frozen(kw_only=True)
class Options:
    """Everything ``load()`` needs. Mirrors the legacy Itly SDK's options.

    Example::

        Options(context={"version": "1.0"}, environment=Environment.PRODUCTION,
                destinations={"amplitude": AmplitudeOptions(api_key="...")})
    """

    context: object = attrs.field(default=None, validator=_check_context)
    disabled: bool = False
    environment: Environment = attrs.field(
        default=Environment.DEVELOPMENT, converter=_to_environment
    )
    destinations: Mapping[str, DestinationConfig] | None = attrs.field(
        default=None, converter=_to_destinations
    )
    logger: ItlyLogger | None = attrs.field(default=None, validator=_check_logger)
    validation: ValidationOptions | None = None
    delivery: DeliveryOptions | None = None

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
