"""The orchestrator behind ``python -m benchmarks``.

It makes sure the peers' venv exists, starts the loopback sink, measures the sink's
ceiling, runs every measurement in a fresh process (ours in this interpreter's venv, the
peers in ``benchmarks/.venv-peers``), prints one table and writes
``benchmarks/results/latest.json``. A measurement that fails is reported in the table and
the JSON; the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from benchmarks import _plan200, _report, _venv
from benchmarks._harness import RESULT_MARK
from benchmarks.peers import IMPORT_SNIPPETS, PEERS, PINS
from benchmarks.workload import FULL, QUICK, Params

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SCENARIOS = ("ceiling", "calls", "lag", "memory", "validate", "load")
#: Other processes using more than this share of the CPUs during a run make its figures
#: pessimistic: the run goes on, and the table says so.
BUSY_SHARE = 0.05
#: Longest one measuring process may run before it is counted as failed.
PROCESS_TIMEOUT = 300.0


class BenchError(Exception):
    """A measuring process failed; the message carries the end of its stderr."""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """(measuring, sink) CPU sets: the sink gets the last CPU to itself, so it neither
    slows the SDK under test nor is slowed by it. None where affinity is unsupported."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None, None
    if len(cpus) < 2:
        return None, None
    return set(cpus[:-1]), {cpus[-1]}


MEASURED_CPUS, SINK_CPUS = _cpu_split()


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus is not None:
        with contextlib.suppress(OSError):  # the process already exited
            os.sched_setaffinity(pid, cpus)


def run_result(
    cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = PROCESS_TIMEOUT
) -> dict[str, Any]:
    """Run one measuring process from the repository root, on the measuring CPUs; return
    its RESULT."""
    proc = subprocess.Popen(
        list(cmd),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pin(proc.pid, MEASURED_CPUS)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise BenchError(f"timed out after {timeout:.0f} s: {' '.join(cmd[:4])}") from exc
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    tail = " | ".join((stderr or stdout).strip().splitlines()[-3:])
    raise BenchError(f"exit {proc.returncode}, no result: {tail}")


class CpuWitness:
    """How much CPU *other* processes used while the benchmark ran: the machine's busy
    time (``/proc/stat``) minus ours (this process and its children, the sink included).
    Anything well above zero means the figures are pessimistic."""

    def __init__(self) -> None:
        self.busy0, self.ours0, self.t0 = self._busy(), self._ours(), time.monotonic()

    @staticmethod
    def _busy() -> float | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user, nice, system, (idle, iowait,) irq, softirq; steal is the hypervisor's
        busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
        return busy / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def others_share(self) -> float | None:
        """Other processes' CPU time as a share of the machine's capacity so far."""
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        others = (busy - self.busy0) - (self._ours() - self.ours0)
        capacity = (time.monotonic() - self.t0) * (os.cpu_count() or 1)
        return max(others, 0.0) / capacity if capacity > 0 else None


def attempt(what: str, fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    """Run one measurement; a failure becomes ``{"error": ...}`` and a log line."""
    t0 = time.monotonic()
    log(what)
    try:
        result: dict[str, Any] = fn(*args, **kw)
    except (BenchError, OSError, ValueError) as exc:
        log(f"  FAILED: {exc}")
        return {"error": str(exc)}
    log(f"  done in {time.monotonic() - t0:.1f} s")
    return result


class SinkProcess:
    """``python -m benchmarks.sink`` for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SinkProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sink"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        pin(self.proc.pid, SINK_CPUS)
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        line = out.readline().strip()
        if not line.startswith("listening on "):
            self.__exit__()
            raise BenchError(f"the sink did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# --- the measurements -----------------------------------------------------------------


def measure_calls(peers_py: Path | None, url: str, p: Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pj = p.to_json()
    for mode in ("async", "sync"):
        cmd = [sys.executable, "-m", "benchmarks.ours", f"calls-{mode}", "--params", pj]
        out[f"ours-{mode}"] = attempt(
            f"calls: ours {mode} ({p.runs} x {p.calls:,} calls)",
            run_result,
            [*cmd, "--sink", url],
        )
    with tempfile.TemporaryDirectory(prefix="itly-bench-event-") as tmp:
        ok, why = _plan200.generate_with_codegen(
            Path(tmp), _plan200.bench_event_document(), _plan200.EVENT_PACKAGE
        )
        if ok:
            cmd = [sys.executable, "-m", "benchmarks.ours", "calls-generated", "--params", pj]
            out["ours-generated"] = attempt(
                f"calls: ours, generated function ({p.runs} x {p.calls:,} calls)",
                run_result,
                [*cmd, "--sink", url, "--package-dir", tmp],
            )
        else:
            out["ours-generated"] = {"error": f"itly pull failed: {why}"}
    if peers_py is not None:
        for sdk in PEERS:
            cmd = [str(peers_py), "-m", "benchmarks.peers", "calls", "--sdk", sdk]
            out[sdk] = attempt(
                f"calls: {sdk} ({p.runs} x {p.calls:,} calls)",
                run_result,
                [*cmd, "--params", pj, "--sink", url],
            )
    return out


def measure_memory(peers_py: Path | None, url: str, p: Params) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    pj = p.to_json()
    jobs: list[tuple[str, list[str]]] = [
        (
            f"ours-{mode}",
            [sys.executable, "-m", "benchmarks.ours", "memory", "--mode", mode, "--params", pj],
        )
        for mode in ("hang", "refused", "outage")
    ]
    if peers_py is not None:
        jobs += [
            (sdk, [str(peers_py), "-m", "benchmarks.peers", "memory", "--sdk", sdk, "--params", pj])
            for sdk in PEERS
        ]
    for key, cmd in jobs:
        out[key] = [
            attempt(
                f"memory: {key}, {p.mem_events:,} events queued (process {i + 1}/{p.mem_runs})",
                run_result,
                [*cmd, "--sink", url],
                timeout=120.0,
            )
            for i in range(p.mem_runs)
        ]
    return out


def measure_validate(peers_py: Path | None, p: Params) -> dict[str, Any]:
    pj = p.to_json()
    out = {
        "ours": attempt(
            "validation: fastjsonschema (ours)",
            run_result,
            [sys.executable, "-m", "benchmarks.ours", "validate", "--params", pj],
        )
    }
    if peers_py is not None:
        out["legacy"] = attempt(
            "validation: jsonschema (legacy itly)",
            run_result,
            [str(peers_py), "-m", "benchmarks.peers", "validate", "--params", pj],
        )
    return out


def _load_env(pythonpath: str, pycache: Path) -> dict[str, str]:
    """A fresh process that keeps its bytecode, as an installed package would: this
    workplace sets PYTHONDONTWRITEBYTECODE, which would make every import compile from
    source. The cache goes to results/, never next to the sources."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYTHONPATH"] = pythonpath
    return env


def measure_load(peers_py: Path | None, url: str, p: Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pycache = RESULTS / "pycache"
    with tempfile.TemporaryDirectory(prefix="itly-bench-") as tmp:
        log("import + load: preparing the 200-event packages")
        made = _plan200.prepare(Path(tmp))
        out["how"] = made["how"]
        log(f"  precompiled package: {made['how']}")
        env = _load_env(tmp, pycache)
        jobs: list[tuple[str, list[str], dict[str, str]]] = [
            (
                key,
                [
                    sys.executable,
                    "-c",
                    _plan200.LOAD_SNIPPET.format(package=made[package], before=before),
                ],
                env,
            )
            for key, package, before in (
                ("precompiled", "precompiled", "pass"),
                ("asyncio_loaded", "precompiled", "import asyncio"),
                ("dicts", "dicts", "pass"),
            )
        ]
        if peers_py is not None:
            peer_env = _load_env("", pycache)
            for sdk, snippet in IMPORT_SNIPPETS.items():
                code = _peer_load_code(snippet.format(url=url))
                jobs.append((sdk, [str(peers_py), "-c", code], peer_env))
        for key, cmd, job_env in jobs:
            runs = []
            for i in range(p.load_runs + 1):  # the first writes the bytecode cache
                r = attempt(
                    f"import + load: {key} (process {i + 1}/{p.load_runs + 1})",
                    run_result,
                    cmd,
                    env=job_env,
                    timeout=120.0,
                )
                if i > 0:
                    runs.append(r)
            out[key] = runs
    return out


def _peer_load_code(snippet: str) -> str:
    body = "\n".join("    " + line for line in snippet.splitlines())
    return (
        "import time\n"
        "t0 = time.perf_counter()\n"
        "if True:\n" + body + "\n"
        "t1 = time.perf_counter()\n"
        "import json, os, sys\n"
        'sys.stdout.write("RESULT " + json.dumps({"import_ms": (t1 - t0) * 1e3, '
        '"load_ms": 0.0, "total_ms": (t1 - t0) * 1e3}) + "\\n")\n'
        "sys.stdout.flush()\n"
        "os._exit(0)\n"
    )


# --- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="itly-async beside amplitude-analytics, segment-analytics-python and "
        "posthog on one loopback sink; prints one table, writes results/latest.json.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (under a minute)")
    parser.add_argument("--no-peers", action="store_true", help="measure ours only")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile our async and sync track paths (results/profile-*.txt)",
    )
    parser.add_argument(
        "--out", default=str(RESULTS / "latest.json"), help="where to write the JSON"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    p = QUICK if args.quick else FULL
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    witness = CpuWitness()
    peers_py = None if args.no_peers else _venv.ensure()
    raw: dict[str, Any] = {"params": json.loads(p.to_json())}
    with SinkProcess() as sink:
        log(f"sink listening on {sink.url}")
        if "ceiling" in only:
            raw["sink"] = attempt(
                "sink ceiling: pre-serialized 200-event batches",
                run_result,
                [
                    sys.executable,
                    "-m",
                    "benchmarks.ceiling",
                    "--sink",
                    sink.url,
                    "--seconds",
                    str(p.ceiling_seconds),
                ],
            )
        if "calls" in only:
            raw["calls"] = measure_calls(peers_py, sink.url, p)
        if "lag" in only:
            raw["lag"] = attempt(
                f"event-loop lag: {p.lag_runs} x {p.lag_events:,} events",
                run_result,
                [
                    sys.executable,
                    "-m",
                    "benchmarks.ours",
                    "lag",
                    "--params",
                    p.to_json(),
                    "--sink",
                    sink.url,
                ],
            )
        if "memory" in only:
            raw["memory"] = measure_memory(peers_py, sink.url, p)
        if "validate" in only:
            raw["validate"] = measure_validate(peers_py, p)
        if "load" in only:
            raw["load"] = measure_load(peers_py, sink.url, p)
    raw["others_cpu_share"] = witness.others_share()
    summary = _report.summarize(raw)
    text = render(raw, summary, quick=args.quick)
    print(text)
    doc = {
        "meta": meta(args.quick, time.monotonic() - started),
        "params": raw["params"],
        "summary": summary,
        "targets": _report.targets(summary),
        "table_markdown": _report.table(summary),
        "raw": raw,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    log(f"wrote {out} ({time.monotonic() - started:.0f} s in all)")
    if args.profile:
        from benchmarks import profiling

        profiling.main(["--out", str(RESULTS)])
    return 0


def meta(quick: bool, seconds: float) -> dict[str, Any]:
    return {
        "mode": "quick" if quick else "full",
        "seconds": seconds,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "peers": PINS,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def render(raw: dict[str, Any], summary: dict[str, Any], *, quick: bool) -> str:
    p = raw["params"]
    lines = [
        "",
        f"itly-async benchmarks ({'quick' if quick else 'full'}; "
        f"{p['calls']:,} calls x {p['runs']} runs per SDK; "
        f"python {platform.python_version()}, {os.cpu_count()} cpus)",
        "",
    ]
    sink = raw.get("sink")
    if sink and "error" not in sink:
        lines.append(
            f"sink ceiling: {sink['events_per_s']:,.0f} events/s acknowledged "
            f"(pre-serialized {sink['batch_bytes']:,}-byte 200-event batches, "
            f"{sink['concurrency']} connections); the sink spends "
            f"{sink['sink_cpu_us_per_event']:.2f} us CPU per event, "
            f"{sink['sink_cpu_bound_events_per_s']:,.0f} events/s on a core of its own."
        )
        best = max(
            (
                (s["events_per_s"]["median"], k)
                for k, s in summary.get("calls", {}).items()
                if isinstance(s, dict) and s.get("events_per_s")
            ),
            default=None,
        )
        if best is not None:
            lines.append(
                f"fastest SDK delivered {best[0]:,.0f} events/s ({best[1]}): "
                f"{best[0] / sink['events_per_s']:.0%} of the sink's ceiling."
            )
        lines.append("")
    lines.append(_report.table(summary))
    lines.append("")
    lines += notes(raw, summary)
    return "\n".join(lines)


def notes(raw: dict[str, Any], s: dict[str, Any]) -> list[str]:
    out = ["Notes:"]
    share = raw.get("others_cpu_share")
    if share is not None and share > BUSY_SHARE:
        out.append(
            f"- other processes used {share:.0%} of the machine's CPU time during this run: "
            "the figures are pessimistic and the spreads wider than on a quiet machine."
        )
    elif share is not None:
        out.append(f"- other processes used {share:.1%} of the CPUs during this run (quiet).")
    out.append(
        "- peer cells: value (peer/ours). Each call builds a fresh 5-property dict; "
        "batch 200, flush interval 0.5 s for every SDK."
    )
    floor = (s.get("calls", {}).get("ours-async") or {}).get("floor_us")
    if floor:
        out.append(
            f"- harness floor (timer + loop + building the dict, no SDK): {floor:.2f} us per "
            "call, included in every figure."
        )
    for sdk, c in s.get("calls", {}).items():
        if "error" in c:
            out.append(f"- calls {sdk}: FAILED: {c['error']}")
        elif not c.get("complete"):
            out.append(f"- calls {sdk}: some runs did not deliver every event (see JSON)")
    lag = s.get("lag") or {}
    if lag.get("idle"):
        out.append(
            f"- loop lag: ticker sleeps 1 ms, producer yields every 100 calls; the ticker "
            f"alone oversleeps p50 {lag['idle']['p50_ms']:.2f} / p99 "
            f"{lag['idle']['p99_ms']:.2f} ms on this machine."
        )
    if "error" in lag:
        out.append(f"- loop lag: FAILED: {lag['error']}")
    for key, m in s.get("memory", {}).items():
        for err in m.get("errors", []):
            out.append(f"- memory {key}: FAILED: {err}")
    how = (s.get("load") or {}).get("how")
    if how:
        out.append(
            f"- import + load: the 200-event package was {how}; fresh process, "
            "bytecode cached, median of the runs after a warm-up."
        )
    for key, m in (s.get("load") or {}).items():
        if isinstance(m, dict):
            for err in m.get("errors", []):
                out.append(f"- load {key}: FAILED: {err}")
    return out
