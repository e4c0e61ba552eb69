"""Where a client's delivery runs: its *home* event loop, and the private loop thread.

A client delivers on one loop at a time. The async API makes the caller's running loop
home on first use; the sync API makes a private loop in a daemon thread home. A call from
any other thread hands its event over without waiting (``handoff``); a home whose loop has
closed (``asyncio.run`` returned) is replaced on the next call, and the events it still
held are delivered from the new home.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ._event import Event


class Home:
    """One loop that runs a client's lanes, and the inbox other threads hand events to."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int, generation: int) -> None:
        self.loop = loop
        self.thread_id = thread_id
        self.generation = generation
        self.inbox: deque[Event] = deque()
        #: handed over under the ``block`` policy by callers that waited for room: never
        #: dropped for want of room, submitted as room appears (``Client._drain``)
        self.held: deque[Event] = deque()
        self.scheduled = False
        self.supervisor: asyncio.Task[None] | None = None
        self.progress: asyncio.Event | None = None
        self.space: asyncio.Event | None = None
        self.started = False

    def alive(self) -> bool:
        loop = self.loop
        return not loop.is_closed() and loop.is_running()

    def handed(self) -> int:
        """Events handed over and not drained yet."""
        return len(self.inbox) + len(self.held)

    def handoff(self, event: Event, drain: Callable[[], None], *, held: bool = False) -> None:
        """Queue an event from another thread; schedule one drain per burst, not per event."""
        (self.held if held else self.inbox).append(event)
        if not self.scheduled:
            self.scheduled = True
            try:
                self.loop.call_soon_threadsafe(drain)
            except RuntimeError:  # the loop closed under us: the next call rebinds
                self.scheduled = False


class LoopThread:
    """A private event loop running forever in a daemon thread (the sync shim's home)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="itly-async", daemon=True)
        self.thread.start()
        self._ready.wait()
        assert self.thread.ident is not None
        self.thread_id: int = self.thread.ident

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def alive(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def stop(self, timeout: float = 1.0) -> None:
        if self.thread.ident == threading.get_ident():
            self.loop.stop()
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            return
        self.thread.join(timeout)


def run_blocking(coro_factory: Callable[[], Any], home: Home | None, timeout: float) -> Any:
    """Run a coroutine to completion from synchronous code, on ``home`` when it is alive
    in another thread, else on a fresh loop in this thread."""
    if home is not None and home.alive() and home.thread_id != threading.get_ident():
        fut = asyncio.run_coroutine_threadsafe(coro_factory(), home.loop)
        return fut.result(timeout)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_factory())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
