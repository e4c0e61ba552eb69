"""A 200-event tracking plan, and the package ``import itly; itly.load(...)`` is timed on.

Two ways to get the package, the first that works wins:

1. ``generated``: the real thing, ``python -m codegen pull backend`` on the plan below;
2. ``emulated``: what a generated package does at import, written here: validators
   precompiled by ``fastjsonschema.compile_to_code`` into one module (one function per
   event), a ``Plan`` of 200 ``Schema(schema=..., validate=...)``, and 200 ``async def``
   event functions plus 200 blocking twins. Used while codegen cannot produce the package.

A third package, ``dicts``, hands the runtime schema dicts only, so ``load`` compiles 200
validators: the price of not precompiling, for comparison.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import fastjsonschema

from benchmarks.workload import EVENT_NAME, SCHEMA

EVENTS = 200
SOURCE = "backend"
PACKAGE = "itly_bench200"
DICTS_PACKAGE = "itly_bench200_dicts"
#: the one-event package the generated-function calls are timed on
EVENT_PACKAGE = "itly_bench_event"

#: Times ``import`` + ``load`` in a fresh interpreter; ``{package}`` is filled in, and
#: ``{before}`` with what is imported before the clock starts (``import asyncio``: a
#: service that already runs an event loop has paid for it) or ``pass``.
LOAD_SNIPPET = """\
import time
{before}
t0 = time.perf_counter()
import {package} as itly
t1 = time.perf_counter()
itly.load(itly.Options(environment=itly.Environment.PRODUCTION))
t2 = time.perf_counter()
import json, sys
sys.stdout.write("RESULT " + json.dumps({{"import_ms": (t1 - t0) * 1e3,
    "load_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3}}) + "\\n")
sys.stdout.flush()
"""


def event_schema(k: int) -> dict[str, Any]:
    """Event ``k``'s properties: the workload's five kinds, names varying per event."""
    return {
        "properties": {
            f"label_{k}": {"type": "string", "minLength": 1, "maxLength": 64},
            "count": {"type": "integer", "minimum": 0},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "enabled": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
            "tier": {"enum": ["free", "pro", "team"]},
        },
        "required": [f"label_{k}", "count", "ratio", "enabled"],
    }


def plan_document() -> dict[str, Any]:
    """The tracking plan (DESIGN.md's format) with ``EVENTS`` events for one source."""
    return {
        "version": "1.0.0",
        "sources": {SOURCE: {"destinations": ["amplitude"]}},
        "destinations": {
            "amplitude": {
                "vendor": "amplitude",
                "api_key": {"development": "bench-dev-key", "production": "bench-prod-key"},
            }
        },
        "events": [
            {
                "name": f"Bench Event {k:03d}",
                "description": f"Benchmark event number {k}.",
                "version": "1.0.0",
                "sources": [SOURCE],
                **event_schema(k),
            }
            for k in range(EVENTS)
        ],
    }


def full_schema(k: int) -> dict[str, Any]:
    return {"type": "object", **event_schema(k), "additionalProperties": False}


def bench_event_document() -> dict[str, Any]:
    """A plan of one event, the workload's own: what ``calls-generated`` tracks through
    the generated function, ``await itly_bench_event.bench_event(user, name, count, ...)``."""
    doc = plan_document()
    doc["events"] = [
        {
            "name": EVENT_NAME,
            "description": "The benchmark workload's event.",
            "version": "1.0.0",
            "sources": [SOURCE],
            "properties": SCHEMA["properties"],
            "required": SCHEMA["required"],
        }
    ]
    return doc


def generate_with_codegen(
    out: Path, document: dict[str, Any] | None = None, package: str = PACKAGE
) -> tuple[bool, str]:
    """``itly pull`` into ``out``; (True, "") or (False, why it did not work)."""
    plan_path = out / f"{package}-plan.json"
    plan_path.write_text(json.dumps(document or plan_document(), indent=1))
    cmd = [sys.executable, "-m", "codegen", "pull", SOURCE, "--plan", str(plan_path)]
    cmd += ["--out", str(out), "--package", package]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, repr(exc)
    if proc.returncode != 0 or not (out / package / "__init__.py").exists():
        why = (proc.stderr or proc.stdout).strip().splitlines()
        return False, why[-1] if why else f"exit status {proc.returncode}"
    return True, ""


def _validators_source() -> str:
    """One module of precompiled validators: a root schema holding every event under
    ``definitions``, compiled once, with the root function (which repeats them) cut."""
    root = {
        "definitions": {f"e{k:03d}": full_schema(k) for k in range(EVENTS)},
        "anyOf": [{"$ref": f"#/definitions/e{k:03d}"} for k in range(EVENTS)],
    }
    code: str = fastjsonschema.compile_to_code(root, use_default=False)
    tree = ast.parse(code)
    lines = code.splitlines(keepends=True)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "validate":
            assert node.end_lineno is not None
            del lines[node.lineno - 1 : node.end_lineno]
            break
    return "".join(lines)


def _package_source(precompiled: bool) -> dict[str, str]:
    head = [
        '"""Stand-in for a generated package (benchmarks/_plan200.py). Do not edit."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        "from itly_async import (",
        "    Client, Environment, EventOptions, Options, Plan, PlanDestination, Schema,",
        "    SyncClient,",
        ")",
    ]
    if precompiled:
        head.append("from . import _validators as _v")
    body = [
        "",
        "_client = Client()",
        "_sync = SyncClient(_client)",
        "",
    ]
    for k in range(EVENTS):
        body.append(f"_S{k:03d}: dict[str, Any] = {full_schema(k)!r}")
    body.append("_PLAN = Plan(")
    body.append('    version="1.0.0",')
    body.append(f'    source="{SOURCE}",')
    body.append(
        '    destinations={"amplitude": PlanDestination(vendor="amplitude", '
        'keys={"development": "bench-dev-key", "production": "bench-prod-key"})},'
    )
    body.append("    events={")
    for k in range(EVENTS):
        fast = f", validate=_v.validate___definitions_e{k:03d}" if precompiled else ""
        body.append(f'        "Bench Event {k:03d}": Schema(schema=_S{k:03d}{fast}),')
    body.append("    },")
    body.append(")")
    body += [
        "",
        "",
        "def load(options: Options | None = None) -> None:",
        '    """Configure the client once; serves the async functions and ``sync``."""',
        "    _client.load(options, plan=_PLAN)",
        "",
    ]
    sync_body = [
        '"""Blocking twins (stand-in)."""',
        "",
        "from __future__ import annotations",
        "",
        "from itly_async import EventOptions",
        "",
        "from . import _sync",
        "",
    ]
    for k in range(EVENTS):
        params = (
            f"user_id: str, label_{k}: str, count: int, ratio: float, enabled: bool, *, "
            "tags: list[str] | None = None, tier: str | None = None, "
            "event_options: EventOptions | None = None"
        )
        props = f'{{"label_{k}": label_{k}, "count": count, "ratio": ratio, "enabled": enabled}}'
        extra = [
            "    if tags is not None:",
            '        props["tags"] = tags',
            "    if tier is not None:",
            '        props["tier"] = tier',
        ]
        for prefix, target, lines in (
            ("async def", "await _client.track", body),
            ("def", "_sync.track", sync_body),
        ):
            lines += [
                "",
                f"{prefix} bench_event_{k:03d}({params}) -> None:",
                f'    """Benchmark event number {k}."""',
                f"    props: dict[str, object] = {props}",
                *extra,
                f'    {target}(user_id, "Bench Event {k:03d}", props, event_options=event_options)',
                "",
            ]
    body += ["", "from . import sync  # noqa: E402", ""]
    files = {
        "__init__.py": "\n".join(head + body),
        "sync.py": "\n".join(sync_body),
    }
    if precompiled:
        files["_validators.py"] = _validators_source()
    return files


def write_emulated(out: Path, package: str, precompiled: bool) -> None:
    pkg = out / package
    pkg.mkdir(parents=True, exist_ok=True)
    for name, text in _package_source(precompiled).items():
        (pkg / name).write_text(text)


def prepare(out: Path) -> dict[str, str]:
    """Write the packages into ``out``; returns package name by variant, and how the
    precompiled one was made (``generated`` or ``emulated``, with the reason)."""
    ok, why = generate_with_codegen(out)
    if not ok:
        write_emulated(out, PACKAGE, precompiled=True)
    write_emulated(out, DICTS_PACKAGE, precompiled=False)
    return {
        "precompiled": PACKAGE,
        "dicts": DICTS_PACKAGE,
        "how": "generated by itly pull" if ok else "emulated (itly pull: " + why + ")",
    }
