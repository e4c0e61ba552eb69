"""What a destination lane needs from a destination, and what a response means.

A *lane* (``_lane.py``) owns one destination's queue, batching, retries and accounting.
The destination itself only knows its wire format and how to read a response:

- ``HttpDestination``: encodes one event to JSON bytes, wraps encoded events in a
  request body, and classifies a response into a ``Verdict``.
- custom adapters are driven by ``_custom.AdapterLane`` through the plugin contract.

``Verdict`` is pure data so the response rules can be table-tested without a network.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from ._event import Event


class Action(enum.Enum):
    """What to do with a whole batch after one response."""

    DONE = "done"  # delivered, except the indexes in ``rejected`` / ``resend`` / ``delayed``
    RETRY = "retry"  # nothing accepted for sure: back off and resend every event
    SPLIT = "split"  # too large: resend in halves; a single event is rejected
    CONFIG = "config"  # key, permission or URL wrong: pause the destination, log loudly


@attrs.frozen
class Verdict:
    """The meaning of one response for a batch of ``n`` events.

    With ``DONE``, every index not listed in ``rejected``, ``resend`` or ``delayed`` was
    delivered; ``rejected`` events are final losses with a reason; ``resend`` events go
    out again at once (no attempt is charged, the server accepted none of them and said
    so); ``delayed`` events wait the given seconds (a throttled user, for instance).
    With ``RETRY``, ``retry_after`` is the server-directed wait in seconds, if any.
    """

    action: Action
    reason: str = ""
    retry_after: float | None = None
    rejected: Mapping[int, str] = attrs.field(factory=dict)
    resend: frozenset[int] = frozenset()
    delayed: Mapping[int, float] = attrs.field(factory=dict)


DELIVERED = Verdict(Action.DONE, "delivered")


class UnsupportedEvent(Exception):  # noqa: N818 (a marker the lane turns into a rejection)
    """``encode`` cannot express this event for this destination; ``reason`` says why.

    The lane rejects the event with ``reason`` (counted, reported), never sends it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class ResponseInfo:
    """A response as the classifier sees it; ``status`` None means no response at all."""

    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    error: str = ""  # the transport error when status is None, e.g. "timeout"


class HttpDestination(Protocol):
    """A destination spoken to over HTTP in JSON batches."""

    #: name used in logs, stats and reports (the plan's destination key)
    name: str
    #: most events in one request
    max_events: int
    #: most bytes of one request body (uncompressed), envelope included
    max_bytes: int

    @property
    def url(self) -> str: ...

    def headers(self) -> Mapping[str, str]:
        """Request headers (authentication included); never logged."""
        ...

    def encode(self, event: Event) -> bytes:
        """One event in this destination's wire shape, as JSON bytes."""
        ...

    def envelope_size(self) -> int:
        """Bytes the body adds around the events (for the byte cap)."""
        ...

    def body(self, encoded: Sequence[bytes]) -> bytes:
        """The request body for these encoded events."""
        ...

    def classify(self, response: ResponseInfo, events: Sequence[Event]) -> Verdict:
        """What the response means for each event of the batch (pure, no I/O)."""
        ...
