"""Amplitude's wire format and response rules (HTTP V2 and Batch Event Upload).

Pure: encoding, the request envelope and the reading of responses. The lane does the
I/O. Facts come from ``reference/amplitude-api.md``; each decision the reference leaves
open is written down in the ``Amplitude`` docstring.
"""

from __future__ import annotations

import decimal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

import attrs
import orjson
from orjson import Fragment

from ._config import DEFAULT_MAX_SERVER_WAIT, AmplitudeOptions
from ._destination import DELIVERED, Action, ResponseInfo, UnsupportedEvent, Verdict
from ._event import ALIAS, GROUP, IDENTIFY, NO_PROPS, TRACK, Event
from ._exceptions import ConfigurationError
from ._retry import (
    is_server_error,
    json_object,
    server_wait,
    short_text,
    split_or_reject,
    unexpected_status,
)

HTTP_V2_URLS: Final = {
    "US": "https://api2.amplitude.com/2/httpapi",
    "EU": "https://api.eu.amplitude.com/2/httpapi",
}
BATCH_URLS: Final = {
    "US": "https://api2.amplitude.com/batch",
    "EU": "https://api.eu.amplitude.com/batch",
}

#: Events per HTTP V2 request. The API takes fewer than 2000 wire events and a ``group``
#: call with traits is two wire events, so 999 calls stay under the limit in any mix.
HTTP_V2_MAX_EVENTS: Final = 999
#: Events per Batch API request: at most 2000 wire events, so 1000 calls of any kind.
BATCH_MAX_EVENTS: Final = 1000
#: Body bytes per HTTP V2 request: the limit is "< 1 MB"; 1 MB read as 10**6 and a 1 %
#: margin in case the server counts differently, still large enough for ~1000 events.
HTTP_V2_MAX_BYTES: Final = 990_000
#: Body bytes per Batch API request: "<= 20 MB", with the same 1 % margin.
BATCH_MAX_BYTES: Final = 19_800_000
#: Seconds a throttled user or device waits when the 429 carries no ``Retry-After``
#: (Amplitude asks for a 30 s pause of that id).
THROTTLE_WAIT: Final = 30.0
#: Amplitude's minimum ``user_id`` / ``device_id`` length unless ``min_id_length`` says
#: otherwise.
DEFAULT_MIN_ID_LENGTH: Final = 5
#: Ids Amplitude refuses with a 400 (compared lower-cased).
REJECTED_IDS: Final = frozenset(
    {
        "anonymous",
        "null",
        "none",
        "undefined",
        "unknown",
        "0",
        "-1",
        "00000000-0000-0000-0000-000000000000",
    }
)
#: Suffix of the ``insert_id`` of a group call's second wire event (``$groupidentify``):
#: a distinct id, or Amplitude would de-duplicate it against the ``$identify``; a fixed
#: suffix, so a retry resends the same id.
GROUP_IDENTIFY_ID_SUFFIX: Final = ":g"

ALIAS_UNSUPPORTED: Final = "alias is not supported by Amplitude HTTP V2"

#: ``EventOptions`` fields copied to the wire event under the same name when not None.
_OPTION_FIELDS: Final = (
    "session_id",
    "app_version",
    "platform",
    "os_name",
    "os_version",
    "country",
    "language",
    "ip",
)
#: 400 body keys listing events as ``{field: [indexes]}``, and how a reason names them.
_FIELD_ERRORS: Final = (
    ("events_with_invalid_fields", "invalid field"),
    ("events_with_missing_fields", "missing field"),
    ("events_with_invalid_id_lengths", "invalid id length"),
)
_JSON_HEADERS: Final[Mapping[str, str]] = MappingProxyType({"Content-Type": "application/json"})


def json_default(value: object) -> Any:
    """orjson ``default=`` hook: what orjson does not serialize natively.

    orjson already writes ``datetime``, ``date``, ``time``, ``UUID``, ``Enum`` and
    dataclasses; ``Decimal`` becomes a float (analytics values, not ledger amounts).
    Anything else raises ``TypeError``, which the caller reports as unserializable.
    """
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """orjson with the shared ``default`` hook."""
    return orjson.dumps(value, default=json_default)


@attrs.frozen(kw_only=True)
class PlanMeta:
    """Tracking-plan metadata sent as Amplitude's ``plan`` field (empty parts omitted).

    Example::

        PlanMeta(branch="main", source="backend", version="1.0.0", version_id="a1b2")
    """

    branch: str | None = None
    source: str | None = None
    version: str | None = None
    version_id: str | None = None

    def to_wire(self) -> dict[str, str]:
        """The ``plan`` object: ``branch``, ``source``, ``version``, ``versionId``."""
        parts = {
            "branch": self.branch,
            "source": self.source,
            "version": self.version,
            "versionId": self.version_id,
        }
        return {k: v for k, v in parts.items() if v}


class Amplitude:
    """The Amplitude destination's wire format and response rules (an ``HttpDestination``).

    Decisions the API reference leaves open:

    - **group** is two wire events when the call has traits, as Amplitude documents it:
      ``$identify`` with ``groups`` (membership) and ``$groupidentify`` with ``groups``
      and ``group_properties: {"$set": traits}``. ``encode`` returns both joined by a
      comma (``b'{...},{...}'``), which drops straight into the ``events`` array; the
      second gets ``insert_id + ":g"`` so Amplitude does not de-duplicate it away.
      ``max_events`` is halved accordingly (see ``HTTP_V2_MAX_EVENTS``), and ``classify``
      maps the server's wire indexes back to calls (``wire_count``). Without traits a
      group call is only the membership ``$identify``.
    - **identify** is ``$identify`` with ``user_properties: {"$set": traits}``;
      ``EventOptions.user_properties`` merge in (``$``-operations kept, plain keys under
      ``$set``, the call's traits win). With nothing to set the event goes without
      ``user_properties`` and the server decides.
    - **alias** has no HTTP V2 equivalent: ``encode`` raises ``UnsupportedEvent`` and
      ``precheck`` returns the same reason, so the lane rejects it up front, counted.
    - **400 that lists no usable event** (JSON, no index in range, not a key problem):
      the batch is split in halves, so the bad events are isolated by bisection and the
      good ones still go through; a lone event is rejected with ``"HTTP 400: <error>"``.
      A 400 whose body is not JSON came from something other than Amplitude (a proxy):
      retried with backoff, as the reference asks for non-JSON bodies.
    - **2xx** is delivered whatever the body says: the status is the contract, a local
      collector or proxy may answer 200 with no JSON, and a resend could not help.
    - ``EventOptions.extra`` fills fields the named options do not set; it cannot
      override ``event_type``, ids, ``time`` or ``insert_id``.
    - Strings over 1024 characters are sent as they are (the reference does not say
      whether Amplitude truncates or rejects them).

    The API key lives only in the precomputed body prefix: it is not in ``repr()``, and
    any server text quoted in a reason has it masked.
    """

    __slots__ = (
        "_clock",
        "_group_type",
        "_key",
        "_library",
        "_max_wait",
        "_min_id_length",
        "_plan",
        "_prefix",
        "_suffix",
        "_url",
        "max_bytes",
        "max_events",
        "name",
    )

    def __init__(
        self,
        name: str,
        api_key: str,
        options: AmplitudeOptions,
        *,
        plan: PlanMeta | None = None,
        library: str = "itly-async/0.1.0",
        clock: Callable[[], float] = time.time,
        max_server_wait: float = DEFAULT_MAX_SERVER_WAIT,
    ) -> None:
        """Prepare the URL, limits and the body's key-carrying prefix once.

        Args:
            name: the plan's destination key, for logs and reports.
            api_key: the project's API key (never logged).
            options: zone, batch API, URL override, ``min_id_length``, ``group_type``.
            plan: tracking-plan metadata for the ``plan`` field.
            library: the ``library`` field.
            clock: epoch seconds, to read an HTTP-date ``Retry-After``.
            max_server_wait: longest server-directed wait honoured (longer ones clipped).
        """
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError(f"destination {name!r}: the Amplitude api_key is empty")
        self.name = name
        if options.use_batch:
            self._url = options.server_url or BATCH_URLS[options.server_zone]
            self.max_events = BATCH_MAX_EVENTS
            self.max_bytes = BATCH_MAX_BYTES
        else:
            self._url = options.server_url or HTTP_V2_URLS[options.server_zone]
            self.max_events = HTTP_V2_MAX_EVENTS
            self.max_bytes = HTTP_V2_MAX_BYTES
        self._key = api_key
        self._group_type = options.group_type
        self._min_id_length = options.min_id_length or DEFAULT_MIN_ID_LENGTH
        self._library = library
        self._plan = (plan.to_wire() or None) if plan is not None else None
        self._clock = clock
        self._max_wait = max_server_wait
        self._prefix = b'{"api_key":' + orjson.dumps(api_key) + b',"events":['
        suffix = b"]"
        if options.min_id_length is not None:
            suffix += b',"options":' + orjson.dumps({"min_id_length": options.min_id_length})
        self._suffix = suffix + b"}"

    def __repr__(self) -> str:
        return f"Amplitude(name={self.name!r}, url={self._url!r})"

    # --- HttpDestination ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    def headers(self) -> Mapping[str, str]:
        """``Content-Type: application/json``; the key travels in the body."""
        return _JSON_HEADERS

    def encode(self, event: Event) -> bytes:
        """One call as wire JSON; a group call with traits is two objects (see class doc).

        Raises:
            UnsupportedEvent: alias, or an unknown kind.
            TypeError: a value that cannot be serialized (``orjson.JSONEncodeError``).
        """
        kind = event.kind
        opts = event.options
        user_props = opts.user_properties if opts is not None else None
        props = event.props
        if kind == TRACK:
            wire = self._base(event, event.name, event.insert_id)
            if props != NO_PROPS:
                wire["event_properties"] = Fragment(props)
            if user_props:
                wire["user_properties"] = user_props
            return dumps(wire)
        if kind == IDENTIFY:
            wire = self._base(event, "$identify", event.insert_id)
            if user_props:
                ops = identify_operations(event.properties, user_props)
            else:
                ops = {"$set": Fragment(props)} if props != NO_PROPS else {}
            if ops:
                wire["user_properties"] = ops
            return dumps(wire)
        if kind == GROUP:
            groups = {self._group_type: event.group_id}
            wire = self._base(event, "$identify", event.insert_id)
            wire["groups"] = groups
            if user_props:
                wire["user_properties"] = identify_operations({}, user_props)
            if props == NO_PROPS:
                return dumps(wire)
            group_wire = self._base(
                event, "$groupidentify", event.insert_id + GROUP_IDENTIFY_ID_SUFFIX
            )
            group_wire["groups"] = groups
            group_wire["group_properties"] = {"$set": Fragment(props)}
            return dumps(wire) + b"," + dumps(group_wire)
        if kind == ALIAS:
            raise UnsupportedEvent(ALIAS_UNSUPPORTED)
        raise UnsupportedEvent(f"unknown event kind {kind!r}")

    def envelope_size(self) -> int:
        return len(self._prefix) + len(self._suffix)

    def body(self, encoded: Sequence[bytes]) -> bytes:
        """``{"api_key": ..., "events": [...], "options": {...}}`` by concatenation."""
        return b"".join((self._prefix, b",".join(encoded), self._suffix))

    def classify(self, response: ResponseInfo, events: Sequence[Event]) -> Verdict:
        """The reference's response table; never raises on a malformed body."""
        status = response.status
        n = len(events)
        if status is None:
            return Verdict(Action.RETRY, response.error or "network error")
        if 200 <= status <= 299:
            return DELIVERED
        if status == 400:
            return self._bad_request(response, events)
        if status in (401, 403, 404):
            return Verdict(Action.CONFIG, f"HTTP {status}: check the API key, server zone and URL")
        if status == 413:
            return split_or_reject(n, "HTTP 413: payload too large")
        if status == 429:
            return self._throttled(response, events)
        wait = server_wait(response.headers, now=self._clock(), cap=self._max_wait)
        if status == 408 or is_server_error(status):
            return Verdict(Action.RETRY, f"HTTP {status}", retry_after=wait)
        return unexpected_status(status, n, retry_after=wait)

    # --- beyond the protocol --------------------------------------------------------------

    def precheck(self, event: Event, encoded: bytes) -> str | None:
        """Why Amplitude would surely refuse this event (a reason), or None to send it.

        The lane calls it after ``encode`` and rejects the event up front, so one bad event
        never costs a whole batch a 400.
        """
        kind = event.kind
        if kind == ALIAS:
            return ALIAS_UNSUPPORTED
        if kind == TRACK and not event.name:
            return "missing event_type (empty event name)"
        if kind == GROUP and not event.group_id:
            return "group call without a group_id"
        user_id = event.user_id or None
        device_id = (event.options.device_id if event.options is not None else None) or None
        if user_id is None and device_id is None:
            return "missing user_id and device_id (Amplitude needs one)"
        for field, value in (("user_id", user_id), ("device_id", device_id)):
            if value is None:
                continue
            if value.strip().lower() in REJECTED_IDS:
                return f"{field} {value!r} is refused by Amplitude"
            if len(value) < self._min_id_length:
                return f"{field} shorter than {self._min_id_length} characters"
        size = len(encoded) + self.envelope_size()
        if size > self.max_bytes:
            return f"event too large: {size} bytes in a request, limit {self.max_bytes}"
        return None

    @staticmethod
    def wire_count(event: Event) -> int:
        """How many wire events ``encode`` makes of this call (0 for alias, 2 for a group
        call with traits, else 1); the server's indexes count wire events."""
        if event.kind == ALIAS:
            return 0
        if event.kind == GROUP and event.props != NO_PROPS:
            return 2
        return 1

    # --- internals ------------------------------------------------------------------------

    def _base(self, event: Event, event_type: str, insert_id: str) -> dict[str, Any]:
        wire: dict[str, Any] = {"event_type": event_type}
        if event.user_id:
            wire["user_id"] = event.user_id
        opts = event.options
        if opts is not None and opts.device_id:
            wire["device_id"] = opts.device_id
        wire["time"] = event.time_ms
        wire["insert_id"] = insert_id
        if opts is not None:
            for field in _OPTION_FIELDS:
                value = getattr(opts, field)
                if value is not None:
                    wire[field] = value
            if opts.extra:
                for key, value in opts.extra.items():
                    wire.setdefault(key, value)
        wire["library"] = self._library
        if self._plan is not None:
            wire["plan"] = self._plan
        return wire

    def _quote(self, value: object, limit: int = 200) -> str:
        """Server text for a reason: the key masked first, then trimmed to ``limit``."""
        return short_text(str(value).replace(self._key, "***"), limit)

    def _wire_map(self, events: Sequence[Event]) -> list[int]:
        """Wire index -> call index."""
        out: list[int] = []
        for i, event in enumerate(events):
            out.extend([i] * self.wire_count(event))
        return out

    def _bad_request(self, response: ResponseInfo, events: Sequence[Event]) -> Verdict:
        body = json_object(response.body)
        if body is None:
            wait = server_wait(response.headers, now=self._clock(), cap=self._max_wait)
            return Verdict(Action.RETRY, "HTTP 400 with a non-JSON body", retry_after=wait)
        error = self._quote(body.get("error") or "")
        if "api key" in error.lower():
            # the server's text may quote the key itself: say what happened, not what it said
            return Verdict(Action.CONFIG, "HTTP 400: invalid API key")
        missing = body.get("missing_field")
        if missing:
            field = self._quote(missing)
            return Verdict(Action.CONFIG, f"HTTP 400: request is missing field {field}")
        wire_map = self._wire_map(events)
        reasons: dict[int, dict[str, None]] = {}  # ordered set of reasons per call
        for key, label in _FIELD_ERRORS:
            detail = body.get(key)
            if not isinstance(detail, Mapping):
                continue
            for field, indexes in detail.items():
                reason = f"{label}: {self._quote(field, 60)}"
                for wire_index in _valid_indexes(indexes, len(wire_map)):
                    reasons.setdefault(wire_map[wire_index], {})[reason] = None
        for wire_index in _valid_indexes(body.get("silenced_events"), len(wire_map)):
            reasons.setdefault(wire_map[wire_index], {})["silenced device_id"] = None
        if not reasons:
            return split_or_reject(len(events), f"HTTP 400: {error}" if error else "HTTP 400")
        rejected = {i: "; ".join(r) for i, r in reasons.items()}
        resend = frozenset(range(len(events))).difference(rejected)
        return Verdict(
            Action.DONE,
            f"HTTP 400: {len(rejected)} of {len(events)} events rejected",
            rejected=rejected,
            resend=resend,
        )

    def _throttled(self, response: ResponseInfo, events: Sequence[Event]) -> Verdict:
        wait = server_wait(
            response.headers, now=self._clock(), cap=self._max_wait, default=THROTTLE_WAIT
        )
        body = json_object(response.body)
        if body is None:
            return Verdict(Action.RETRY, "HTTP 429: throttled", retry_after=wait)
        quota_users = _id_set(body.get("exceeded_daily_quota_users"))
        quota_devices = _id_set(body.get("exceeded_daily_quota_devices"))
        slow_users = _id_set(body.get("throttled_users"))
        slow_devices = _id_set(body.get("throttled_devices"))
        wire_map = self._wire_map(events)
        slow_events = {
            wire_map[i] for i in _valid_indexes(body.get("throttled_events"), len(wire_map))
        }
        rejected: dict[int, str] = {}
        delayed: dict[int, float] = {}
        for i, event in enumerate(events):
            user_id = event.user_id
            device_id = event.options.device_id if event.options is not None else None
            if user_id in quota_users or device_id in quota_devices:
                rejected[i] = "daily quota exceeded"
            elif i in slow_events or user_id in slow_users or device_id in slow_devices:
                delayed[i] = wait if wait is not None else THROTTLE_WAIT
        if not rejected and not delayed:
            # nothing in the batch matches what the server named: resending at once could
            # loop, so the whole batch backs off
            return Verdict(Action.RETRY, "HTTP 429: throttled", retry_after=wait)
        resend = frozenset(range(len(events))).difference(rejected, delayed)
        return Verdict(
            Action.DONE,
            f"HTTP 429: {len(delayed)} throttled, {len(rejected)} over daily quota",
            rejected=rejected,
            resend=resend,
            delayed=delayed,
        )


def identify_operations(
    traits: Mapping[str, Any], user_properties: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``user_properties`` for an ``$identify``: operations, plain values under ``$set``.

    Amplitude does not accept operations and plain properties mixed in one object, so
    plain keys of ``user_properties`` move under ``$set``; ``traits`` win over them.
    """
    ops: dict[str, Any] = {}
    to_set: dict[str, Any] = {}
    if user_properties:
        for key, value in user_properties.items():
            if key == "$set" and isinstance(value, Mapping):
                to_set.update(value)
            elif key.startswith("$"):
                ops[key] = value
            else:
                to_set[key] = value
    to_set.update(traits)
    if to_set:
        ops["$set"] = to_set
    return ops


def _valid_indexes(value: object, n: int) -> Iterator[int]:
    """The ints of a server-sent list that index a batch of ``n``; anything else ignored."""
    if not isinstance(value, list):
        return
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < n:
            yield item


def _id_set(value: object) -> frozenset[str]:
    """Ids named by a 429 body: the keys of ``{id: eps}`` or the items of a list."""
    items: Iterable[object]
    if isinstance(value, Mapping):
        items = value.keys()
    elif isinstance(value, list):
        items = value
    else:
        return frozenset()
    return frozenset(item for item in items if isinstance(item, str))
