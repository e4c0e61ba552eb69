"""A lane: one destination's queue, batches, retries and accounting.

Each destination gets its own lane and its own task, so a slow or failing destination
never holds up another. The caller's side (``put``) is synchronous and O(1); everything
else runs in ``run`` on the client's home loop.

Invariants:
- An event is in exactly one of ``fresh`` (never tried), ``waiting`` (tried, or split,
  waiting for ``not_before``), one of the in-flight batches, or it has been counted as
  sent, rejected or dropped. ``pending`` is therefore exact. (An item dropped from
  ``waiting`` by ``drop_oldest`` stays in the heap, marked, until it reaches the top:
  ``waiting_gone`` counts those.)
- Every event in ``waiting`` or in flight is older than every event in ``fresh``:
  batches are cut from the head of ``fresh``.
- At most ``concurrency`` batches are in flight; each is owned by its ``_send`` task
  until that task either applies the verdict or is cancelled (then ``requeue_inflight``
  takes the batch back).
- Every loss goes through ``Losses.record``, which counts it by reason and logs it.
"""

from __future__ import annotations

import asyncio
import heapq
import importlib
import itertools
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._config import DeliveryOptions
from ._destination import Action, HttpDestination, ResponseInfo, UnsupportedEvent, Verdict
from ._event import Event
from ._logger import ItlyLogger, RateLimitedLog
from ._retry import describe_error, retry_allowed, retry_wait
from ._stats import Rejection, RejectionLog, Tally
from ._threads import Workers

if TYPE_CHECKING:
    from types import ModuleType

    import aiohttp

    from ._custom import AdapterCaller

Sleep = Callable[[float], Awaitable[None]]

#: Bodies above this many bytes are gzipped in a worker thread, not on the loop.
GZIP_INLINE_LIMIT = 64 * 1024
#: Fresh events encoded between two yields to the loop while a batch is cut (~0.3 ms)
ADMIT_SLICE = 50
#: After a 413 the lane halves its batch size; this many successes double it again.
GROW_AFTER_SUCCESSES = 8
#: Distinct reasons counted per destination and kind; later ones count as OTHER_REASON
#: (reasons are a small set by construction: this only guards against a mistake)
MAX_REASONS = 64
OTHER_REASON = "other reasons (more than 64 distinct)"


#: ``Item.parked``: not in ``waiting`` / in it / in it but dropped (skipped when reached)
OUT, PARKED, GONE = 0, 1, 2


class Item:
    """An event inside a lane, with its encoded bytes and retry state."""

    __slots__ = ("attempts", "compact", "data", "event", "first_failure", "not_before", "parked")

    def __init__(self, event: Event, data: bytes) -> None:
        self.event = event
        self.data = data
        self.attempts = 0
        self.first_failure: float | None = None
        self.not_before = 0.0
        self.compact = False
        self.parked = OUT

    def __lt__(self, other: Item) -> bool:  # heap order: due time, then enqueue order
        return (self.not_before, self.event.seq) < (other.not_before, other.event.seq)


class Losses:
    """The one place where an event stops being our responsibility without delivery."""

    def __init__(
        self, logger: ItlyLogger, rejections: RejectionLog, ratelimit: RateLimitedLog | None = None
    ) -> None:
        self.logger = logger
        self.rejections = rejections
        self.ratelimit = ratelimit or RateLimitedLog()

    def record(
        self,
        lane: str,
        tally: Tally,
        kind: str,
        reason: str,
        events: Sequence[Event],
        detail: str = "",
        count: int | None = None,
    ) -> None:
        """Count ``events`` as rejected or dropped for ``reason``, and log it (rate-limited).

        ``reason`` is the counter's key, so it must come from a small set (no event data,
        no exception text); ``detail`` (which may) goes into the log line and the samples.
        ``count`` stands for ``len(events)`` when the events themselves are not at hand
        (drops before they reached a lane).
        """
        n = len(events) if count is None else count
        if n == 0:
            return
        counter = tally.rejected_by_reason if kind == "rejected" else tally.dropped_by_reason
        if reason not in counter and len(counter) >= MAX_REASONS:
            reason = OTHER_REASON
        counter[reason] += n
        described = f"{reason}: {detail}" if detail else reason
        if kind == "rejected":
            tally.rejected += n
            for ev in events:
                self.rejections.add(Rejection(lane, ev.name, ev.insert_id, described))
        else:
            tally.dropped += n
        self.ratelimit(
            self.logger.error,
            f"{lane}:{kind}:{reason}",
            f"itly: {n} event(s) {kind} by destination {lane!r}: {described}",
            n,
        )


class Lane:
    """Queue and delivery loop of one destination. Subclasses implement ``deliver``."""

    max_events: int
    max_bytes: int | None = None
    #: batches in flight at once; adapters get one, so their calls keep their order
    concurrency = 1

    def __init__(
        self,
        name: str,
        delivery: DeliveryOptions,
        losses: Losses,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        sleep: Sleep | None,
    ) -> None:
        self.name = name
        self.delivery = delivery
        self.losses = losses
        self.clock = clock
        self.rng = rng
        self.sleep = sleep
        self.tally = Tally()
        self.fresh: deque[Event] = deque()
        self.fresh_since = 0.0
        self.waiting: list[Item] = []
        #: items of ``waiting`` dropped by ``drop_oldest``, still in the heap
        self.waiting_gone = 0
        #: under ``drop_oldest`` only: (seq, item) of parked items, oldest first, so the
        #: oldest waiting event is found without a scan (entries of items that left
        #: ``waiting`` are skipped, and the heap is rebuilt when they pile up)
        self.by_age: list[tuple[int, Item]] | None = (
            [] if delivery.overflow == "drop_oldest" else None
        )
        #: batches on the wire now, by batch number
        self.inflight: dict[int, list[Item]] = {}
        self.inflight_count = 0
        self.batch_numbers = itertools.count()
        self.batch_limit = min(delivery.flush_queue_size, self.max_events)
        self.successes = 0
        self.flush_upto = 0
        self.closing = False
        #: a configuration error the destination answered (bad key, URL): until a probe
        #: succeeds, fresh events wait, and only the refused batch is retried, at
        #: ``paused_until``
        self.paused_reason = ""
        self.paused_until = 0.0
        self.wake: asyncio.Event | None = None
        self.on_progress: Callable[[], None] = _nothing
        self.on_space: Callable[[], None] = _nothing
        #: called with events this lane has finished with (sent, rejected or dropped)
        self.on_done: Callable[[Sequence[Event]], None] | None = None
        self.generation = 0

    # --- caller side (home loop thread, synchronous) ---------------------------------

    def pending(self) -> int:
        return len(self.fresh) + len(self.waiting) - self.waiting_gone + self.inflight_count

    def put(self, event: Event) -> None:
        """Queue one event, applying the overflow policy when the lane is full."""
        fresh = self.fresh
        tried = len(self.waiting) - self.waiting_gone + self.inflight_count
        if len(fresh) + tried >= self.delivery.max_queue_size:
            oldest = self._oldest() if self.by_age is not None else None
            if oldest is not None:
                self._lose("dropped", "queue_full", [oldest])
            else:
                # drop_newest, or block when the caller could not wait (sync hand-off)
                self.tally.enqueued += 1
                self._lose("dropped", "queue_full", [event])
                return
        self.tally.enqueued += 1
        if not fresh:
            self.fresh_since = self.clock()
            fresh.append(event)
            if self.wake is not None:
                self.wake.set()
            return
        fresh.append(event)
        if len(fresh) == self.batch_limit and self.wake is not None:
            self.wake.set()

    def _oldest(self) -> Event | None:
        """Take the oldest queued event out (``drop_oldest``), or None if all are in flight.

        Waiting events are older than fresh ones, so the oldest waiting one goes first.
        """
        by_age = self.by_age
        assert by_age is not None
        while by_age:
            _, item = heapq.heappop(by_age)
            if item.parked == PARKED:
                item.parked = GONE
                self.waiting_gone += 1
                if self.waiting_gone > len(self.waiting) // 2:
                    self._sweep_waiting()
                return item.event
        return self.fresh.popleft() if self.fresh else None

    def _sweep_waiting(self) -> None:
        """Rebuild ``waiting`` without the items dropped from it."""
        self.waiting = [item for item in self.waiting if item.parked == PARKED]
        heapq.heapify(self.waiting)
        self.waiting_gone = 0

    def min_outstanding(self) -> int | None:
        """The smallest ``seq`` still pending here, or None when idle."""
        best: int | None = None
        if self.fresh:
            best = self.fresh[0].seq
        for item in self.waiting:
            if item.parked == GONE:
                continue
            if best is None or item.event.seq < best:
                best = item.event.seq
        for batch in self.inflight.values():
            for item in batch:
                if best is None or item.event.seq < best:
                    best = item.event.seq
        return best

    def request_flush(self, upto: int) -> None:
        self.flush_upto = max(self.flush_upto, upto)
        if self.wake is not None:
            self.wake.set()

    def drop_all(self, reason: str) -> int:
        """Count everything still queued as dropped (shutdown without a spool)."""
        if self.paused_reason:  # say why they were still here
            reason = f"{reason} while refused ({self.paused_reason})"
        events = [*self.fresh, *(i.event for i in self.waiting if i.parked == PARKED)]
        events.extend(i.event for batch in self.inflight.values() for i in batch)
        self.fresh.clear()
        self.waiting.clear()
        self.waiting_gone = 0
        if self.by_age is not None:
            self.by_age.clear()
        self.inflight = {}
        self.inflight_count = 0
        self._lose("dropped", reason, events)
        return len(events)

    def forget_all(self) -> None:
        """After fork: the parent's events belong to the parent; the child starts empty."""
        self.fresh.clear()
        self.waiting.clear()
        self.waiting_gone = 0
        if self.by_age is not None:
            self.by_age.clear()
        self.inflight = {}
        self.inflight_count = 0
        self.tally = Tally()
        self.wake = None

    # --- delivery loop (home loop) ---------------------------------------------------

    async def run(self, generation: int) -> None:
        """Deliver until cancelled or until the client moves to another loop.

        Up to ``concurrency`` batches are in flight, each in a task of its own: the next
        batch is encoded and sent while the previous one waits for its answer.
        """
        self.generation = generation
        self.wake = asyncio.Event()
        sends: set[asyncio.Task[None]] = set()
        try:
            while self.generation == generation:
                try:
                    # counted from ``inflight``, which a send leaves before it wakes the
                    # lane; ``sends`` drops a task only in a later callback
                    full = len(self.inflight) >= self.concurrency
                    cut = None if full else await self._cut_batch(generation)
                    if cut is not None:
                        number, batch = cut
                        task = asyncio.ensure_future(self._send(number, batch, generation))
                        sends.add(task)  # a strong reference until it is done
                        task.add_done_callback(sends.discard)
                        await asyncio.sleep(0)  # let it start before cutting the next
                    else:
                        await self._idle(self.clock(), full=full)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a bug must not stop delivery for good
                    self.losses.logger.error(
                        f"itly: internal error in destination {self.name!r}: {exc!r}; "
                        "its events are kept and retried"
                    )
                    await (self.sleep or asyncio.sleep)(1.0)
        finally:
            for task in sends:
                task.cancel()
            # a run left behind by a move to another loop must not touch the new run's batch
            if self.generation == generation:
                self.requeue_inflight()
                self.wake = None

    def requeue_inflight(self) -> None:
        # an interrupted request may or may not have landed: resend with the same ids
        for batch in self.inflight.values():
            for item in batch:
                item.not_before = 0.0
                self._park(item)
        self.inflight = {}
        self.inflight_count = 0

    async def _idle(self, now: float, *, full: bool = False) -> None:
        """Wait for new work: a wake-up, or the next deadline. With every request slot
        taken (``full``) only a finished send (which wakes the lane) can change anything."""
        deadline: float | None = None
        if self.fresh and not full:
            deadline = max(self.fresh_since + self.delivery.flush_interval, self.paused_until)
        if self.waiting and not full:
            due = self.waiting[0].not_before
            deadline = due if deadline is None else min(deadline, due)
        wake = self.wake
        assert wake is not None
        wake.clear()
        if deadline is None:
            await wake.wait()
            return
        delay = deadline - now
        if delay <= 0:
            return
        if self.sleep is None:
            try:
                async with asyncio.timeout(delay):
                    await wake.wait()
            except TimeoutError:
                pass
            return
        # an injected sleep (a virtual clock in tests) decides how long "delay" takes
        waiter = asyncio.ensure_future(wake.wait())
        sleeper = asyncio.ensure_future(self.sleep(delay))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    def _ready_fresh(self, now: float) -> bool:
        fresh = self.fresh
        if not fresh or now < self.paused_until:
            return False
        return (
            len(fresh) >= self.batch_limit
            or self.closing
            or fresh[0].seq <= self.flush_upto
            or now - self.fresh_since >= self.delivery.flush_interval
        )

    async def _cut_batch(self, generation: int) -> tuple[int, list[Item]] | None:
        """The next batch: due retries first, then fresh events once they are due.

        Fresh events are encoded ``ADMIT_SLICE`` at a time with a yield to the loop in
        between, so cutting a batch never holds the loop for long. The batch is in
        ``inflight`` while it fills, so ``pending`` and ``flush`` see its events; if the
        lane is requeued or dropped meanwhile (shutdown, a move to another loop), the cut
        is abandoned, its events already taken care of.
        """
        now = self.clock()
        number = next(self.batch_numbers)
        batch: list[Item] = []
        self.inflight[number] = batch
        try:
            return await self._fill(number, batch, generation, now)
        except Exception:
            if self.inflight.pop(number, None) is batch:  # not left stranded in flight
                self.inflight_count -= len(batch)
                for item in batch:
                    self._park(item)
            raise

    async def _fill(
        self, number: int, batch: list[Item], generation: int, now: float
    ) -> tuple[int, list[Item]] | None:
        limit = self.batch_limit
        max_bytes = self.max_bytes
        size = self._envelope_size()
        waiting = self.waiting
        while waiting and waiting[0].not_before <= now and len(batch) < limit:
            item = waiting[0]
            if item.parked == GONE:  # dropped by drop_oldest while it waited
                heapq.heappop(waiting)
                item.parked = OUT
                self.waiting_gone -= 1
                continue
            if max_bytes is not None and batch and size + len(item.data) + 1 > max_bytes:
                break
            heapq.heappop(waiting)
            item.parked = OUT
            batch.append(item)
            self.inflight_count += 1
            size += len(item.data) + 1
        if len(batch) < limit and self._ready_fresh(now):
            fresh = self.fresh
            admitted = 0
            while fresh and len(batch) < limit:
                if admitted == ADMIT_SLICE:
                    await asyncio.sleep(0)
                    if self.generation != generation or self.inflight.get(number) is not batch:
                        return None
                    admitted = 0
                    continue
                admitted += 1
                item_or_none = self._admit(fresh[0])
                if item_or_none is None:
                    fresh.popleft()
                    continue
                data = item_or_none.data
                if max_bytes is not None and batch and size + len(data) + 1 > max_bytes:
                    break  # encoded again next round: rare, cheaper than a side table
                fresh.popleft()
                batch.append(item_or_none)
                self.inflight_count += 1
                size += len(data) + 1
            if fresh:
                self.fresh_since = now
        if not batch:
            del self.inflight[number]
            return None
        return number, batch

    def _admit(self, event: Event) -> Item | None:
        """Encode one fresh event; reject at once what can never be delivered."""
        detail = ""
        try:
            data = self.encode(event)
            reason = self.precheck(event, data)
        except UnsupportedEvent as exc:
            reason = exc.reason
        except Exception as exc:  # noqa: BLE001 - one unencodable event is rejected, not fatal
            reason, detail = f"cannot encode: {type(exc).__name__}", repr(exc)[:200]
        if reason is None and self.max_bytes is not None:
            limit = self.max_bytes - self._envelope_size() - 1
            if len(data) > limit:
                reason = f"event larger than the {limit} byte request limit"
                detail = f"{len(data)} bytes"
        if reason is not None:
            self._lose("rejected", reason, [event], detail)
            self.on_space()
            return None
        return Item(event, data)

    async def _send(self, number: int, batch: list[Item], generation: int) -> None:
        try:
            verdict = await self.deliver(batch)
        except asyncio.CancelledError:
            raise  # the batch stays in ``inflight``: whoever cancelled requeues it
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the batch
            self.losses.logger.error(
                f"itly: internal error sending to {self.name!r}: {exc!r}; the batch is retried"
            )
            verdict = Verdict(Action.RETRY, f"internal error: {type(exc).__name__}")
        if self.generation != generation or self.inflight.pop(number, None) is None:
            return  # the client moved on, and the batch was requeued for the new run
        self.inflight_count -= len(batch)
        self._apply(batch, verdict, self.clock())
        if self.wake is not None:
            self.wake.set()
        self.on_progress()
        self.on_space()

    def _apply(self, batch: list[Item], verdict: Verdict, now: float) -> None:
        tally = self.tally
        if verdict.action is Action.DONE:
            self.paused_reason, self.paused_until = "", 0.0  # the destination answers again
            rejected, resend, delayed = verdict.rejected, verdict.resend, verdict.delayed
            if not rejected and not resend and not delayed:
                tally.sent += len(batch)
                if self.on_done is not None:
                    self.on_done([item.event for item in batch])
                self._grow()
                return
            for index, item in enumerate(batch):
                if index in rejected:
                    self._lose("rejected", rejected[index], [item.event])
                elif index in resend:
                    item.not_before = now
                    self._park(item)
                elif index in delayed:
                    self._retry(item, now, delayed[index], verdict.reason)
                else:
                    tally.sent += 1
                    if self.on_done is not None:
                        self.on_done([item.event])
            return
        if verdict.action is Action.SPLIT:
            if len(batch) == 1:
                self._lose("rejected", f"too large: {verdict.reason}", [batch[0].event])
                return
            self.batch_limit = max(1, len(batch) // 2)
            self.successes = 0
            for item in batch:
                item.not_before = now
                self._park(item)
            return
        wait = verdict.retry_after
        if verdict.action is Action.CONFIG:
            if self.paused_reason != verdict.reason:
                self.losses.logger.error(
                    f"itly: destination {self.name!r} refused the request ({verdict.reason}); "
                    "check its key and URL. Its events are kept, new ones wait, and the "
                    f"refused batch is tried again every {self.delivery.max_server_wait:.0f} s "
                    "within the retry budget."
                )
            self.paused_reason = verdict.reason
            wait = self.delivery.max_server_wait
        # one draw per batch: the batch stays together instead of scattering into many
        # tiny requests, each due at its own random moment
        attempts = max(item.attempts for item in batch) + 1
        d = self.delivery
        wait = retry_wait(wait, attempts, base=d.retry_base, cap=d.retry_cap, rng=self.rng)
        if verdict.action is Action.CONFIG:
            self.paused_until = now + min(wait, d.max_server_wait)
        for item in batch:
            self._retry(item, now, wait, verdict.reason)

    def _retry(self, item: Item, now: float, delay: float, reason: str) -> None:
        d = self.delivery
        item.attempts += 1
        if item.first_failure is None:
            item.first_failure = now
        if not retry_allowed(
            item.attempts,
            item.first_failure,
            now=now,
            max_retries=d.max_retries,
            max_duration=d.max_retry_duration,
        ):
            self._lose(
                "rejected",
                f"gave up after {item.attempts} attempts: {reason}",
                [item.event],
            )
            return
        item.not_before = now + min(delay, d.max_server_wait)
        self.tally.retried += 1
        self._park(item)

    def _grow(self) -> None:
        target = min(self.delivery.flush_queue_size, self.max_events)
        if self.batch_limit < target:
            self.successes += 1
            if self.successes >= GROW_AFTER_SUCCESSES:
                self.batch_limit = min(target, self.batch_limit * 2)
                self.successes = 0

    # --- per destination ---------------------------------------------------------------

    def _park(self, item: Item) -> None:
        """Put an item in ``waiting`` (retry, resend, split) with a right-sized buffer.

        orjson returns each result in a 4 KB allocation; an item that waits keeps it for
        a while, so it gets an exact-size copy (measured: 4,120 -> 106 bytes an item).
        """
        if not item.compact:
            item.data = bytes(memoryview(item.data))
            item.compact = True
        heapq.heappush(self.waiting, item)
        item.parked = PARKED
        by_age = self.by_age
        if by_age is not None:
            heapq.heappush(by_age, (item.event.seq, item))
            if len(by_age) > 2 * len(self.waiting) + 64:  # mostly entries of items gone on
                self.by_age = [(i.event.seq, i) for i in self.waiting if i.parked == PARKED]
                heapq.heapify(self.by_age)

    def drop_unqueued(self, reason: str, n: int = 1) -> None:
        """Count ``n`` events meant for this lane that were lost before reaching it."""
        self.tally.enqueued += n
        self.losses.record(self.name, self.tally, "dropped", reason, (), count=n)

    def _lose(self, kind: str, reason: str, events: Sequence[Event], detail: str = "") -> None:
        """Count events this lane will never deliver (by reason), and let them go."""
        self.losses.record(self.name, self.tally, kind, reason, events, detail)
        if self.on_done is not None:
            self.on_done(events)

    def _envelope_size(self) -> int:
        return 0

    def encode(self, event: Event) -> bytes:
        return b""

    def precheck(self, event: Event, data: bytes) -> str | None:
        return None

    async def deliver(self, batch: list[Item]) -> Verdict:
        raise NotImplementedError

    async def start(self) -> None:
        """Open resources on the home loop (sessions, adapter ``load``)."""

    async def close(self, final: bool) -> None:
        """Release what this lane holds on the running loop, which is ending or being left.

        ``final``: the client is shutting down, so adapters are shut down too; otherwise
        the lane goes on from another loop (``asyncio.run`` returned, or delivery moved).
        """


def _nothing() -> None:
    return None


class HttpLane(Lane):
    """A lane speaking HTTP to Amplitude, Segment or anything with the same contract."""

    def __init__(
        self, destination: HttpDestination, delivery: DeliveryOptions, losses: Losses, **kw: Any
    ) -> None:
        self.destination = destination
        self.max_events = destination.max_events
        self.max_bytes = destination.max_bytes
        self.concurrency = delivery.max_concurrent_requests
        super().__init__(destination.name, delivery, losses, **kw)
        self.session: aiohttp.ClientSession | None = None
        #: the loop ``session`` belongs to: a session cannot move to another loop
        self.session_loop: asyncio.AbstractEventLoop | None = None
        self.http: ModuleType | None = None
        self._envelope = destination.envelope_size()
        self.workers = Workers(f"itly-gzip-{destination.name}", limit=1)

    def _envelope_size(self) -> int:
        return self._envelope

    def forget_all(self) -> None:
        super().forget_all()
        self.session = None  # the parent's, bound to the parent's loop and sockets
        self.workers = Workers(f"itly-gzip-{self.name}", limit=1)

    def encode(self, event: Event) -> bytes:
        return self.destination.encode(event)

    def precheck(self, event: Event, data: bytes) -> str | None:
        check = getattr(self.destination, "precheck", None)
        if check is None:
            return None
        result: str | None = check(event, data)
        return result

    async def start(self) -> None:
        if self.http is None:
            self.http = await _import_aiohttp(self.workers)
        loop = asyncio.get_running_loop()
        if self.session is not None and self.session_loop is not loop:
            self._abandon_session()
        if self.session is None or self.session.closed:
            self.session_loop = loop
            http = self.http
            self.session = http.ClientSession(
                timeout=http.ClientTimeout(total=self.delivery.timeout),
                connector=http.TCPConnector(
                    limit=max(4, self.concurrency), enable_cleanup_closed=True
                ),
                skip_auto_headers=("User-Agent",),
            )

    async def close(self, final: bool) -> None:
        # only a session of this loop: after a move the lane's session is the new loop's
        session = self.session
        if session is not None and self.session_loop is asyncio.get_running_loop():
            self.session = None
            await session.close()

    def _abandon_session(self) -> None:
        """Let go of a session made on another loop, before opening one on this loop.

        A loop that still runs (delivery moved off it) closes its session itself, soon.
        A loop the program closed without ``shutdown`` can run nothing any more: its
        connections go with it (asyncio warns about that loop's pending tasks and
        sockets, rightly)."""
        session, old = self.session, self.session_loop
        self.session = None
        if session is None or session.closed:
            return
        if old is not None and not old.is_closed():
            try:
                old.call_soon_threadsafe(_close_soon, session)
            except RuntimeError:  # closed in the meantime
                pass
            else:
                return
        session.detach()

    async def deliver(self, batch: list[Item]) -> Verdict:
        dest = self.destination
        body = dest.body([item.data for item in batch])
        headers = dict(dest.headers())
        if self.delivery.gzip:
            headers["Content-Encoding"] = "gzip"
            if len(body) > GZIP_INLINE_LIMIT:
                body = await self.workers.run(_gzip, body)
            else:
                body = _gzip(body)
        if self.session is None:
            await self.start()
        assert self.session is not None
        assert self.http is not None
        try:
            async with self.session.post(dest.url, data=body, headers=headers) as resp:
                raw = await resp.read()
                info = ResponseInfo(resp.status, raw, dict(resp.headers))
        except (self.http.ClientError, TimeoutError, OSError) as exc:
            info = ResponseInfo(None, error=describe_error(exc))
        return dest.classify(info, [item.event for item in batch])


_aiohttp: ModuleType | None = None


async def _import_aiohttp(workers: Workers) -> ModuleType:
    """aiohttp takes ~200 ms to import: load it in a worker thread, once, on first use.

    Importing it with the runtime would double the cost of ``import itly``; importing it
    on the loop would stall the loop for as long.
    """
    global _aiohttp
    if _aiohttp is None:
        _aiohttp = await workers.run(importlib.import_module, "aiohttp")
    return _aiohttp


#: sessions being closed on a loop delivery has left; a strong reference per task
_closing: set[asyncio.Task[None]] = set()


def _close_soon(session: aiohttp.ClientSession) -> None:
    task = asyncio.ensure_future(session.close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _gzip(body: bytes) -> bytes:
    import gzip  # only with DeliveryOptions(gzip=True)

    return gzip.compress(body, compresslevel=6, mtime=0)


def monotonic() -> float:
    return time.monotonic()


class AdapterLane(Lane):
    """A lane for a custom adapter: one plugin call per event, each isolated."""

    max_events = 100

    def __init__(
        self, name: str, caller: AdapterCaller, delivery: DeliveryOptions, losses: Losses, **kw: Any
    ) -> None:
        self.caller = caller
        super().__init__(name, delivery, losses, **kw)

    def forget_all(self) -> None:
        super().forget_all()
        self.caller.reset_after_fork()

    async def start(self) -> None:
        await self.caller.load(self.tally)

    async def close(self, final: bool) -> None:
        if final:  # the adapter serves this client on its next loop otherwise
            await self.caller.shutdown(self.tally)

    async def deliver(self, batch: list[Item]) -> Verdict:
        rejected = await self.caller.send_batch([item.event for item in batch], self.tally)
        return Verdict(Action.DONE, "adapter", rejected=rejected)

    async def flush_adapter(self) -> None:
        await self.caller.flush(self.tally)
