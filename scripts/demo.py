"""``make demo``: tracking plan -> generated package -> events at a local collector.

Steps, each printed as it runs:

1. ``itly pull backend --plan examples/tracking-plan.json --out build/demo`` (``build/``
   is git-ignored);
2. start the Amplitude/Segment-compatible collector, ``python -m itly_async.testing
   --port 0``, and read the port it prints;
3. run ``examples/service.py`` (asyncio) and ``examples/script.py`` (blocking, threads)
   with ``ITLY_AMPLITUDE_URL`` / ``ITLY_SEGMENT_HOST`` pointing at the collector;
4. fetch ``GET /_summary`` and print what arrived, per event and destination;
5. ``itly status``: which events of the plan the two programs call.

Exits 0 when both programs succeeded and every tracked event arrived; the collector and
any program still running are stopped on every path out, errors and Ctrl-C included.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
#: where the package is generated; tests point it elsewhere
BUILD = Path(os.environ.get("ITLY_DEMO_BUILD", ROOT / "build" / "demo")).resolve()
PLAN = ROOT / "examples" / "tracking-plan.json"
SOURCE = "backend"
AMPLITUDE_PATH = "/2/httpapi"  # the collector's Amplitude HTTP V2 endpoint

STARTUP_TIMEOUT = 20.0  # seconds for the collector to print its address
PROGRAM_TIMEOUT = 120.0  # seconds each example program may run
STOP_TIMEOUT = 10.0  # seconds the collector gets to exit after SIGTERM


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def pull() -> None:
    out = BUILD.relative_to(ROOT) if BUILD.is_relative_to(ROOT) else BUILD
    step(f"itly pull {SOURCE} --plan {PLAN.relative_to(ROOT)} --out {out}")
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603 - our own interpreter and arguments, no shell
        [sys.executable, "-m", "codegen", "pull", SOURCE, "--plan", str(PLAN), "--out", str(BUILD)],
        cwd=ROOT,
        check=True,
        timeout=PROGRAM_TIMEOUT,
    )


def _first_line(stream: IO[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"the collector printed nothing within {timeout:.0f} s") from None


def start_collector() -> tuple[subprocess.Popen[str], str]:
    step("start the collector: python -m itly_async.testing --port 0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "itly_async.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = _first_line(proc.stdout, STARTUP_TIMEOUT).strip()
    if not line.startswith("listening on http://"):
        proc.kill()
        raise RuntimeError(f"unexpected first line from the collector: {line!r}")
    url = line.removeprefix("listening on ")
    print(f"collector at {url}")
    return proc, url


def run_program(path: str, url: str) -> int:
    step(f"python {path}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BUILD), env.get("PYTHONPATH")]))
    env["ITLY_AMPLITUDE_URL"] = url + AMPLITUDE_PATH
    env["ITLY_SEGMENT_HOST"] = url
    # subprocess.run kills the program if it outlives the timeout
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments, no shell
        [sys.executable, str(ROOT / path)], cwd=ROOT, env=env, timeout=PROGRAM_TIMEOUT, check=False
    ).returncode


def fetch_summary(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_summary", timeout=10) as response:  # noqa: S310 - our own loopback collector
        summary: dict[str, Any] = json.load(response)
    return summary


def table(summary: dict[str, Any]) -> list[str]:
    """Rows of events (plan order first), one column per destination."""
    amplitude: dict[str, int] = summary["amplitude"]["by_event_type"]
    segment_types: dict[str, int] = summary["segment"]["by_type"]
    segment: dict[str, int] = dict(summary["segment"]["by_event"])
    plan_events = [e["name"] for e in json.loads(PLAN.read_text())["events"]]
    names = [n for n in plan_events if n in amplitude or n in segment]
    names += sorted((set(amplitude) | set(segment)) - set(names) - {"$identify", "$groupidentify"})
    rows = [(name, amplitude.get(name, 0), segment.get(name, 0)) for name in names]
    rows.append(("identify *", amplitude.get("$identify", 0), segment_types.get("identify", 0)))
    rows.append(("group", amplitude.get("$groupidentify", 0), segment_types.get("group", 0)))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'event':<{width}}  {'amplitude':>9}  {'segment':>7}"]
    lines.append("-" * len(lines[0]))
    lines += [f"{name:<{width}}  {a:>9}  {s:>7}" for name, a, s in rows]
    lines.append("-" * len(lines[0]))
    total_a = summary["amplitude"]["events"]
    total_s = summary["segment"]["messages"]
    lines.append(f"{'total':<{width}}  {total_a:>9}  {total_s:>7}")
    lines.append("* Amplitude counts a $identify for every identify call and for every group")
    lines.append("  call (which sets the user's group); Segment has one message per call.")
    return lines


def stop(proc: subprocess.Popen[str] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.communicate(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def main() -> int:
    collector: subprocess.Popen[str] | None = None
    try:
        pull()
        collector, url = start_collector()
        codes = [run_program("examples/service.py", url), run_program("examples/script.py", url)]
        summary = fetch_summary(url)
        step("what the collector received")
        for line in table(summary):
            print(line)
        step(f"itly status --plan {PLAN.relative_to(ROOT)} --source {SOURCE} examples")
        status = ["status", "--plan", str(PLAN), "--source", SOURCE, "examples"]
        subprocess.run(  # noqa: S603 - our own interpreter and arguments, no shell
            [sys.executable, "-m", "codegen", *status],
            cwd=ROOT,
            timeout=PROGRAM_TIMEOUT,
            check=False,  # informational: a missing event is not a failed demo
        )
        failed = [p for p, c in zip(("service.py", "script.py"), codes, strict=True) if c != 0]
        if failed:
            print(f"\ndemo: FAILED: {', '.join(failed)} exited with an error")
            return 1
        if summary["amplitude"]["events"] == 0 or summary["segment"]["messages"] == 0:
            print("\ndemo: FAILED: the collector received nothing")
            return 1
    except (subprocess.SubprocessError, OSError, RuntimeError) as error:
        print(f"\ndemo: FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        return 130
    finally:
        stop(collector)
    print("\ndemo: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
