"""What every measuring process shares: the result line, the sink client, RSS, percentiles.

Standard library only: the peers' interpreter imports this module too.

A measuring process is started by the orchestrator (``_main.py``) and prints exactly one
line starting with ``RESULT `` followed by JSON; everything else it prints is diagnostics.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Sequence
from typing import Any

RESULT_MARK = "RESULT "


def emit(result: dict[str, Any]) -> None:
    """Print the process's one result line and flush it."""
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def finish(result: dict[str, Any]) -> None:
    """Emit and leave at once: a client stuck on a hanging sink must not delay the exit
    (the peers' exit hooks would wait for their HTTP timeouts)."""
    emit(result)
    sys.stderr.flush()
    os._exit(0)


class Sink:
    """The loopback sink's control API (``sink.py``), over plain ``urllib``.

    ``time.monotonic()`` is CLOCK_MONOTONIC on Linux, one clock for every process, so the
    sink's acknowledgement times compare directly with a caller's ``time.monotonic()``.
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, timeout: float = 10.0) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data

    def reset(self) -> dict[str, Any]:
        """Zero the counters and release every hanging request."""
        return self._get("/_reset")

    def stats(self) -> dict[str, Any]:
        return self._get("/_stats")

    def wait(self, events: int, timeout: float) -> dict[str, Any]:
        """Block until the sink has acknowledged ``events`` events, or ``timeout`` passes;
        return its counters (``events``, ``requests``, ``first_at``, ``last_ack``, ...)."""
        return self._get(f"/_wait?events={events}&timeout={timeout}", timeout=timeout + 10.0)


def _status_kib(field: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss() -> int:
    """Resident set size of this process now, in bytes."""
    return _status_kib("VmRSS:")


def peak_rss() -> int:
    """The most this process has had resident, in bytes."""
    return _status_kib("VmHWM:")


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of an already sorted sequence, nearest-rank."""
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[k])


def call_figures(times_ns: list[int]) -> dict[str, float]:
    """Per-call figures of one timed loop, in microseconds."""
    ordered = sorted(times_ns)
    n = len(ordered)
    return {
        "mean_us": sum(ordered) / n / 1000.0,
        "p50_us": percentile(ordered, 0.50) / 1000.0,
        "p99_us": percentile(ordered, 0.99) / 1000.0,
        "max_us": ordered[-1] / 1000.0,
    }


def delivery_figures(n: int, t_first: float, sink_stats: dict[str, Any]) -> dict[str, Any]:
    """Delivered throughput of one run: events from the first call to the sink's last
    acknowledgement. ``delivered`` below ``n`` means the SDK lost events (or timed out)."""
    delivered = int(sink_stats["events"])
    last = sink_stats.get("last_ack")
    span = (last - t_first) if last is not None else float("nan")
    return {
        "delivered": delivered,
        "requests": int(sink_stats["requests"]),
        "seconds_to_last_ack": span,
        "events_per_s": delivered / span if span and span > 0 else 0.0,
    }


def delivery_timeout(n: int) -> float:
    """Seconds a run of ``n`` events may take to reach the sink before it counts as lost:
    generous (1,000 events/s, a tenth of what the slowest peer delivers) but bounded, so
    a broken SDK cannot stall the whole benchmark."""
    return max(15.0, n / 1000.0)
