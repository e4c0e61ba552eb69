"""The logger protocol, the default logger, and rate-limited loss logging."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ItlyLogger(Protocol):
    """What ``Options(logger=...)`` needs: four methods taking a message string.

    Example::

        class PrintLogger:
            def debug(self, message: str) -> None: print("debug", message)
            def info(self, message: str) -> None: print("info", message)
            def warn(self, message: str) -> None: print("warn", message)
            def error(self, message: str) -> None: print("error", message)
    """

    def debug(self, message: str) -> None: ...
    def info(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...


class StdLogger:
    """The default: the standard library's ``logging.getLogger("itly")``."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("itly")

    def debug(self, message: str) -> None:
        self._log.debug(message)

    def info(self, message: str) -> None:
        self._log.info(message)

    def warn(self, message: str) -> None:
        self._log.warning(message)

    def error(self, message: str) -> None:
        self._log.error(message)


class RateLimitedLog:
    """Logs the first occurrence of each key at once, then at most once per ``interval``.

    A flood of drops during an outage becomes one line per reason every few seconds, each
    saying how many occurrences it stands for; nothing is hidden, only summarised. What is
    held back when the flood stops is said by ``report_held`` (the client calls it with
    every ``flush``/``shutdown`` report), and when more than ``max_keys`` keys are live the
    oldest is reported and forgotten, so a key carrying varied text cannot grow memory.
    """

    def __init__(
        self,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 256,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._max_keys = max_keys
        #: key -> [time of the last line, occurrences held since, emitter, last message]
        self._keys: dict[str, list[Any]] = {}

    def __call__(self, emit: Callable[[str], None], key: str, message: str, count: int = 1) -> None:
        now = self._clock()
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self._interval:
            entry[1] += count
            entry[2], entry[3] = emit, message
            return
        held = entry[1] if entry is not None else 0
        self._keys.pop(key, None)  # re-inserted last: the dict stays in order of use
        self._keys[key] = [now, 0, emit, message]
        if held:
            message = f"{message} (and {held} more since the last report)"
        emit(message)
        while len(self._keys) > self._max_keys:
            self._say_held(next(iter(self._keys)), forget=True)

    def report_held(self) -> None:
        """Say what is held back for every key, now (a flush, a shutdown)."""
        for key in list(self._keys):
            self._say_held(key, forget=False)

    def _say_held(self, key: str, *, forget: bool) -> None:
        entry = self._keys.pop(key) if forget else self._keys[key]
        held = entry[1]
        if held:
            entry[1] = 0
            entry[2](f"{entry[3]} (and {held} more like it since the last report)")
