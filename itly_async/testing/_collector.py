"""A local server that speaks the Amplitude and Segment ingestion APIs, for tests and demos.

The collector answers like the real services do (status codes, response bodies, size and
field limits from ``reference/amplitude-api.md`` and ``reference/segment-api.md``), records
every request it receives, and lets a test inject faults: an error status, a hang, a
dropped connection, a delay, or any rule computed from the request itself.

Two front ends share one implementation (:class:`_BaseCollector`):

* :class:`Collector` runs on the caller's event loop (``async with``);
* :class:`ThreadedCollector` runs on a private loop in a daemon thread (``with``), for
  blocking code, subprocess tests and benchmarks.

Everything the request handler touches runs on the server's loop; the recorded state is
guarded by one lock so that other threads may read it (every reader returns a copy).
"""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import math
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Literal, Self

import attrs
import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

# -- Paths -------------------------------------------------------------------------------

AMPLITUDE_HTTP_V2_PATH: Final = "/2/httpapi"
AMPLITUDE_BATCH_PATH: Final = "/batch"
SEGMENT_BATCH_PATH: Final = "/v1/batch"
SUMMARY_PATH: Final = "/_summary"
EVENTS_PATH: Final = "/_events"

# -- Limits ------------------------------------------------------------------------------
# Sizes are counted on the decompressed body, as the services do. Where the public
# documents leave a unit open ("1 MB"), the collector takes the stricter reading, so a
# client that sizes its batches loosely meets the 413 it has to handle in production.

# HTTP V2 takes a body "< 1 MB": 999,999 bytes is the largest accepted.
AMPLITUDE_HTTP_V2_MAX_BYTES: Final = 999_999
# The Batch API takes "<= 20 MB".
AMPLITUDE_BATCH_MAX_BYTES: Final = 20_000_000
# HTTP V2 takes "< 2000 events" per request, the Batch API "<= 2000".
AMPLITUDE_HTTP_V2_MAX_EVENTS: Final = 1999
AMPLITUDE_BATCH_MAX_EVENTS: Final = 2000
# Minimum length of user_id / device_id unless the request's options.min_id_length says.
AMPLITUDE_DEFAULT_MIN_ID_LENGTH: Final = 5
# Ids Amplitude refuses outright (compared case-insensitively).
AMPLITUDE_REJECTED_IDS: Final = frozenset(
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
# Segment: 500 KB per request, 32 KB per message (the official client's 32 << 10), 2500
# messages per request.
SEGMENT_MAX_BATCH_BYTES: Final = 500_000
SEGMENT_MAX_MESSAGE_BYTES: Final = 32 * 1024
SEGMENT_MAX_MESSAGES: Final = 2500
# The most the collector buffers of one body (raw or decompressed); larger bodies are
# answered as too large without being read further, so a runaway client cannot exhaust
# the test process's memory. Above every service limit, so it never changes an answer.
MAX_BODY_BYTES: Final = 32 * 1024 * 1024
# How long stopping the server waits for handlers still writing; hung and delayed
# handlers are released at once when the collector stops, so this only bounds a handler
# stuck in a write to a client that stopped reading.
_SHUTDOWN_TIMEOUT: Final = 2.0

_JSON: Final = "application/json"
_Kind = Literal["amplitude", "segment"]


# -- Public value types ------------------------------------------------------------------


def _check_status(_instance: object, _attribute: object, value: int | None) -> None:
    if value is not None and not 100 <= value <= 599:
        raise ValueError(f"status must be an HTTP status code (100-599), got {value!r}")


def _check_delay(_instance: object, _attribute: object, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"delay must be a finite number of seconds >= 0, got {value!r}")


@attrs.frozen
class Fault:
    """What the collector does to a request instead of (or before) answering normally.

    Args:
        status: answer with this status instead of the emulated one. ``body`` (a mapping,
            sent as JSON) defaults to ``{"code": status, "error": <reason phrase>}``.
        body: the JSON body to answer with ``status``.
        headers: extra response headers, e.g. ``{"Retry-After": "2"}``.
        delay: wait this many seconds before doing anything else.
        hang: never answer; the connection is closed when the collector stops.
        drop: close the connection without any response. ``hang`` and ``drop`` take
            precedence over ``status``.
        ingest: accept the request's valid events first, as if it had succeeded, then
            apply the fault. This is the "processed, but the answer was lost" case
            (``Fault(status=500, ingest=True)``, ``Fault(drop=True, ingest=True)``) that
            retries must survive without duplicates, because they resend the same ids.

    Example::

        collector.add_rule(lambda r: Fault(status=413) if r.event_count > 50 else None)
    """

    status: int | None = attrs.field(default=None, validator=_check_status)
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    delay: float = attrs.field(default=0.0, validator=_check_delay)
    hang: bool = False
    drop: bool = False
    ingest: bool = False

    def __attrs_post_init__(self) -> None:
        if self.hang and self.drop:
            raise ValueError("a fault cannot both hang and drop the connection")
        if self.body is not None and self.status is None:
            raise ValueError("a fault body needs a status to be sent with")


def _empty_headers() -> Mapping[str, str]:
    return CIMultiDictProxy(CIMultiDict())


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request as the collector received it, and what it did with it.

    ``index`` is the arrival position (``collector.requests[i].index == i``). ``payload``
    is the decoded JSON body (gunzipped first when ``Content-Encoding: gzip``), or None when
    the body was not JSON. ``raw_size`` is the body's size on the wire (compressed, if it
    was). ``events`` is the Amplitude ``events`` or Segment ``batch`` list as sent, ``[]``
    for anything else. ``status`` is the status answered: None while a request is still
    being handled, and for hung or dropped requests. ``fault`` is the fault applied, if
    any. ``received_at`` is ``time.monotonic()`` on arrival, for checking retry spacing.
    """

    index: int
    path: str
    method: str = "POST"
    headers: Mapping[str, str] = attrs.field(factory=_empty_headers)
    payload: Any = None
    raw_size: int = 0
    events: list[dict[str, Any]] = attrs.field(factory=list)
    status: int | None = None
    fault: Fault | None = None
    received_at: float = 0.0

    @property
    def event_count(self) -> int:
        """How many events (Amplitude) or messages (Segment) the request carried."""
        return len(self.events)


Rule = Callable[[RecordedRequest], Fault | None]


def chaos(seed: int, *, spike: float = 0.02, max_events: int = 100) -> Rule:
    """A rule for ``collector.add_rule``: the fault mix the reliability suite runs under.

    Per request, from a ``random.Random(seed)`` (so a run can be replayed): 413 above
    ``max_events`` events; else 20% 5xx, 10% 429 with ``Retry-After: 1``, 5% dropped
    connections, 2% latency spikes of ``spike`` seconds. Half of the 5xx and dropped
    connections happen *after* the events were accepted (``ingest=True``): a client must
    resend them, and the duplicates must share ids.
    """
    rng = random.Random(seed)

    def rule(request: RecordedRequest) -> Fault | None:
        if request.event_count > max_events:
            return Fault(status=413)
        roll = rng.random()
        if roll < 0.20:
            return Fault(status=rng.choice([500, 502, 503, 504]), ingest=rng.random() < 0.5)
        if roll < 0.30:
            return Fault(status=429, headers={"Retry-After": "1"})
        if roll < 0.35:
            return Fault(drop=True, ingest=rng.random() < 0.5)
        if roll < 0.37:
            return Fault(delay=spike)
        return None

    return rule


# -- Pure emulation: what the real services would answer ----------------------------------


@attrs.frozen
class _Verdict:
    status: int
    body: dict[str, Any]
    accepted: bool = False


@attrs.frozen
class _Endpoint:
    kind: _Kind
    max_bytes: int
    max_events: int


_ENDPOINTS: Final[Mapping[str, _Endpoint]] = {
    AMPLITUDE_HTTP_V2_PATH: _Endpoint(
        "amplitude", AMPLITUDE_HTTP_V2_MAX_BYTES, AMPLITUDE_HTTP_V2_MAX_EVENTS
    ),
    AMPLITUDE_BATCH_PATH: _Endpoint(
        "amplitude", AMPLITUDE_BATCH_MAX_BYTES, AMPLITUDE_BATCH_MAX_EVENTS
    ),
    SEGMENT_BATCH_PATH: _Endpoint("segment", SEGMENT_MAX_BATCH_BYTES, SEGMENT_MAX_MESSAGES),
}


def _amplitude_error(status: int, error: str, **fields: Any) -> _Verdict:
    return _Verdict(status, {"code": status, "error": error, **fields})


def _segment_error(status: int, code: str, message: str) -> _Verdict:
    return _Verdict(status, {"success": False, "code": code, "message": message})


def _error_for(kind: _Kind | None, status: int, message: str) -> _Verdict:
    if kind == "segment":
        return _segment_error(status, "invalid_request", message)
    return _amplitude_error(status, message)


def _too_large(kind: _Kind | None) -> _Verdict:
    if kind == "segment":
        return _segment_error(400, "request_too_large", "Request too large")
    return _amplitude_error(413, "Payload too large")


def amplitude_invalid_events(
    events: list[Any], min_id_length: int = AMPLITUDE_DEFAULT_MIN_ID_LENGTH
) -> dict[str, dict[str, list[int]]]:
    """Check Amplitude events; return ``{response key: {field: [event indexes]}}``.

    The keys are those of Amplitude's 400 body: ``events_with_invalid_fields``,
    ``events_with_missing_fields`` and ``events_with_invalid_id_lengths``; empty when every
    event is valid. An event with neither id is listed as missing ``user_id``; an element
    that is not an object is listed as an invalid ``event``.
    """
    invalid: dict[str, list[int]] = {}
    missing: dict[str, list[int]] = {}
    short: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        if type(event) is dict and _plainly_valid(event, min_id_length):
            continue
        if not isinstance(event, dict):
            invalid.setdefault("event", []).append(index)
            continue
        event_type = event.get("event_type")
        if event_type is None:
            missing.setdefault("event_type", []).append(index)
        elif not isinstance(event_type, str) or not event_type:
            invalid.setdefault("event_type", []).append(index)
        user_id = event.get("user_id")
        device_id = event.get("device_id")
        if user_id is None and device_id is None:
            missing.setdefault("user_id", []).append(index)
        for field, value in (("user_id", user_id), ("device_id", device_id)):
            if value is None:
                continue
            if not isinstance(value, str):
                invalid.setdefault(field, []).append(index)
            elif len(value) < min_id_length:
                short.setdefault(field, []).append(index)
            elif value.lower() in AMPLITUDE_REJECTED_IDS:
                invalid.setdefault(field, []).append(index)
        event_time = event.get("time")
        if event_time is not None and (
            not isinstance(event_time, int) or isinstance(event_time, bool)
        ):
            invalid.setdefault("time", []).append(index)
    found = {
        "events_with_invalid_fields": invalid,
        "events_with_missing_fields": missing,
        "events_with_invalid_id_lengths": short,
    }
    return {key: fields for key, fields in found.items() if fields}


_LONGEST_REJECTED_ID: Final = max(len(i) for i in AMPLITUDE_REJECTED_IDS)


def _plainly_valid(event: dict[str, Any], min_id_length: int) -> bool:
    """The common case in one expression: a conservative fast path (False = look closer).

    Exact ``type`` checks are enough for what ``orjson.loads`` produces, and they exclude
    ``bool`` from ``int``; anything unusual falls through to the detailed checks.
    """
    event_type = event.get("event_type")
    user_id = event.get("user_id")
    device_id = event.get("device_id")
    event_time = event.get("time")
    return (
        type(event_type) is str
        and event_type != ""
        and (event_time is None or type(event_time) is int)
        and (user_id is not None or device_id is not None)
        and (
            user_id is None
            or (
                type(user_id) is str
                and len(user_id) >= min_id_length
                and (
                    len(user_id) > _LONGEST_REJECTED_ID
                    or user_id.lower() not in AMPLITUDE_REJECTED_IDS
                )
            )
        )
        and (
            device_id is None
            or (
                type(device_id) is str
                and len(device_id) >= min_id_length
                and (
                    len(device_id) > _LONGEST_REJECTED_ID
                    or device_id.lower() not in AMPLITUDE_REJECTED_IDS
                )
            )
        )
    )


def _amplitude_verdict(
    payload: Any,
    *,
    body_size: int,
    endpoint: _Endpoint,
    api_keys: set[str] | None,
    now_ms: int,
) -> _Verdict:
    if body_size > endpoint.max_bytes:
        return _too_large("amplitude")
    if not isinstance(payload, dict):
        return _amplitude_error(400, "Invalid JSON request body")
    api_key = payload.get("api_key")
    if api_key is None or api_key == "":
        return _amplitude_error(400, "Request missing required field", missing_field="api_key")
    if not isinstance(api_key, str) or (api_keys is not None and api_key not in api_keys):
        # The real service echoes the key here; the collector never does, so a test log
        # cannot leak one.
        return _amplitude_error(400, "Invalid API key: <redacted>")
    events = payload.get("events")
    if not isinstance(events, list) or not events:
        return _amplitude_error(400, "Request missing required field", missing_field="events")
    if len(events) > endpoint.max_events:
        return _too_large("amplitude")
    min_id_length = AMPLITUDE_DEFAULT_MIN_ID_LENGTH
    options = payload.get("options")
    if options is not None:
        requested = options.get("min_id_length") if isinstance(options, dict) else None
        if requested is not None:
            if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
                return _amplitude_error(
                    400, "Invalid options: min_id_length must be a positive integer"
                )
            min_id_length = requested
    problems = amplitude_invalid_events(events, min_id_length)
    if problems:
        # Amplitude rejects the whole request: none of its events is ingested.
        return _amplitude_error(400, "Invalid field values on some events", **problems)
    body = {
        "code": 200,
        "events_ingested": len(events),
        "payload_size_bytes": body_size,
        "server_upload_time": now_ms,
    }
    return _Verdict(200, body, accepted=True)


def basic_auth_user(header: str | None) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` header, or None if there is none."""
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = binascii.a2b_base64(encoded.strip(), strict_mode=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None


def _segment_verdict(
    payload: Any,
    *,
    body_size: int,
    auth_user: str | None,
    write_keys: set[str] | None,
) -> _Verdict:
    if auth_user is None:
        return _segment_error(401, "unauthorized", "Missing write key (HTTP Basic auth user)")
    if write_keys is not None and auth_user not in write_keys:
        return _segment_error(401, "unauthorized", "Invalid write key")
    if body_size > SEGMENT_MAX_BATCH_BYTES:
        return _too_large("segment")
    if not isinstance(payload, dict):
        return _segment_error(400, "invalid_request", "Invalid JSON request body")
    batch = payload.get("batch")
    if not isinstance(batch, list):
        return _segment_error(400, "invalid_request", "Missing batch")
    if len(batch) > SEGMENT_MAX_MESSAGES:
        return _too_large("segment")
    if not all(isinstance(message, dict) for message in batch):
        return _segment_error(400, "invalid_request", "Every message must be an object")
    # No message can be over the limit when the whole body is not: skip serializing.
    if body_size > SEGMENT_MAX_MESSAGE_BYTES:
        for message in batch:
            if len(orjson.dumps(message)) > SEGMENT_MAX_MESSAGE_BYTES:
                return _segment_error(400, "message_too_large", "Message too large")
    return _Verdict(200, {"success": True}, accepted=True)


class _BodyTooLargeError(Exception):
    """The body is larger than the collector is willing to buffer."""


class _BodyEncodingError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _decode_body(raw: bytes, content_encoding: str) -> bytes:
    """Undo ``Content-Encoding``: gzip or identity; raise for anything else or bad data."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise _BodyEncodingError(415, f"Unsupported Content-Encoding: {encoding[:40]}")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise _BodyEncodingError(400, "Invalid gzip body") from None
    if len(body) > MAX_BODY_BYTES:
        raise _BodyTooLargeError
    if not inflater.eof:
        raise _BodyEncodingError(400, "Truncated gzip body")
    return body


def _dumps_response(status: int, body: Any, headers: Mapping[str, str] | None) -> web.Response:
    response = web.Response(status=status, body=orjson.dumps(body), content_type=_JSON)
    if headers:
        response.headers.update(headers)
    return response


# -- Fault rules -------------------------------------------------------------------------


class _CountedFault:
    """A rule answering the next ``times`` matching requests with one fault."""

    __slots__ = ("fault", "path", "remaining")

    def __init__(self, fault: Fault, times: int | None, path: str | None) -> None:
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 (or None for every request), got {times!r}")
        self.fault = fault
        self.remaining = times
        self.path = path

    @property
    def exhausted(self) -> bool:
        return self.remaining == 0

    def __call__(self, request: RecordedRequest) -> Fault | None:
        if self.remaining == 0 or (self.path is not None and request.path != self.path):
            return None
        if self.remaining is not None:
            self.remaining -= 1
        return self.fault


# -- The collector -----------------------------------------------------------------------


class _BaseCollector:
    """Recording, emulation and fault injection; the server runs on one event loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_keys: set[str] | None = None,
        write_keys: set[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        #: When set, Amplitude requests with another api_key are answered 400.
        self.api_keys: set[str] | None = set(api_keys) if api_keys is not None else None
        #: When set, Segment requests whose Basic-auth user is another key are answered 401.
        self.write_keys: set[str] | None = set(write_keys) if write_keys is not None else None
        # One lock guards everything below that another thread may read; the condition
        # shares it, so a waiting thread wakes on each accepted batch.
        self._lock = threading.Lock()
        self._accepted_changed = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._amplitude: list[dict[str, Any]] = []
        self._segment: list[dict[str, Any]] = []
        # Copy-on-write: add_rule swaps in a new tuple, the handler reads one reference.
        self._rules: tuple[Rule, ...] = ()
        # Loop-side state, created by _start_server on the server's loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._runner: web.ServerRunner | None = None
        self._waiters: list[tuple[_Kind, int, asyncio.Future[None]]] = []
        self._url: str | None = None
        self._state: Literal["new", "running", "closed"] = "new"

    # -- addresses

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._url is None:
            raise RuntimeError("the collector is not running: start it first")
        return self._url

    @property
    def amplitude_url(self) -> str:
        """The HTTP V2 endpoint, for ``AmplitudeOptions(server_url=...)``."""
        return self.url + AMPLITUDE_HTTP_V2_PATH

    @property
    def amplitude_batch_url(self) -> str:
        """The Batch API endpoint, for ``AmplitudeOptions(server_url=..., use_batch=True)``."""
        return self.url + AMPLITUDE_BATCH_PATH

    @property
    def segment_host(self) -> str:
        """The host a Segment client posts ``/v1/batch`` to, for ``SegmentOptions(host=...)``."""
        return self.url

    # -- what was received (copies, safe from any thread)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order, faulted ones included."""
        with self._lock:
            return list(self._requests)

    def amplitude_events(self) -> list[dict[str, Any]]:
        """Events of accepted Amplitude requests (both endpoints), in arrival order."""
        with self._lock:
            return list(self._amplitude)

    def segment_messages(self) -> list[dict[str, Any]]:
        """Messages of accepted Segment batches, in arrival order."""
        with self._lock:
            return list(self._segment)

    def summary(self) -> dict[str, Any]:
        """Counts, as served at ``GET /_summary``: requests, statuses, faults, events by name.

        Amplitude events are counted by ``event_type``; Segment messages by ``type`` and,
        for ``track`` messages, by ``event`` name. Status ``"none"`` counts requests not
        answered (hung, dropped, or still in progress).
        """
        with self._lock:
            requests = list(self._requests)
            amplitude = list(self._amplitude)
            segment = list(self._segment)
        statuses = Counter("none" if r.status is None else str(r.status) for r in requests)
        return {
            "requests": len(requests),
            "faults": sum(1 for r in requests if r.fault is not None),
            "statuses": dict(sorted(statuses.items())),
            "amplitude": {
                "events": len(amplitude),
                "by_event_type": _count(e.get("event_type") for e in amplitude),
            },
            "segment": {
                "messages": len(segment),
                "by_type": _count(m.get("type") for m in segment),
                "by_event": _count(m.get("event") for m in segment if m.get("type") == "track"),
            },
        }

    def accepted(self) -> dict[str, list[dict[str, Any]]]:
        """Accepted events and messages, as served at ``GET /_events``."""
        with self._lock:
            return {"amplitude": list(self._amplitude), "segment": list(self._segment)}

    # -- faults

    def add_rule(self, rule: Rule) -> None:
        """Consult ``rule`` for every request; the first rule returning a Fault decides.

        Rules run on the server's loop, in the order they were added (``fail``, ``hang``,
        ``drop`` and ``delay`` add rules too). A rule sees the request before it is
        answered: ``status`` and ``fault`` are still None. Example::

            collector.add_rule(lambda r: Fault(status=413) if r.event_count > 50 else None)
        """
        with self._lock:
            live = tuple(
                r for r in self._rules if not (isinstance(r, _CountedFault) and r.exhausted)
            )
            self._rules = (*live, rule)

    def fail(
        self,
        status: int,
        *,
        times: int | None = 1,
        path: str | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to ``path``, if given) with ``status``.

        ``times=None`` applies to every matching request. Nothing from those requests is
        accepted. Example: ``collector.fail(429, times=2, headers={"Retry-After": "1"})``.
        """
        self.add_rule(_CountedFault(Fault(status=status, body=body, headers=headers), times, path))

    def hang(self, times: int | None = 1, path: str | None = None) -> None:
        """Never answer the next ``times`` matching requests (until the collector stops)."""
        self.add_rule(_CountedFault(Fault(hang=True), times, path))

    def drop(self, times: int | None = 1, path: str | None = None) -> None:
        """Close the connection of the next ``times`` matching requests without answering."""
        self.add_rule(_CountedFault(Fault(drop=True), times, path))

    def delay(self, seconds: float, times: int | None = 1, path: str | None = None) -> None:
        """Answer the next ``times`` matching requests normally, ``seconds`` late."""
        self.add_rule(_CountedFault(Fault(delay=seconds), times, path))

    def _fault_for(self, request: RecordedRequest) -> Fault | None:
        for rule in self._rules:
            fault = rule(request)
            if fault is not None:
                return fault
        return None

    # -- waiting

    def _accepted_count(self, kind: _Kind) -> int:
        return len(self._amplitude) if kind == "amplitude" else len(self._segment)

    def _timeout_message(self, kind: _Kind, n: int, timeout: float) -> str:
        with self._lock:
            got = self._accepted_count(kind)
            statuses = Counter(
                "none" if r.status is None else str(r.status) for r in self._requests
            )
        noun = "Amplitude events" if kind == "amplitude" else "Segment messages"
        seen = ", ".join(f"{s}: {c}" for s, c in sorted(statuses.items())) or "no requests"
        return (
            f"timed out after {timeout} s waiting for {n} accepted {noun}: "
            f"{got} accepted so far (statuses of {sum(statuses.values())} requests: {seen})"
        )

    async def _wait_on_loop(self, kind: _Kind, n: int, timeout: float) -> list[dict[str, Any]]:
        """Wait on the server's loop; woken by each accepted batch, never by polling."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise RuntimeError("wait on the event loop the collector was started on")
        if self._accepted_count(kind) < n:
            waiter: asyncio.Future[None] = loop.create_future()
            entry = (kind, n, waiter)
            self._waiters.append(entry)
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                raise TimeoutError(self._timeout_message(kind, n, timeout)) from None
            finally:
                if entry in self._waiters:
                    self._waiters.remove(entry)
        return self.amplitude_events() if kind == "amplitude" else self.segment_messages()

    def _wait_blocking(self, kind: _Kind, n: int, timeout: float) -> list[dict[str, Any]]:
        """Wait in a thread other than the server's, on the condition each batch notifies."""
        with self._accepted_changed:
            done = self._accepted_changed.wait_for(lambda: self._accepted_count(kind) >= n, timeout)
        if not done:
            raise TimeoutError(self._timeout_message(kind, n, timeout))
        return self.amplitude_events() if kind == "amplitude" else self.segment_messages()

    def _wake_waiters(self) -> None:
        # Runs on the server's loop after each accepted batch.
        for kind, n, waiter in self._waiters:
            if not waiter.done() and self._accepted_count(kind) >= n:
                waiter.set_result(None)

    # -- lifecycle (on the server's loop)

    async def _start_server(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"a collector starts once; this one is {self._state}")
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = web.Server(self._handle, access_log=None, auto_decompress=False)
        runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"http://{host}:{port}"
        self._state = "running"

    async def _stop_server(self) -> None:
        if self._state != "running":
            self._state = "closed"
            return
        self._state = "closed"
        assert self._stopping is not None
        assert self._runner is not None
        self._stopping.set()  # releases hung and delayed handlers before the runner waits
        await self._runner.cleanup()
        for _kind, _n, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError("the collector stopped while being waited on"))

    # -- the request handler

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if request.method == "GET" and path in (SUMMARY_PATH, EVENTS_PATH):
            document = self.summary() if path == SUMMARY_PATH else self.accepted()
            return _dumps_response(200, document, None)

        received_at = time.monotonic()
        endpoint = _ENDPOINTS.get(path)
        kind = endpoint.kind if endpoint is not None else None
        raw_size, body, early = await self._read_body(request, kind)
        payload: Any = None
        if body:
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                payload = None
        events: Any = None
        if kind is not None and isinstance(payload, dict):
            events = payload.get("events" if kind == "amplitude" else "batch")
        with self._lock:
            record = RecordedRequest(
                index=len(self._requests),
                path=path,
                method=request.method,
                headers=request.headers,
                payload=payload,
                raw_size=raw_size,
                events=events if isinstance(events, list) else [],
                received_at=received_at,
            )
            self._requests.append(record)
        fault = self._fault_for(record)
        if fault is None:
            verdict = early or self._emulate(request, record, endpoint, len(body))
            self._complete(record, ingest=verdict.accepted, status=verdict.status)
            return _dumps_response(verdict.status, verdict.body, None)

        record = attrs.evolve(record, fault=fault)
        self._complete(record, ingest=False, status=None)
        if fault.delay and not await self._pause(fault.delay):
            return self._drop_connection(request)
        # Emulated after the delay, so that a rule or key change made meanwhile counts.
        verdict = early or self._emulate(request, record, endpoint, len(body))
        ingest = fault.ingest and verdict.accepted
        if fault.hang or fault.drop:
            self._complete(record, ingest=ingest, status=None)
            if fault.hang:
                assert self._stopping is not None
                await self._stopping.wait()
            return self._drop_connection(request)
        if fault.status is None:
            self._complete(record, ingest=verdict.accepted, status=verdict.status)
            return _dumps_response(verdict.status, verdict.body, None)
        self._complete(record, ingest=ingest, status=fault.status)
        reply = fault.body
        if reply is None:
            reply = {"code": fault.status, "error": _reason(fault.status)}
        return _dumps_response(fault.status, reply, fault.headers)

    async def _read_body(
        self, request: web.BaseRequest, kind: _Kind | None
    ) -> tuple[int, bytes, _Verdict | None]:
        """Read the whole body: (bytes on the wire, decoded body, an early answer or None)."""
        chunks: list[bytes] = []
        raw_size = 0
        while chunk := await request.content.readany():
            raw_size += len(chunk)
            if raw_size > MAX_BODY_BYTES:
                # Stop buffering; the connection is closed after the answer.
                request.protocol.force_close()
                return raw_size, b"", _too_large(kind)
            chunks.append(chunk)
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        encoding = request.headers.get("Content-Encoding", "")
        if not encoding:
            return raw_size, raw, None
        try:
            return raw_size, _decode_body(raw, encoding), None
        except _BodyTooLargeError:
            return raw_size, b"", _too_large(kind)
        except _BodyEncodingError as exc:
            return raw_size, b"", _error_for(kind, exc.status, exc.message)

    def _emulate(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        endpoint: _Endpoint | None,
        body_size: int,
    ) -> _Verdict:
        if endpoint is None:
            return _amplitude_error(404, "Not found")
        if request.method != "POST":
            return _error_for(endpoint.kind, 405, "Method not allowed")
        if endpoint.kind == "amplitude":
            return _amplitude_verdict(
                record.payload,
                body_size=body_size,
                endpoint=endpoint,
                api_keys=self.api_keys,
                now_ms=time.time_ns() // 1_000_000,
            )
        return _segment_verdict(
            record.payload,
            body_size=body_size,
            auth_user=basic_auth_user(request.headers.get("Authorization")),
            write_keys=self.write_keys,
        )

    def _complete(self, record: RecordedRequest, *, ingest: bool, status: int | None) -> None:
        """Store ``record`` with ``status``; with ``ingest``, accept its events too."""
        with self._lock:
            if ingest:
                if record.path == SEGMENT_BATCH_PATH:
                    self._segment.extend(record.events)
                else:
                    self._amplitude.extend(record.events)
                self._accepted_changed.notify_all()
            self._requests[record.index] = (
                record if status is None else attrs.evolve(record, status=status)
            )
        if ingest:
            self._wake_waiters()

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; False if the collector began stopping first."""
        assert self._stopping is not None
        if self._stopping.is_set():
            return False
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return True
        return False

    @staticmethod
    def _drop_connection(request: web.BaseRequest) -> web.StreamResponse:
        # Closing the transport first makes aiohttp's write of the returned response fail
        # with a ConnectionError, which it treats as a client that went away: nothing
        # reaches the client, which sees the connection end without a response.
        request.protocol.force_close()
        transport = request.transport
        if transport is not None:
            transport.close()
        return web.Response(status=500)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _count(names: Iterable[object]) -> dict[str, int]:
    counts = Counter(str(name) for name in names)
    return dict(sorted(counts.items()))


class Collector(_BaseCollector):
    """A local Amplitude- and Segment-compatible server on the running event loop.

    Binds ``host`` (127.0.0.1) on ``port`` (0: a free port) when entered. Point a
    destination at :attr:`amplitude_url`, :attr:`amplitude_batch_url` or
    :attr:`segment_host`; inspect :attr:`requests`, :meth:`amplitude_events` and
    :meth:`segment_messages`; inject faults with :meth:`fail`, :meth:`hang`, :meth:`drop`,
    :meth:`delay` or :meth:`add_rule`.

    Example::

        async with Collector() as collector:
            collector.fail(503, times=2)
            ...  # send events to collector.amplitude_url
            events = await collector.wait_for_amplitude(3)
            assert [e["event_type"] for e in events] == ["a", "b", "c"]
    """

    async def start(self) -> Self:
        """Bind and start serving; the address is then :attr:`url`."""
        await self._start_server()
        return self

    async def stop(self) -> None:
        """Stop serving; hung and delayed requests get their connections closed. Idempotent."""
        await self._stop_server()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_for_amplitude(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``n`` Amplitude events are accepted; return all accepted so far.

        Raises TimeoutError, with what was received, if that takes over ``timeout`` s.
        """
        return await self._wait_on_loop("amplitude", n, timeout)

    async def wait_for_segment(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``n`` Segment messages are accepted; return all accepted so far."""
        return await self._wait_on_loop("segment", n, timeout)


class ThreadedCollector(_BaseCollector):
    """The same collector, serving from its own event loop in a daemon thread.

    For blocking code, subprocess tests and benchmarks: nothing runs on the caller's loop,
    so a blocking client cannot stall the server. Every attribute of :class:`Collector` is
    here; reads return copies and are safe from any thread.

    Example::

        with ThreadedCollector() as collector:
            run_my_script(amplitude_url=collector.amplitude_url)
            collector.wait_for_amplitude_sync(1)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_keys: set[str] | None = None,
        write_keys: set[str] | None = None,
    ) -> None:
        super().__init__(host, port, api_keys=api_keys, write_keys=write_keys)
        self._thread: threading.Thread | None = None
        self._stop_requested: asyncio.Event | None = None

    def start(self, timeout: float = 10.0) -> Self:
        """Start the thread and wait (up to ``timeout`` s) until the server is listening."""
        if self._thread is not None:
            raise RuntimeError("a collector starts once")
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="itly-collector", daemon=True
        )
        self._thread.start()
        started.result(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread (up to ``timeout`` s). Idempotent."""
        thread = self._thread
        loop = self._loop
        stop_requested = self._stop_requested
        if thread is None or loop is None or stop_requested is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(stop_requested.set)
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"the collector thread did not stop within {timeout} s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        try:
            asyncio.run(self._serve(started))
        finally:
            if not started.done():
                started.set_exception(RuntimeError("the collector thread ended before serving"))

    async def _serve(self, started: concurrent.futures.Future[None]) -> None:
        try:
            await self._start_server()
        except OSError as exc:  # cannot bind: reported to start() in the caller's thread
            started.set_exception(exc)
            return
        self._stop_requested = asyncio.Event()
        started.set_result(None)
        try:
            await self._stop_requested.wait()
        finally:
            await self._stop_server()

    def wait_for_amplitude_sync(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until ``n`` Amplitude events are accepted; return all accepted so far.

        Raises TimeoutError, with what was received, if that takes over ``timeout`` s.
        """
        return self._wait_blocking("amplitude", n, timeout)

    def wait_for_segment_sync(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until ``n`` Segment messages are accepted; return all accepted so far."""
        return self._wait_blocking("segment", n, timeout)

    async def wait_for_amplitude(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Await, from any other event loop, ``n`` accepted Amplitude events."""
        return await self._wait_from_other_loop("amplitude", n, timeout)

    async def wait_for_segment(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Await, from any other event loop, ``n`` accepted Segment messages."""
        return await self._wait_from_other_loop("segment", n, timeout)

    async def _wait_from_other_loop(
        self, kind: _Kind, n: int, timeout: float
    ) -> list[dict[str, Any]]:
        if self._loop is None:
            raise RuntimeError("the collector is not running: start it first")
        future = asyncio.run_coroutine_threadsafe(self._wait_on_loop(kind, n, timeout), self._loop)
        return await asyncio.wrap_future(future)
