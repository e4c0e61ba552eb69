"""The client: lifecycle, validation, enrichment, and the hand-off to destination lanes.

Life cycle::

    NEW --load()--> RUNNING --shutdown()--> CLOSING --> CLOSED
     \\--load(disabled=True)--> DISABLED  (every call a no-op; no task, thread or socket)

A tracking call validates and enriches in the caller, then submits the event to every
lane on the client's home loop (see ``_home.py``). It never waits for the network.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import os
import random
import re
import threading
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import orjson

from ._amplitude import Amplitude, PlanMeta
from ._config import (
    AmplitudeOptions,
    CustomOptions,
    DeliveryOptions,
    EventOptions,
    Options,
    SegmentOptions,
    context_to_dict,
    unencodable_path,
)
from ._custom import AdapterCaller
from ._event import ALIAS, GROUP, IDENTIFY, NO_PROPS, TRACK, Event, new_id
from ._exceptions import ClientClosedError, NotLoadedError, PropertyError, ValidationError
from ._home import Home, LoopThread, run_blocking
from ._lane import AdapterLane, HttpLane, Lane, Losses, Sleep
from ._logger import ItlyLogger, RateLimitedLog, StdLogger
from ._plan import Plan, resolve_destinations
from ._segment import Segment
from ._spool import Spool
from ._stats import DeliveryReport, RejectionLog, Stats
from ._validation import Validator, normalize
from ._version import LIBRARY

#: an array index in a JSON path, folded when validation failures are grouped for logging
_INDEX = re.compile(r"\[\d+\]")

#: Seconds ``flush()`` waits when no timeout is given: long enough for a few retries,
#: bounded so that a dead endpoint cannot hang the caller.
DEFAULT_FLUSH_TIMEOUT = 30.0


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DISABLED = "disabled"
    CLOSING = "closing"
    CLOSED = "closed"


_RUNNING = State.RUNNING

_CLIENTS: weakref.WeakSet[Client] = weakref.WeakSet()


class Client:
    """An analytics client: load once, then track from coroutines (or ``SyncClient``).

    Example::

        client = Client()
        client.load(Options(destinations={"amplitude": AmplitudeOptions(api_key=KEY)}))
        await client.track("user-1", "Process Started", {"available_processors": 8})
        report = await client.shutdown(timeout=5)

    ``clock``, ``rng`` and ``sleep`` are for tests: they drive retry timing (backoff and
    server-directed waits) without real time passing.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._state = State.NEW
        self._options = Options()
        self._delivery = DeliveryOptions()
        self._logger: ItlyLogger = StdLogger()
        self._lanes: list[Lane] = []
        self._validators: dict[str, Validator] = {}
        self._identify: Validator | None = None
        self._group: Validator | None = None
        self._context: dict[str, Any] = {}
        self._validate = True
        self._fail = True
        self._block = False
        #: neither ``block`` nor a spool: a call queues its event without awaiting anything
        self._plain = True
        self._lock = threading.Lock()
        self._home: Home | None = None
        self._loop_thread: LoopThread | None = None
        self._generation = 0
        self._seq = 0
        self._validation_errors = 0
        self._rejections = RejectionLog()
        self._ratelimit = RateLimitedLog()
        self._final: DeliveryReport | None = None
        #: the first shutdown's report, for calls made while it runs (any thread)
        self._closing: concurrent.futures.Future[DeliveryReport] | None = None
        self._space_signal = threading.Event()
        self._spool: Spool | None = None
        self._spool_wait = False
        _CLIENTS.add(self)

    # --- load ----------------------------------------------------------------------------

    def load(self, options: Options | None = None, *, plan: Plan | None = None) -> None:
        """Configure the client. Synchronous; safe to call before any event loop exists.

        Raises ``ConfigurationError`` when a destination cannot work and
        ``ValidationError`` when the context breaks the plan (in development).
        """
        if self._state is not State.NEW:
            raise RuntimeError(f"load() was already called (client is {self._state.value})")
        options = options or Options()
        plan = plan or Plan()
        self._options = options
        self._logger = options.logger or StdLogger()
        self._fail = options.fail_on_error
        if options.disabled:
            self._state = State.DISABLED
            return
        self._delivery = delivery = options.delivery or DeliveryOptions()
        self._validate = not options.validation_disabled
        self._block = delivery.overflow == "block"
        self._plain = not self._block  # and no spool: see _open_spool
        self._validators = {name: Validator(name, s) for name, s in plan.events.items()}
        self._identify = Validator("identify", plan.identify) if plan.identify else None
        self._group = Validator("group", plan.group) if plan.group else None
        context = context_to_dict(options.context)
        if plan.context is not None and self._validate:
            context = self._checked("context", Validator("context", plan.context), context)
        elif context:
            context = self._prepare(None, "context", context)
        self._context = context
        lanes = self._make_lanes(options, plan, delivery)
        for lane in lanes:
            lane.on_progress = self._notify_progress
            lane.on_space = self._notify_space
        self._lanes = lanes
        if delivery.spool_path is not None and lanes:
            self._open_spool(delivery.spool_path, delivery)
        self._state = State.RUNNING
        _install_process_hooks()
        if self._spool is not None and self._spool.leftovers:
            leftovers, self._spool.leftovers = self._spool.leftovers, []
            self._logger.info(f"itly: resending {len(leftovers)} events left in the spool")
            for event in leftovers:
                event.remaining = len(self._lanes)
                self.submit_from(event, None)

    def _make_lanes(self, options: Options, plan: Plan, delivery: DeliveryOptions) -> list[Lane]:
        """One lane per destination of the options (keys from the plan, or overridden)."""
        configs = resolve_destinations(plan, options.destinations, options.environment)
        losses = Losses(self._logger, self._rejections, self._ratelimit)
        meta = PlanMeta(
            branch=plan.branch or None,
            source=plan.source or None,
            version=plan.version or None,
            version_id=plan.version_id or None,
        )
        kw: dict[str, Any] = {"clock": self._clock, "rng": self._rng, "sleep": self._sleep}
        lanes: list[Lane] = []
        for name, cfg in configs.items():
            if isinstance(cfg, AmplitudeOptions):
                assert cfg.api_key is not None  # resolve_destinations guarantees it
                amp = Amplitude(
                    name,
                    cfg.api_key,
                    cfg,
                    plan=meta,
                    library=LIBRARY,
                    max_server_wait=delivery.max_server_wait,
                )
                lanes.append(HttpLane(amp, delivery, losses, **kw))
            elif isinstance(cfg, SegmentOptions):
                assert cfg.write_key is not None
                seg = Segment(
                    name,
                    cfg.write_key,
                    cfg,
                    library=LIBRARY,
                    max_server_wait=delivery.max_server_wait,
                )
                lanes.append(HttpLane(seg, delivery, losses, **kw))
            elif isinstance(cfg, CustomOptions):
                caller = AdapterCaller(
                    name,
                    cfg.adapter,
                    options,
                    delivery.adapter_timeout,
                    self._logger,
                    self._ratelimit,
                )
                lanes.append(AdapterLane(name, caller, delivery, losses, **kw))
        return lanes

    def _open_spool(self, path: str, delivery: DeliveryOptions) -> None:
        spool = Spool.open(path, self._logger, delivery.max_queue_size)
        if spool is None:
            return
        self._spool = spool
        self._plain = False
        self._spool_wait = delivery.spool_mode == "write_through"
        for lane in self._lanes:
            lane.on_done = self._lanes_done
            if spool.quarantined:  # leftovers that could not be read: lost, and counted
                lane.drop_unqueued("spool_unreadable", spool.quarantined)

    def _lanes_done(self, events: Sequence[Event]) -> None:
        """A lane finished with these events; a spooled event goes when all lanes have."""
        spool = self._spool
        if spool is None:
            return
        finished = []
        for event in events:
            event.remaining -= 1
            if event.remaining == 0:
                finished.append(event.insert_id)
        spool.delete(finished)

    # --- validation and enrichment (caller's thread) -------------------------------------

    def _checked(
        self, item: str, validator: Validator, properties: Mapping[str, Any]
    ) -> dict[str, Any]:
        props, errors = normalize(properties)
        if errors or not validator.check(props):
            self._invalid(item, _explained(errors, validator, props))
        return props

    def _prepare(
        self, validator: Validator | None, item: str, properties: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        if not properties:
            props: dict[str, Any] = {}
            if self._validate and validator is not None and not validator.check(props):
                self._invalid(item, validator.explain(props))
            return props
        if self._validate and validator is not None:
            proof = validator.proves_ready
            if proof is not None and type(properties) is dict and proof(properties):
                return properties  # valid, and JSON as it is: nothing to convert
            props, errors = normalize(properties)
            # the pre-check already failed on these very values; converted ones get a try
            retry = proof is None or props is not properties
            if errors or not validator.check(props, pre_check=retry):
                self._invalid(item, _explained(errors, validator, props))
            return props
        props, errors = normalize(properties)
        if errors:
            # no schema, or validation off: such values still cannot be sent. Validation
            # off means log (and send null); otherwise the environment's rule applies.
            self._invalid(item, errors, force_log=not self._validate)
        return props

    def _encode(self, item: str, props: dict[str, Any]) -> bytes:
        """The event's snapshot: its properties as JSON, encoded once, here in the call."""
        if not props:
            return NO_PROPS
        try:
            encoded = orjson.dumps(props)
        except TypeError:
            encoded = self._encode_slowly(item, props)
        # orjson hands back its 4 KB working buffer; a queued event keeps an exact copy
        return bytes(memoryview(encoded))

    def _encode_slowly(self, item: str, props: dict[str, Any]) -> bytes:
        # what normalize lets through but orjson refuses: non-string keys at the top
        # (sent as strings), integers beyond 64 bits (a validation error, sent as null)
        try:
            return orjson.dumps(props, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            pass
        errors: list[PropertyError] = []
        kept: dict[str, Any] = {}
        for key, value in props.items():
            try:
                orjson.dumps(value)
                kept[str(key)] = value
            except TypeError as exc:
                path = unencodable_path(value, f"$.{key}")
                errors.append(PropertyError(path, "serializable", str(exc)))
                kept[str(key)] = None
        # with validation off such a value is logged (and sent as null), as in _prepare
        self._invalid(item, errors, force_log=not self._validate)
        return orjson.dumps(kept)

    def _invalid(self, item: str, errors: list[PropertyError], force_log: bool = False) -> None:
        seen: set[tuple[str, str]] = set()
        unique = []
        for e in errors:
            if (e.path, e.rule) not in seen:
                seen.add((e.path, e.rule))
                unique.append(e)
        error = ValidationError(item, unique)
        self._validation_errors += 1
        if self._fail and not force_log:
            raise error
        # one line per event and kind of failure (array indices folded) every 10 s: a
        # different failure of the same event is not hidden behind the first one
        kind = ",".join(sorted({f"{_INDEX.sub('[]', e.path)}:{e.rule}" for e in unique}))
        self._ratelimit(
            self._logger.error, f"invalid:{item}:{kind}", f"itly: {error} (sent anyway)"
        )

    def _accepting(self) -> bool:
        state = self._state
        if state is State.RUNNING:
            return True
        if state is State.DISABLED or self._options.disabled:
            return False  # disabled stays a no-op, shut down or not
        if state is State.NEW:
            # before load() the environment is unknown, so the development rule applies
            raise NotLoadedError("call load(options) before tracking events")
        if self._fail:
            raise ClientClosedError("the client was shut down; events are no longer accepted")
        for lane in self._lanes:  # counted and logged (rate-limited) per destination
            lane.drop_unqueued("closed")
        return False

    def _event(
        self,
        kind: str,
        name: str,
        user_id: str | None,
        props: bytes,
        event_options: EventOptions | None,
        group_id: str | None = None,
        previous_id: str | None = None,
    ) -> Event:
        if event_options is None:
            return Event(
                kind,
                name,
                user_id,
                props,
                time.time_ns() // 1_000_000,
                new_id(),
                None,
                group_id,
                previous_id,
            )
        when = event_options.time
        if when is None:
            time_ms = time.time_ns() // 1_000_000
        elif isinstance(when, int):
            time_ms = when
        else:
            time_ms = int(when.timestamp() * 1000)
        return Event(
            kind,
            name,
            user_id,
            props,
            time_ms,
            event_options.insert_id or new_id(),
            event_options,
            group_id,
            previous_id,
        )

    def make_track(
        self,
        user_id: str | None,
        name: str,
        properties: Mapping[str, Any] | None,
        event_options: EventOptions | None,
    ) -> Event | None:
        if self._state is not _RUNNING and not self._accepting():
            return None
        props = self._prepare(self._validators.get(name), name, properties)
        context = self._context
        if context:
            props = {**context, **props}
        if event_options is None:  # the common case, inlined: this is the hot path
            return Event(
                TRACK,
                name,
                user_id,
                self._encode(name, props),
                time.time_ns() // 1_000_000,
                new_id(),
            )
        return self._event(TRACK, name, user_id, self._encode(name, props), event_options)

    def make_identify(
        self,
        user_id: str | None,
        traits: Mapping[str, Any] | None,
        event_options: EventOptions | None,
    ) -> Event | None:
        if not self._accepting():
            return None
        props = self._prepare(self._identify, "identify", traits)
        encoded = self._encode("identify", props)
        return self._event(IDENTIFY, "identify", user_id, encoded, event_options)

    def make_group(
        self,
        user_id: str | None,
        group_id: str,
        traits: Mapping[str, Any] | None,
        event_options: EventOptions | None,
    ) -> Event | None:
        if not self._accepting():
            return None
        props = self._encode("group", self._prepare(self._group, "group", traits))
        return self._event(GROUP, "group", user_id, props, event_options, group_id=group_id)

    def make_alias(
        self, user_id: str, previous_id: str, event_options: EventOptions | None
    ) -> Event | None:
        if not self._accepting():
            return None
        return self._event(
            ALIAS, "alias", user_id, NO_PROPS, event_options, previous_id=previous_id
        )

    # --- async API -------------------------------------------------------------------------

    async def track(
        self,
        user_id: str | None,
        name: str,
        properties: Mapping[str, Any] | None = None,
        *,
        event_options: EventOptions | None = None,
    ) -> None:
        """Validate, enrich and queue one event. Returns without touching the network.

        Events named in the plan are validated against it; other names are sent as given.
        """
        event = self.make_track(user_id, name, properties, event_options)
        if event is not None:
            if self._plain:
                self._dispatch(event)
            else:
                await self._enqueue(event)

    async def identify(
        self,
        user_id: str | None,
        traits: Mapping[str, Any] | None = None,
        *,
        event_options: EventOptions | None = None,
    ) -> None:
        """Set traits on a user (Amplitude ``$identify`` with ``$set``; Segment identify)."""
        event = self.make_identify(user_id, traits, event_options)
        if event is not None:
            if self._plain:
                self._dispatch(event)
            else:
                await self._enqueue(event)

    async def group(
        self,
        user_id: str | None,
        group_id: str,
        traits: Mapping[str, Any] | None = None,
        *,
        event_options: EventOptions | None = None,
    ) -> None:
        """Put a user in a group and set the group's traits."""
        event = self.make_group(user_id, group_id, traits, event_options)
        if event is not None:
            if self._plain:
                self._dispatch(event)
            else:
                await self._enqueue(event)

    async def alias(
        self, user_id: str, previous_id: str, *, event_options: EventOptions | None = None
    ) -> None:
        """Tell destinations that ``previous_id`` and ``user_id`` are the same user."""
        event = self.make_alias(user_id, previous_id, event_options)
        if event is not None:
            if self._plain:
                self._dispatch(event)
            else:
                await self._enqueue(event)

    async def _enqueue(self, event: Event) -> None:
        """Queue an event under ``block`` or with a spool (``_plain`` is the other case).

        Under ``block`` the call waits, bounded, for room; an event whose caller found it
        is handed over as *held* (see ``submit_sync``). With a spool the event is written
        first; in write-through mode the call returns once it is committed.
        """
        held = await self._await_space() if self._block else False
        spool = self._spool
        if spool is None:
            self._dispatch(event, held)
            return
        event.remaining = len(self._lanes)
        if not self._spool_wait:
            spool.add(event)
            self._dispatch(event, held)
            return
        loop = asyncio.get_running_loop()
        committed = loop.create_future()
        spool.add(event, lambda: loop.call_soon_threadsafe(_resolve, committed))
        self._dispatch(event, held)
        # the spool always answers; the bound is for a disk that stalls (the event is
        # queued in memory already, and the spool logs a commit that comes late)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(committed), self._delivery.timeout)

    def _dispatch(self, event: Event, held: bool = False) -> None:
        home = self._home
        loop = asyncio.get_running_loop()
        if home is not None and home.loop is loop:
            self._submit(event)
        else:
            self.submit_from(event, loop, held=held)

    def submit_from(
        self, event: Event, loop: asyncio.AbstractEventLoop | None, *, held: bool = False
    ) -> None:
        """Submit from a thread that is not (or may not be) the home loop's.

        ``loop``: the caller's running loop (async API), which becomes home if there is
        none alive; None for the sync API, whose home is the private loop thread.
        """
        home = self._home
        if home is None or not home.alive():
            home = self._rehome(loop)
        if home.loop is loop or (loop is None and home.thread_id == threading.get_ident()):
            self._submit(event)
        else:
            home.handoff(event, self._drain, held=held)

    def submit_sync(self, event: Event) -> None:
        """Submit from synchronous code (the sync shim); waits for room under ``block``.

        A caller that found room (at once or by waiting) hands its event over as *held*:
        another thread may take that room first, and the event then waits on the loop
        for the next free slot instead of being dropped. One that timed out hands it
        over plainly, and it is dropped (counted) if there is still no room.
        """
        held = self._block and (not self._full() or self._wait_space_blocking())
        spool = self._spool
        if spool is not None:
            event.remaining = len(self._lanes)
            if self._spool_wait:
                spool.add_and_wait(event, self._delivery.timeout)
            else:
                spool.add(event)
        self.submit_from(event, None, held=held)

    def _wait_space_blocking(self) -> bool:
        """Wait until every lane has room; False at the timeout, or on the home loop."""
        home = self._home
        if home is not None and home.thread_id == threading.get_ident():
            return False  # on the home loop: waiting would deadlock; put() drops, counted
        deadline = time.monotonic() + self._delivery.timeout
        space = self._space_signal
        while self._full():
            space.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._full() and not space.wait(remaining)):
                return False
        return True

    def _rehome(self, loop: asyncio.AbstractEventLoop | None, *, move: bool = False) -> Home:
        """Make ``loop`` (None: the private loop thread) deliver, when home is gone.

        ``move``: also when home is alive, its thread blocked in a sync call: that loop
        stops delivering (its supervisor is cancelled once it runs again) and the events
        it held are delivered from the new home.
        """
        with self._lock:
            home = self._home
            if home is not None and home.alive() and not move:
                return home
            if self._state is not State.RUNNING and self._state is not State.CLOSING:
                raise ClientClosedError("the client is not running")
            self._generation += 1
            if home is not None and home.supervisor is not None and home.alive():
                home.loop.call_soon_threadsafe(home.supervisor.cancel)
            inbox = home.inbox if home is not None else None
            held = home.held if home is not None else None
            for lane in self._lanes:
                lane.requeue_inflight()
                lane.wake = None  # the old loop's; the lane's next run makes its own
            if loop is not None:
                new = Home(loop, threading.get_ident(), self._generation)
            else:
                thread = self._loop_thread
                if thread is None or not thread.alive():
                    thread = self._loop_thread = LoopThread()
                new = Home(thread.loop, thread.thread_id, self._generation)
            if inbox:
                new.inbox.extend(inbox)  # handed over but never drained: keep them
            if held:
                new.held.extend(held)
            self._home = new
            if loop is not None:
                self._start_home(new)
                self._drain()
            else:
                new.scheduled = True
                new.loop.call_soon_threadsafe(self._start_and_drain, new)
            return new

    def _start_and_drain(self, home: Home) -> None:
        self._start_home(home)
        self._drain()

    def _start_home(self, home: Home) -> None:
        """On the home loop: create its primitives and the supervisor task."""
        if home.started:
            return
        home.started = True
        home.progress = asyncio.Event()
        home.space = asyncio.Event()
        # keep a strong reference: a task only weakly held by the loop can be collected
        home.supervisor = home.loop.create_task(self._supervise(home))

    async def _supervise(self, home: Home) -> None:
        lanes = self._lanes
        try:
            async with asyncio.TaskGroup() as tg:
                for lane in lanes:
                    tg.create_task(self._run_lane(lane, home.generation))
        finally:
            # not when the task of a loop closed without cancelling it is collected:
            # nothing can run on that loop any more, and the next home closes nothing
            if _loop_running():
                # adapters are shut down with the client, not with a loop it moved off
                final = home is self._home and self._state in (State.CLOSING, State.CLOSED)
                timeout = self._delivery.adapter_timeout
                await asyncio.gather(*(_bounded(lane.close(final), timeout) for lane in lanes))

    async def _run_lane(self, lane: Lane, generation: int) -> None:
        # each lane starts in its own task: an adapter whose load() hangs holds up its
        # own destination only
        try:
            await lane.start()
        except Exception as exc:  # noqa: BLE001 - a lane that cannot start must not stop the rest
            self._logger.error(
                f"itly: destination {lane.name!r} could not start: {exc!r}; "
                "its events are kept and retried"
            )
        await lane.run(generation)

    def _drain(self) -> None:
        home = self._home
        if home is None:
            return
        home.scheduled = False
        submit = self._submit
        held = home.held
        if held:
            limit = self._delivery.max_queue_size
            while held and all(lane.pending() < limit for lane in self._lanes):
                submit(held[0])
                held.popleft()  # after: other threads counting room never see it in neither
        inbox = home.inbox
        while inbox:
            submit(inbox[0])
            inbox.popleft()

    def _submit(self, event: Event) -> None:
        """On the home loop: give the event a sequence number and queue it per lane."""
        self._seq += 1
        event.seq = self._seq
        for lane in self._lanes:
            lane.put(event)

    def _notify_progress(self) -> None:
        home = self._home
        if home is not None and home.progress is not None:
            home.progress.set()

    def _notify_space(self) -> None:
        """On the home loop: a lane has room again."""
        self._space_signal.set()
        home = self._home
        if home is not None and home.space is not None:
            home.space.set()
            if home.held:
                home.loop.call_soon(self._drain)

    def _full(self) -> bool:
        """Whether some lane has no room, counting events handed over and not drained."""
        home = self._home
        waiting = home.handed() if home is not None else 0
        limit = self._delivery.max_queue_size
        return any(lane.pending() + waiting >= limit for lane in self._lanes)

    async def _await_space(self) -> bool:
        """The ``block`` policy: wait (bounded) until every lane has room; False if the
        wait timed out (the event is then dropped if there is still no room, counted)."""
        if not self._full():
            return True
        home = self._home
        if home is None or home.loop is not asyncio.get_running_loop():
            # the lanes run elsewhere: wait on their loop, from here
            if home is not None and home.alive():
                return await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(self._wait_space_here(), home.loop)
                )
            return True
        return await self._wait_space_here()

    async def _wait_space_here(self) -> bool:
        home = self._home
        if home is None or home.space is None:
            return True
        try:
            async with asyncio.timeout(self._delivery.timeout):
                while self._full():
                    home.space.clear()
                    await home.space.wait()
        except TimeoutError:
            return False  # put() applies drop_newest now, counted as queue_full
        return True

    # --- flush and shutdown ---------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> DeliveryReport:
        """Deliver everything tracked before this call, or give up at ``timeout`` seconds.

        Returns a report; ``report.timed_out`` says whether anything was left pending.
        """
        timeout = DEFAULT_FLUSH_TIMEOUT if timeout is None else timeout
        if self._state is not State.RUNNING and self._state is not State.CLOSING:
            return self._report(False)
        return await self._on_home(lambda: self._flush_here(timeout), timeout)

    async def _on_home(
        self, factory: Callable[[], Coroutine[Any, Any, DeliveryReport]], timeout: float
    ) -> DeliveryReport:
        loop = asyncio.get_running_loop()
        home = self._home
        if home is None or not home.alive():
            if not self._pending() and (home is None or not home.handed()):
                return self._report(False)
            home = self._rehome(loop)
        if home.loop is loop:
            return await factory()
        fut = asyncio.run_coroutine_threadsafe(factory(), home.loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), timeout + 1.0)
        except TimeoutError:
            return self._report(True)

    async def _flush_here(self, timeout: float) -> DeliveryReport:
        self._drain()
        home = self._home
        assert home is not None
        assert home.progress is not None
        target = self._seq
        for lane in self._lanes:
            lane.request_flush(target)
        progress = home.progress
        timed_out = False
        try:
            async with asyncio.timeout(timeout):
                while True:
                    progress.clear()
                    if all(_done(lane, target) for lane in self._lanes):
                        break
                    await progress.wait()
                for lane in self._lanes:
                    if isinstance(lane, AdapterLane):
                        await lane.flush_adapter()
        except TimeoutError:
            timed_out = True
        return self._report(timed_out)

    async def shutdown(self, timeout: float | None = None) -> DeliveryReport:
        """Flush, stop delivery, close connections and adapters; idempotent.

        Never takes much longer than ``timeout`` seconds. Whatever is still queued at the
        deadline is counted as dropped (reason ``shutdown``) and reported. A call made
        while another shutdown is under way waits for that one's report.
        """
        timeout = self._delivery.shutdown_timeout if timeout is None else timeout
        if self._final is not None:
            return self._final
        closing = self._closing
        if closing is not None:
            try:
                return await asyncio.wait_for(asyncio.wrap_future(closing), timeout + 1.0)
            except TimeoutError:
                return self._report(True)
        self._closing = concurrent.futures.Future()
        try:
            report = await self._shutdown(timeout)
        finally:
            # whatever happened (a cancelled caller too), nobody waits for ever
            self._closing.set_result(self._final or self._report(True))
        return report

    async def _shutdown(self, timeout: float) -> DeliveryReport:
        if self._state in (State.NEW, State.DISABLED):
            self._state = State.CLOSED
            self._final = self._report(False)
            return self._final
        self._state = State.CLOSING
        deadline = time.monotonic() + timeout
        # keep a slice of the budget for closing connections and adapters
        reserve = min(0.5, timeout * 0.2)
        report = await self.flush(timeout - reserve)
        remaining = max(deadline - time.monotonic(), reserve)
        home = self._home
        if home is not None and home.alive():
            if home.loop is asyncio.get_running_loop():
                await self._stop_here(remaining)
            else:
                fut = asyncio.run_coroutine_threadsafe(self._stop_here(remaining), home.loop)
                try:
                    await asyncio.wait_for(asyncio.wrap_future(fut), remaining + 0.5)
                except TimeoutError:
                    self._logger.error("itly: shutdown could not stop delivery in time")
        else:
            # no loop delivers now (the last one ended, nothing was pending): no
            # supervisor will close the lanes, so close them here, adapters included
            await asyncio.gather(*(_bounded(lane.close(True), remaining) for lane in self._lanes))
        spool = self._spool
        if spool is not None:
            # a failed spool still holds its lock and its worker: close it all the same
            await spool.aclose(max(deadline - time.monotonic(), 0.5))
        if spool is None or spool.failed:
            left = home.handed() if home is not None else 0
            for lane in self._lanes:
                lane.drop_all("shutdown")
                if left:  # handed over under block, never given room
                    lane.drop_unqueued("shutdown", left)
        # (with a working spool, what is left stays on disk for the next load())
        self._state = State.CLOSED
        self._final = self._report(report.timed_out)
        self._stop_loop_thread()
        return self._final

    def _stop_loop_thread(self) -> None:
        thread = self._loop_thread
        # from inside the thread's own loop, leave it to the blocking caller to stop it
        if thread is not None and thread.thread_id != threading.get_ident():
            self._loop_thread = None
            thread.stop()

    async def _stop_here(self, timeout: float) -> None:
        home = self._home
        if home is None or home.supervisor is None:
            return
        self._generation += 1
        for lane in self._lanes:
            lane.generation = self._generation  # stop the runs at their next turn
            lane.closing = True
        home.supervisor.cancel()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(home.supervisor, return_exceptions=True)
        except TimeoutError:
            self._logger.error("itly: destinations did not close within the shutdown timeout")

    def shutdown_blocking(self, timeout: float | None = None) -> DeliveryReport:
        """``shutdown`` for synchronous code (the exit hook, ``SyncClient.shutdown``)."""
        t = self._delivery.shutdown_timeout if timeout is None else timeout
        if self._final is not None:
            return self._final
        closing = self._closing
        if closing is not None:  # another thread's shutdown is under way
            try:
                return closing.result(t + 1.0)
            except concurrent.futures.TimeoutError:
                return self._report(True)
        if self._state is State.RUNNING:
            report = self._run_blocking(lambda: self.shutdown(t), t)
        else:  # nothing to deliver: no loop needed
            report = _complete(self.shutdown(t))
        self._stop_loop_thread()
        return report

    def flush_blocking(self, timeout: float | None = None) -> DeliveryReport:
        """``flush`` for synchronous code."""
        t = DEFAULT_FLUSH_TIMEOUT if timeout is None else timeout
        home = self._home
        idle = not self._pending() and (home is None or not home.handed())
        if self._state is not State.RUNNING or (idle and (home is None or not home.alive())):
            return self._report(False)
        return self._run_blocking(lambda: self.flush(t), t)

    def _run_blocking(
        self, factory: Callable[[], Coroutine[Any, Any, DeliveryReport]], timeout: float
    ) -> DeliveryReport:
        """Run ``flush`` or ``shutdown`` to the end from synchronous code, bounded.

        On the home loop when it runs in another thread. A thread that runs a loop itself
        (sync code called from async code) cannot run another one, and when that loop is
        home it cannot deliver while this call blocks it: delivery moves to the private
        loop thread first. Otherwise (a script, the exit hook): a fresh loop, right here.
        """
        home = self._home
        here = threading.get_ident()
        if _loop_running() and (home is None or not home.alive() or home.thread_id == here):
            if home is not None and home.alive():
                self._logger.info(
                    "itly: a blocking flush()/shutdown() was called on the event loop that "
                    "delivers; delivery moves to a private thread (prefer await flush())"
                )
            home = self._rehome(None, move=True)
        try:
            report: DeliveryReport = run_blocking(factory, home, timeout + 2.0)
        except concurrent.futures.TimeoutError:
            report = self._report(True)
        return report

    # --- stats --------------------------------------------------------------------------

    def _pending(self) -> int:
        return sum(lane.pending() for lane in self._lanes)

    def stats(self) -> Stats:
        """Counters since ``load()``: enqueued, sent, retried, rejected, dropped, pending."""
        per = {
            lane.name: lane.tally.snapshot(lane.pending(), lane.paused_reason)
            for lane in self._lanes
        }
        dropped_by_reason: Counter[str] = Counter()
        for d in per.values():
            dropped_by_reason.update(d.dropped_by_reason)
        return Stats(
            enqueued=sum(d.enqueued for d in per.values()),
            sent=sum(d.sent for d in per.values()),
            retried=sum(d.retried for d in per.values()),
            rejected=sum(d.rejected for d in per.values()),
            dropped=sum(d.dropped for d in per.values()),
            pending=sum(d.pending for d in per.values()),
            validation_errors=self._validation_errors,
            adapter_errors=sum(lane.tally.adapter_errors for lane in self._lanes),
            dropped_by_reason=dict(dropped_by_reason),
            destinations=per,
        )

    def _report(self, timed_out: bool) -> DeliveryReport:
        self._ratelimit.report_held()  # a report is the moment to say what was held back
        stats = self.stats()
        return DeliveryReport(
            delivered=stats.sent,
            rejected=stats.rejected,
            dropped=stats.dropped,
            pending=stats.pending,
            spooled=stats.pending if self._spool is not None and not self._spool.failed else 0,
            timed_out=timed_out,
            rejections=tuple(self._rejections.items),
            stats=stats,
        )

    @property
    def state(self) -> str:
        """``new``, ``running``, ``disabled``, ``closing`` or ``closed``."""
        return self._state.value

    # --- process events -----------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        if self._spool is not None:
            # the parent owns the spool file; the child keeps its events in memory
            self._spool.forget_after_fork()
            self._spool = None
            self._spool_wait = False
            self._plain = not self._block
            for lane in self._lanes:
                lane.on_done = None
        self._space_signal = threading.Event()
        self._lock = threading.Lock()
        self._home = None
        self._loop_thread = None
        self._generation += 1
        for lane in self._lanes:
            lane.forget_all()
            lane.generation = self._generation

    def _at_exit(self) -> None:
        if self._state is not State.RUNNING:
            return
        home = self._home
        if not self._pending() and (home is None or not home.handed()):
            self._state = State.CLOSED
            return
        report = self.shutdown_blocking(self._delivery.shutdown_timeout)
        if not report.complete:
            self._logger.warn(
                f"itly: at exit {report.delivered} delivered, {report.rejected} rejected, "
                f"{report.dropped} dropped, {report.pending} pending"
            )


def _explained(
    errors: list[PropertyError], validator: Validator, props: Mapping[str, Any]
) -> list[PropertyError]:
    """Conversion errors, then the plan's rules broken, each path said once: a value that
    could not be sent was replaced by null, and that null's type error would mislead."""
    said = {e.path for e in errors}
    return [*errors, *(e for e in validator.explain(props) if e.path not in said)]


def _complete(coro: Coroutine[Any, Any, DeliveryReport]) -> DeliveryReport:
    """Run a coroutine that never suspends (a shutdown with nothing to deliver)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: DeliveryReport = done.value
        return result
    coro.close()
    raise RuntimeError("expected a coroutine that completes without suspending")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _done(lane: Lane, target: int) -> bool:
    """Whether ``flush`` has nothing more to wait for from this lane: it holds nothing
    tracked up to ``target``, or it is refused for a configuration error (nothing will
    change before its next probe, minutes away; the report says it is refusing)."""
    if lane.paused_reason:
        return True
    low = lane.min_outstanding()
    return low is None or low > target


async def _bounded(aw: Awaitable[None], timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await aw
    except TimeoutError:
        pass


_hooks_installed = False


def _install_process_hooks() -> None:
    """Once per process: flush at exit, reset after fork."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    # Our exit hook must run while threads and executors still work (aiohttp resolves
    # names through the default executor): threading's exit hooks run before those shut
    # down, in reverse order of registration, so import the executor module first.
    import concurrent.futures.thread  # noqa: F401

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_exit_all)
    else:  # pragma: no cover - other interpreters
        import atexit

        atexit.register(_exit_all)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_fork_all)


def _exit_all() -> None:
    for client in list(_CLIENTS):
        try:
            client._at_exit()
        except Exception as exc:  # noqa: BLE001 - exit must go on; say what happened
            client._logger.error(f"itly: exit flush failed: {exc!r}")


def _fork_all() -> None:
    new_id.reseed()
    for client in list(_CLIENTS):
        client._after_fork_in_child()
