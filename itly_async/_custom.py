"""Custom destinations: calling a user's adapter without letting it hurt anyone.

Adapter methods may be sync or async. Async methods run on the home loop under a
timeout; sync methods run in a worker thread (they may block: a logger writing to disk,
a vendor SDK doing I/O), so the event loop never waits on them. A method that raises or
times out is logged, counted in ``stats().adapter_errors`` and, for an event, reported as a
rejection; the other destinations never notice.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from ._event import GROUP, IDENTIFY, TRACK, Event
from ._logger import ItlyLogger, RateLimitedLog
from ._stats import Tally
from ._threads import Workers


class AdapterCaller:
    """Invokes one adapter's plugin methods with isolation and a timeout."""

    def __init__(
        self,
        name: str,
        adapter: object,
        load_arg: object,
        timeout: float,
        logger: ItlyLogger,
        ratelimit: RateLimitedLog | None = None,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.load_arg = load_arg
        self.timeout = timeout
        self.logger = logger
        self.ratelimit = ratelimit or RateLimitedLog()
        self.loaded = False
        # two threads: one hung call does not stop the next batch from being tried
        self.workers = Workers(f"itly-adapter-{name}", limit=2)

    def reset_after_fork(self) -> None:
        self.workers = Workers(f"itly-adapter-{self.name}", limit=2)

    def _method(self, name: str) -> Callable[..., Any] | None:
        method = getattr(self.adapter, name, None)
        return method if callable(method) else None

    async def _call(self, method_name: str, tally: Tally, *args: Any) -> str | None:
        """Call one method; return None on success or a reason string on failure."""
        method = self._method(method_name)
        if method is None:
            return None
        try:
            async with asyncio.timeout(self.timeout):
                if inspect.iscoroutinefunction(method):
                    await method(*args)
                else:
                    result = await self.workers.run(method, *args)
                    if inspect.isawaitable(result):
                        await result
        except TimeoutError:
            reason, detail = f"adapter {method_name}() timed out after {self.timeout:g} s", ""
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - adapter is user code: isolate what it raises
            reason, detail = _raised(method_name, exc)
        else:
            return None
        self._report(tally, reason, detail)
        return reason

    async def load(self, tally: Tally) -> None:
        if not self.loaded:
            self.loaded = True
            await self._call("load", tally, self.load_arg)

    def _plugin_call(self, event: Event) -> tuple[str, tuple[Any, ...]]:
        kind = event.kind
        if kind == TRACK:
            return "track", (event.user_id, event)
        if kind == IDENTIFY:
            return "identify", (event.user_id, event.properties)
        if kind == GROUP:
            return "group", (event.user_id, event.group_id, event.properties)
        return "alias", (event.user_id, event.previous_id)

    async def send_batch(self, events: list[Event], tally: Tally) -> dict[int, str]:
        """Deliver a batch; return the index -> reason of each event the adapter failed.

        Sync methods run together in one worker thread (one hop per batch, not per
        event); async methods are awaited one by one, each under the timeout.
        """
        calls = [self._plugin_call(ev) for ev in events]
        if all(not inspect.iscoroutinefunction(self._method(name)) for name, _ in calls):
            bound = [(self._method(name), name, args) for name, args in calls]
            try:
                async with asyncio.timeout(self.timeout):
                    outcomes = await self.workers.run(_run_sync_batch, bound)
            except TimeoutError:
                reason = f"adapter timed out after {self.timeout:g} s"
                outcomes = [(reason, "")] * len(events)
            failed: dict[int, str] = {}
            for index, outcome in enumerate(outcomes):
                if outcome is not None:
                    failed[index] = outcome[0]
                    self._report(tally, *outcome)
            return failed
        failures: dict[int, str] = {}
        for index, (name, args) in enumerate(calls):
            failure = await self._call(name, tally, *args)
            if failure is not None:
                failures[index] = failure
        return failures

    def _report(self, tally: Tally, reason: str, detail: str = "") -> None:
        """Count and log one failed call; ``reason`` is bounded (it keys counters and the
        rate limit), ``detail`` is what the adapter said."""
        tally.adapter_errors += 1
        said = f"{reason}: {detail}" if detail else reason
        self.ratelimit(
            self.logger.error, f"{self.name}:{reason}", f"itly: destination {self.name!r}: {said}"
        )

    async def flush(self, tally: Tally) -> None:
        await self._call("flush", tally)

    async def shutdown(self, tally: Tally) -> None:
        await self._call("shutdown", tally)


def _raised(method: str, exc: Exception) -> tuple[str, str]:
    """(reason, detail) for an adapter call that raised: the exception's type is the
    reason (a small set, counted); its message is the detail (any text, logged)."""
    return f"adapter {method}() raised {type(exc).__name__}", str(exc)[:200]


def _run_sync_batch(
    calls: list[tuple[Callable[..., Any] | None, str, tuple[Any, ...]]],
) -> list[tuple[str, str] | None]:
    """Each call's (reason, detail) if it raised, else None."""
    outcomes: list[tuple[str, str] | None] = []
    for method, name, args in calls:
        if method is None:
            outcomes.append(None)
            continue
        try:
            method(*args)
        except Exception as exc:  # noqa: BLE001 - user code: isolate it; the loop reports it
            outcomes.append(_raised(name, exc))
        else:
            outcomes.append(None)
    return outcomes
