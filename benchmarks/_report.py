"""From the measuring processes' raw results to one table (Markdown) and a summary.

Every figure is the median over runs with its spread ``[min-max]``. Peer cells carry the
ratio peer/ours: above 1 means the peer costs more (time, memory), or, for throughput,
delivers more.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

PEER_COLUMNS = ("amplitude", "segment", "posthog")
COLUMN_TITLES = {
    "ours": "itly-async (ours)",
    "amplitude": "amplitude-analytics",
    "segment": "segment-analytics-python",
    "posthog": "posthog",
    "legacy": "legacy itly: jsonschema",
}

Stat = dict[str, float]


def stat(values: Sequence[float]) -> Stat | None:
    """Median and spread of a run's figures; None when there are none."""
    vals = [float(v) for v in values if v == v]  # drop NaN
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def _runs_stat(block: dict[str, Any] | None, key: str) -> Stat | None:
    if not block or "runs" not in block:
        return None
    return stat([r[key] for r in block["runs"] if key in r])


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Median/min/max of every figure, by scenario and SDK."""
    out: dict[str, Any] = {}
    calls = raw.get("calls", {})
    out["calls"] = {}
    for sdk, block in calls.items():
        if "error" in block:
            out["calls"][sdk] = {"error": block["error"]}
            continue
        n_expected = raw["params"]["calls"]
        out["calls"][sdk] = {
            "p50_us": _runs_stat(block, "p50_us"),
            "mean_us": _runs_stat(block, "mean_us"),
            "p99_us": _runs_stat(block, "p99_us"),
            "events_per_s": _runs_stat(block, "events_per_s"),
            "complete": bool(block["runs"])
            and all(r["delivered"] >= n_expected for r in block["runs"]),
            "peak_rss_mb": block.get("peak_rss", 0) / 2**20,
            "floor_us": (block.get("floor") or {}).get("mean_us"),
        }
    lag = raw.get("lag")
    if lag and "error" not in lag:
        out["lag"] = {
            "p50_ms": _runs_stat(lag, "p50_ms"),
            "p99_ms": _runs_stat(lag, "p99_ms"),
            "max_ms": _runs_stat(lag, "max_ms"),
            "events_per_s": _runs_stat(lag, "events_per_s"),
            "idle": lag.get("idle"),
            "complete": all(r["delivered"] >= raw["params"]["lag_events"] for r in lag["runs"]),
        }
    elif lag:
        out["lag"] = {"error": lag["error"]}
    out["memory"] = {}
    for key, runs in raw.get("memory", {}).items():
        ok = [r for r in runs if "error" not in r]
        out["memory"][key] = {
            "bytes_per_event": stat([r["bytes_per_event"] for r in ok]),
            "peak_rss_mb": stat([r["peak_rss"] / 2**20 for r in ok]),
            "errors": [r["error"] for r in runs if "error" in r],
        }
    val = raw.get("validate", {})
    out["validate"] = {
        "validator_us": stat((val.get("ours") or {}).get("validator_us", [])),
        "jsonschema_prebuilt_us": stat((val.get("legacy") or {}).get("prebuilt_us", [])),
        "jsonschema_validate_us": stat((val.get("legacy") or {}).get("validate_fn_us", [])),
    }
    out["load"] = {}
    for key, runs in raw.get("load", {}).items():
        if key == "how":
            out["load"]["how"] = runs
            continue
        ok = [r for r in runs if "error" not in r]
        out["load"][key] = {
            "total_ms": stat([r["total_ms"] for r in ok]),
            "import_ms": stat([r["import_ms"] for r in ok]),
            "load_ms": stat([r["load_ms"] for r in ok]),
            "errors": [r["error"] for r in runs if "error" in r],
        }
    return out


# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    label: str
    #: column -> the figure's Stat in the summary (None: not measured for that column)
    cells: dict[str, Stat | None]
    fmt: Callable[[float], str]
    target: str = ""
    #: met when this holds for ours' median
    meets: Callable[[float], bool] | None = None


def _f1(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def _f2(x: float) -> str:
    return f"{x:.2f}" if x < 10 else _f1(x)


def _int(x: float) -> str:
    return f"{x:,.0f}"


def _cell(s: Stat | None, fmt: Callable[[float], str]) -> str:
    if s is None:
        return "-"
    if s["n"] <= 1 or fmt(s["min"]) == fmt(s["max"]):
        return fmt(s["median"])
    return f"{fmt(s['median'])} [{fmt(s['min'])}-{fmt(s['max'])}]"


def _ratio(peer: Stat | None, ours: Stat | None) -> str:
    if peer is None or ours is None or not ours["median"]:
        return ""
    r = peer["median"] / ours["median"]
    return f" ({r:.2g}x)" if r < 10 else f" ({r:,.0f}x)"


def _get(summary: dict[str, Any], *path: str) -> Stat | None:
    node: Any = summary
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, dict) and "median" in node else None


def rows(s: dict[str, Any]) -> list[Row]:
    def calls(sdk: str, key: str) -> Stat | None:
        return _get(s, "calls", sdk, key)

    def peers(key: str) -> dict[str, Stat | None]:
        return {p: calls(p, key) for p in PEER_COLUMNS}

    def mem(key: str) -> Stat | None:
        return _get(s, "memory", key, "bytes_per_event")

    def peak(key: str) -> Stat | None:
        return _get(s, "memory", key, "peak_rss_mb")

    def load(key: str) -> Stat | None:
        return _get(s, "load", key, "total_ms")

    return [
        Row(
            "track call, median us: `await itly.bench_event()` (generated)",
            {"ours": calls("ours-generated", "p50_us"), **peers("p50_us")},
            _f2,
            "<= 5",
            lambda x: x <= 5,
        ),
        Row(
            "track call, median us: `await client.track()`",
            {"ours": calls("ours-async", "p50_us"), **peers("p50_us")},
            _f2,
            "<= 5",
            lambda x: x <= 5,
        ),
        Row(
            "track call, median us: `SyncClient.track()`",
            {"ours": calls("ours-sync", "p50_us"), **peers("p50_us")},
            _f2,
            "<= 10",
            lambda x: x <= 10,
        ),
        Row(
            "track call, mean us (generated)",
            {"ours": calls("ours-generated", "mean_us"), **peers("mean_us")},
            _f2,
        ),
        Row(
            "track call, mean us (async)",
            {"ours": calls("ours-async", "mean_us"), **peers("mean_us")},
            _f2,
        ),
        Row(
            "track call, mean us (sync)",
            {"ours": calls("ours-sync", "mean_us"), **peers("mean_us")},
            _f2,
        ),
        Row(
            "track call, p99 us (async)",
            {"ours": calls("ours-async", "p99_us"), **peers("p99_us")},
            _f1,
        ),
        Row(
            "track call, p99 us (sync)",
            {"ours": calls("ours-sync", "p99_us"), **peers("p99_us")},
            _f1,
        ),
        Row(
            "delivered events/s, first call to last ack (generated)",
            {"ours": calls("ours-generated", "events_per_s"), **peers("events_per_s")},
            _int,
            ">= 100,000",
            lambda x: x >= 100_000,
        ),
        Row(
            "delivered events/s, first call to last ack (async)",
            {"ours": calls("ours-async", "events_per_s"), **peers("events_per_s")},
            _int,
            ">= 100,000",
            lambda x: x >= 100_000,
        ),
        Row(
            "delivered events/s, first call to last ack (sync)",
            {"ours": calls("ours-sync", "events_per_s"), **peers("events_per_s")},
            _int,
            ">= 100,000",
            lambda x: x >= 100_000,
        ),
        Row("event-loop lag p50 ms, 100k events", {"ours": _get(s, "lag", "p50_ms")}, _f2),
        Row(
            "event-loop lag p99 ms, 100k events",
            {"ours": _get(s, "lag", "p99_ms")},
            _f2,
            "<= 5",
            lambda x: x <= 5,
        ),
        Row(
            "bytes per queued event (destination hangs)",
            {"ours": mem("ours-hang"), **{p: mem(p) for p in PEER_COLUMNS}},
            _int,
            "<= 1,024",
            lambda x: x <= 1024,
        ),
        Row(
            "bytes per queued event (encoded, awaiting retry)",
            {"ours": mem("ours-refused")},
            _int,
            "<= 1,024",
            lambda x: x <= 1024,
        ),
        Row(
            "bytes per queued event (encoded, long outage: after as many before)",
            {"ours": mem("ours-outage")},
            _int,
            "<= 1,024",
            lambda x: x <= 1024,
        ),
        Row(
            "peak RSS MB with the events queued",
            {"ours": peak("ours-hang"), **{p: peak(p) for p in PEER_COLUMNS}},
            _f1,
        ),
        Row(
            "validation us/event (legacy: prebuilt Draft7Validator)",
            {
                "ours": _get(s, "validate", "validator_us"),
                "legacy": _get(s, "validate", "jsonschema_prebuilt_us"),
            },
            _f2,
        ),
        Row(
            "validation us/event (legacy: jsonschema.validate())",
            {
                "ours": _get(s, "validate", "validator_us"),
                "legacy": _get(s, "validate", "jsonschema_validate_us"),
            },
            _f2,
        ),
        Row(
            "import + load ms, 200-event plan (peers: import + client)",
            {"ours": load("precompiled"), **{p: load(p) for p in PEER_COLUMNS}},
            _f1,
            "<= 100",
            lambda x: x <= 100,
        ),
        Row(
            "import + load ms, 200-event plan, asyncio already imported (a service)",
            {"ours": load("asyncio_loaded")},
            _f1,
        ),
        Row(
            "import + load ms, 200 schemas compiled at load",
            {"ours": load("dicts")},
            _f1,
        ),
    ]


def table(summary: dict[str, Any]) -> str:
    """The Markdown table: ours beside each peer, ratios, targets, met or missed."""
    cols = ["ours", *PEER_COLUMNS, "legacy"]
    head = ["figure (median [min-max])", *(COLUMN_TITLES[c] for c in cols), "target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows(summary):
        ours = row.cells.get("ours")
        cells = [row.label, _cell(ours, row.fmt)]
        for c in cols[1:]:
            s = row.cells.get(c)
            cells.append(_cell(s, row.fmt) + _ratio(s, ours) if s is not None else "-")
        status = ""
        if row.meets is not None:
            status = "n/a" if ours is None else ("met" if row.meets(ours["median"]) else "MISSED")
        cells += [row.target or "-", status or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each DESIGN.md target with our median and whether it holds."""
    out = []
    for row in rows(summary):
        if row.meets is None:
            continue
        ours = row.cells.get("ours")
        out.append(
            {
                "figure": row.label,
                "target": row.target,
                "ours_median": None if ours is None else ours["median"],
                "met": None if ours is None else row.meets(ours["median"]),
            }
        )
    return out
