"""cProfile of our tracking paths: ``python -m benchmarks.profiling [--calls N]``.

Four profiles, each against the loopback sink, printed (top functions by own time) and
written to ``results/profile-<name>.txt``:

``async-track``     the caller's side of ``await client.track()``: N calls with no yield,
                    so the lane does nothing while the profiler runs
``async-delivery``  the lane delivering those N events: ``await client.flush()``
``sync-track``      the caller's thread in ``SyncClient.track()``
``sync-loop``       the private loop thread while it takes those events and delivers them
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks._harness import Sink
from benchmarks.ours import loaded_client
from benchmarks.workload import EVENT_NAME, USER_ID, properties
from itly_async import SyncClient

TOP = 18


def _report(name: str, prof: cProfile.Profile, calls: int, out: Path) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    total = stats.total_tt  # type: ignore[attr-defined]
    buf.write(
        f"== {name}: {calls:,} events, {total:.3f} s profiled, "
        f"{total / calls * 1e6:.1f} us per event under cProfile\n"
    )
    stats.sort_stats("tottime").print_stats(TOP)
    text = buf.getvalue()
    (out / f"profile-{name}.txt").write_text(text)
    return text


async def _async(sink: Sink, n: int) -> tuple[cProfile.Profile, cProfile.Profile]:
    client = loaded_client(sink.url + "/2/httpapi", 2 * n)
    await client.track(USER_ID, EVENT_NAME, properties(0))
    await client.flush(10.0)
    track_prof = cProfile.Profile()
    track_prof.enable()
    for i in range(n):
        await client.track(
            USER_ID,
            EVENT_NAME,
            {"name": "checkout", "count": i, "ratio": 0.25, "enabled": True, "tags": ["a", "b"]},
        )
    track_prof.disable()
    deliver_prof = cProfile.Profile()
    deliver_prof.enable()
    await client.flush(120.0)
    deliver_prof.disable()
    await client.shutdown(10.0)
    return track_prof, deliver_prof


def _sync(sink: Sink, n: int) -> tuple[cProfile.Profile, cProfile.Profile]:
    loop_prof = cProfile.Profile()

    def start_profiler(frame: FrameType, event: str, arg: Any) -> None:
        # threading.setprofile installs this in the next thread started (the client's
        # loop thread); it swaps itself for cProfile there
        sys.setprofile(None)
        loop_prof.enable()

    threading.setprofile(start_profiler)
    sync = SyncClient(loaded_client(sink.url + "/2/httpapi", 2 * n))
    sync.track(USER_ID, EVENT_NAME, properties(0))
    threading.setprofile(None)
    sync.flush(10.0)
    track_prof = cProfile.Profile()
    track_prof.enable()
    for i in range(n):
        sync.track(
            USER_ID,
            EVENT_NAME,
            {"name": "checkout", "count": i, "ratio": 0.25, "enabled": True, "tags": ["a", "b"]},
        )
    track_prof.disable()
    sync.flush(120.0)
    sync.shutdown(10.0)
    return track_prof, loop_prof


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks._main import RESULTS, SinkProcess

    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = args.calls
    with SinkProcess() as proc:
        sink = Sink(proc.url)
        track, deliver = asyncio.run(_async(sink, n))
        print(_report("async-track", track, n, out))
        print(_report("async-delivery", deliver, n, out))
        strack, sloop = _sync(sink, n)
        print(_report("sync-track", strack, n, out))
        print(_report("sync-loop", sloop, n, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
