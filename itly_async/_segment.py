"""Segment's wire format and response rules (``POST /v1/batch``).

Pure: encoding, the request envelope and the reading of responses; the lane does the
I/O. Facts come from ``reference/segment-api.md``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from orjson import Fragment

from ._amplitude import dumps
from ._config import DEFAULT_MAX_SERVER_WAIT, SegmentOptions
from ._destination import DELIVERED, Action, ResponseInfo, UnsupportedEvent, Verdict
from ._event import ALIAS, GROUP, IDENTIFY, TRACK, Event
from ._exceptions import ConfigurationError
from ._retry import (
    is_server_error,
    json_object,
    reject_all,
    server_wait,
    short_text,
    split_or_reject,
    unexpected_status,
)

DEFAULT_HOST: Final = "https://api.segment.io"
BATCH_PATH: Final = "/v1/batch"
#: Messages per request: Segment's documented batch limit.
MAX_EVENTS: Final = 2500
#: Body bytes per request: the limit is 500 KB; 2 % under it (the official client uses
#: 475 KB) in case the server counts KB as 1000 bytes and adds its own overhead.
MAX_BYTES: Final = 490_000
#: Bytes of one encoded message: Segment's 32 KB, read as 32 * 1024 like the official
#: client. A larger message is rejected before it is batched.
MAX_MESSAGE_BYTES: Final = 32 * 1024

_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
#: A sample ``sentAt`` to measure the envelope; the format is fixed-width.
_SAMPLE_STAMP: Final = "2000-01-01T00:00:00.000Z"
_BODY_HEAD: Final = b'{"batch":['
_BODY_TAIL_HEAD: Final = b'],"sentAt":"'
_BODY_TAIL_END: Final = b'"}'


def iso_timestamp(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC with millisecond precision and ``Z``.

    Example::

        >>> iso_timestamp(1_700_000_000_123)
        '2023-11-14T22:13:20.123Z'
    """
    seconds, millis = divmod(ms, 1000)
    return f"{_second_stamp(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=256)
def _second_stamp(seconds: int) -> str:
    # events come in bursts within the same second: formatting a datetime is the
    # costliest part of encoding a message, so it is done once per second
    return f"{_EPOCH + _dt.timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S}"


class Segment:
    """The Segment destination's wire format and response rules (an ``HttpDestination``).

    Every call maps to one message: ``track`` (``event``, ``properties``), ``identify``
    (``traits``), ``group`` (``groupId``, ``traits``), ``alias`` (``previousId``).
    ``userId`` is the call's user; without one, ``EventOptions.device_id`` becomes
    ``anonymousId``. ``messageId`` is the event's ``insert_id`` (Segment de-duplicates
    on it, so retries are idempotent). ``context`` carries ``library`` and, when given,
    ``ip``, ``locale`` (``language``), ``app.version``, ``os`` and ``traits``
    (``EventOptions.user_properties``).

    The write key lives only in the ``Authorization`` header: it is not in ``repr()``,
    and server text quoted in a reason has it masked.
    """

    __slots__ = (
        "_clock",
        "_headers",
        "_library",
        "_max_wait",
        "_secrets",
        "_url",
        "max_bytes",
        "max_events",
        "name",
    )

    def __init__(
        self,
        name: str,
        write_key: str,
        options: SegmentOptions,
        *,
        library: str = "itly-async/0.1.0",
        clock: Callable[[], float] = time.time,
        max_server_wait: float = DEFAULT_MAX_SERVER_WAIT,
    ) -> None:
        """Prepare the URL, limits and headers once.

        Args:
            name: the plan's destination key, for logs and reports.
            write_key: the source's write key (never logged).
            options: ``host`` overrides ``https://api.segment.io``.
            library: ``"name/version"`` for ``context.library``.
            clock: epoch seconds, for ``sentAt`` and an HTTP-date ``Retry-After``.
            max_server_wait: longest server-directed wait honoured (longer ones clipped).
        """
        if not isinstance(write_key, str) or not write_key.strip():
            raise ConfigurationError(f"destination {name!r}: the Segment write_key is empty")
        self.name = name
        self.max_events = MAX_EVENTS
        self.max_bytes = MAX_BYTES
        self._url = (options.host or DEFAULT_HOST).rstrip("/") + BATCH_PATH
        token = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
        self._headers: Mapping[str, str] = MappingProxyType(
            {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        )
        self._secrets = (write_key, token)
        lib_name, _, lib_version = library.partition("/")
        self._library = (
            {"name": lib_name, "version": lib_version} if lib_version else {"name": lib_name}
        )
        self._clock = clock
        self._max_wait = max_server_wait

    def __repr__(self) -> str:
        return f"Segment(name={self.name!r}, url={self._url!r})"

    # --- HttpDestination ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    def headers(self) -> Mapping[str, str]:
        """Basic authentication with the write key, and ``Content-Type``."""
        return self._headers

    def encode(self, event: Event) -> bytes:
        """One call as one Segment message.

        Raises:
            UnsupportedEvent: an unknown kind.
            TypeError: a value that cannot be serialized (``orjson.JSONEncodeError``).
        """
        kind = event.kind
        message: dict[str, Any] = {"type": kind}
        opts = event.options
        if event.user_id:
            message["userId"] = event.user_id
        elif opts is not None and opts.device_id:
            message["anonymousId"] = opts.device_id
        if kind == TRACK:
            message["event"] = event.name
            message["properties"] = Fragment(event.props)
        elif kind == IDENTIFY:
            message["traits"] = Fragment(event.props)
        elif kind == GROUP:
            message["groupId"] = event.group_id
            message["traits"] = Fragment(event.props)
        elif kind == ALIAS:
            message["previousId"] = event.previous_id
        else:
            raise UnsupportedEvent(f"unknown event kind {kind!r}")
        message["timestamp"] = iso_timestamp(event.time_ms)
        message["messageId"] = event.insert_id
        context: dict[str, Any] = {"library": self._library}
        if opts is not None:
            if opts.ip is not None:
                context["ip"] = opts.ip
            if opts.language is not None:
                context["locale"] = opts.language
            if opts.app_version is not None:
                context["app"] = {"version": opts.app_version}
            if opts.os_name is not None or opts.os_version is not None:
                context["os"] = {
                    k: v
                    for k, v in (("name", opts.os_name), ("version", opts.os_version))
                    if v is not None
                }
            if opts.user_properties:
                context["traits"] = opts.user_properties
        message["context"] = context
        return dumps(message)

    def envelope_size(self) -> int:
        return (
            len(_BODY_HEAD)
            + len(_BODY_TAIL_HEAD)
            + len(_SAMPLE_STAMP.encode())
            + len(_BODY_TAIL_END)
        )

    def body(self, encoded: Sequence[bytes]) -> bytes:
        """``{"batch": [...], "sentAt": "<now>"}`` by concatenation."""
        sent_at = iso_timestamp(int(self._clock() * 1000)).encode()
        return b"".join((_BODY_HEAD, b",".join(encoded), _BODY_TAIL_HEAD, sent_at, _BODY_TAIL_END))

    def classify(self, response: ResponseInfo, events: Sequence[Event]) -> Verdict:
        """The reference's response table; never raises on a malformed body."""
        status = response.status
        n = len(events)
        if status is None:
            return Verdict(Action.RETRY, response.error or "network error")
        if 200 <= status <= 299:
            return DELIVERED
        if status in (400, 413):
            detail = self._detail(response.body)
            return split_or_reject(n, f"HTTP {status}: {detail}" if detail else f"HTTP {status}")
        if status in (401, 403):
            return Verdict(Action.CONFIG, f"HTTP {status}: check the write key")
        if status == 404:
            return Verdict(Action.CONFIG, "HTTP 404: check the host")
        if status in (501, 505):
            return reject_all(n, f"HTTP {status}")
        wait = server_wait(response.headers, now=self._clock(), cap=self._max_wait)
        if status in (408, 429) or is_server_error(status):
            return Verdict(Action.RETRY, f"HTTP {status}", retry_after=wait)
        return unexpected_status(status, n, retry_after=wait)

    # --- beyond the protocol --------------------------------------------------------------

    def precheck(self, event: Event, encoded: bytes) -> str | None:
        """Why Segment would surely refuse this message (a reason), or None to send it."""
        kind = event.kind
        if kind == TRACK and not event.name:
            return "track call without an event name"
        if kind == GROUP and not event.group_id:
            return "group call without a group_id"
        if kind == ALIAS:
            if not event.previous_id:
                return "alias call without a previous_id"
            if not event.user_id:
                return "alias call without a user_id"
        device_id = event.options.device_id if event.options is not None else None
        if not event.user_id and not device_id:
            return "missing userId and anonymousId (device_id): Segment needs one"
        if len(encoded) > MAX_MESSAGE_BYTES:
            return f"message too large: {len(encoded)} bytes, Segment's limit is 32 KB"
        return None

    # --- internals ------------------------------------------------------------------------

    def _detail(self, body: bytes) -> str:
        """The message of a JSON error body, key masked, trimmed; "" when there is none."""
        parsed = json_object(body)
        if parsed is None:
            return ""
        text = parsed.get("message") or parsed.get("error") or ""
        if not isinstance(text, str):
            return ""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return short_text(text)
