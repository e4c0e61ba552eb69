"""Counters and reports: where every event ends up, by destination and by reason."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping

import attrs

#: Most individual rejections kept for reports; counts by reason are always complete.
MAX_REJECTION_SAMPLES = 1000


@attrs.frozen
class Rejection:
    """One event a destination will never receive, and why."""

    destination: str
    event: str
    insert_id: str
    reason: str


@attrs.frozen(kw_only=True)
class DestinationStats:
    """Counters of one destination since ``load()``.

    ``sent`` counts events the destination acknowledged; ``retried`` counts resend
    attempts (one event may be retried several times); ``rejected`` are final refusals
    (a bad event, a spent retry budget); ``dropped`` were never attempted (overflow,
    shutdown); ``pending`` are queued, waiting for a retry or in flight right now.
    ``refusing`` is the configuration error the destination answers while it lasts
    (a bad key or URL: its events wait and are probed every ``max_server_wait``), or "".
    """

    enqueued: int
    sent: int
    retried: int
    rejected: int
    dropped: int
    pending: int
    rejected_by_reason: Mapping[str, int]
    dropped_by_reason: Mapping[str, int]
    refusing: str = ""


@attrs.frozen(kw_only=True)
class Stats:
    """``client.stats()``: totals over destinations, then each destination.

    Every count is of events per destination (an event for two destinations counts
    twice), so ``enqueued == sent + rejected + dropped + pending`` holds for the totals
    as for each destination. A loss before any queue (a call after ``shutdown()`` in
    production, ``closed``; an unreadable spool row, ``spool_unreadable``) counts for
    every destination the event would have gone to. ``validation_errors`` counts invalid
    calls (sent anyway in production); ``adapter_errors`` failed adapter calls.
    """

    enqueued: int
    sent: int
    retried: int
    rejected: int
    dropped: int
    pending: int
    validation_errors: int
    adapter_errors: int
    dropped_by_reason: Mapping[str, int]
    destinations: Mapping[str, DestinationStats]


@attrs.frozen(kw_only=True)
class DeliveryReport:
    """What ``flush()`` / ``shutdown()`` achieved, counted since ``load()``.

    ``pending`` is what is still queued when the call returned; of it, ``spooled`` is on
    disk in the spool and will be resent by the next ``load()``. ``timed_out`` says the
    call gave up at its deadline. ``rejections`` holds up to 1,000 individual
    rejections; ``stats`` has complete counts by reason.
    """

    delivered: int
    rejected: int
    dropped: int
    pending: int
    spooled: int
    timed_out: bool
    rejections: tuple[Rejection, ...]
    stats: Stats

    @property
    def complete(self) -> bool:
        """True when nothing is pending and nothing was lost."""
        return self.pending == 0 and self.rejected == 0 and self.dropped == 0


class Tally:
    """Mutable counters of one destination (plain ints: they sit on the hot path)."""

    __slots__ = (
        "adapter_errors",
        "dropped",
        "dropped_by_reason",
        "enqueued",
        "rejected",
        "rejected_by_reason",
        "retried",
        "sent",
    )

    def __init__(self) -> None:
        self.enqueued = 0
        self.sent = 0
        self.retried = 0
        self.rejected = 0
        self.dropped = 0
        self.adapter_errors = 0
        self.rejected_by_reason: Counter[str] = Counter()
        self.dropped_by_reason: Counter[str] = Counter()

    def snapshot(self, pending: int, refusing: str = "") -> DestinationStats:
        return DestinationStats(
            enqueued=self.enqueued,
            sent=self.sent,
            retried=self.retried,
            rejected=self.rejected,
            dropped=self.dropped,
            pending=pending,
            rejected_by_reason=dict(self.rejected_by_reason),
            dropped_by_reason=dict(self.dropped_by_reason),
            refusing=refusing,
        )


class RejectionLog:
    """The last ``MAX_REJECTION_SAMPLES`` rejections, for reports."""

    def __init__(self) -> None:
        self.items: deque[Rejection] = deque(maxlen=MAX_REJECTION_SAMPLES)

    def add(self, rejection: Rejection) -> None:
        self.items.append(rejection)
