"""The logger protocol, the default logger, and rate-limited loss logging."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


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
    saying how many occurrences it stands for; nothing is hidden, only summarised.
    """

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, emit: Callable[[str], None], key: str, message: str, count: int = 1) -> None:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + count
            return
        self._last[key] = now
        held = self._suppressed.pop(key, 0)
        if held:
            message = f"{message} (and {held} more since the last report)"
        emit(message)
