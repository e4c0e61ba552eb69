"""Random plans: each either generates an importable, mypy-clean package or is rejected
with problems that say where and how to fix them. Never a crash, never broken code.

mypy is slow to start, so the packages of all examples are checked in one mypy run.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codegen import check_plan_data, generate
from codegen._render import LINE_LENGTH, width
from codegen._schemacheck import canonical
from codegen._write import format_files, write_package
from codegen.samples import call_arguments

ROOT = Path(__file__).resolve().parents[2]

WORDS = st.from_regex(r"[A-Za-z][A-Za-z0-9 _.-]{0,12}", fullmatch=True)
NAMES = st.one_of(WORDS, WORDS, st.text(min_size=1, max_size=12))
TEXT = st.text(max_size=40)

SCALARS = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean"])},
        optional={"description": TEXT},
    ),
    st.fixed_dictionaries({"type": st.sampled_from([["string", "null"], "null", ["integer"]])}),
    st.fixed_dictionaries(
        {
            "enum": st.lists(
                st.one_of(st.text(max_size=6), st.integers(-3, 3), st.booleans(), st.none()),
                min_size=1,
                max_size=4,
                unique_by=canonical,
            )
        }
    ),
    st.fixed_dictionaries({"const": st.one_of(st.text(max_size=6), st.integers(), st.booleans())}),
    st.fixed_dictionaries({"type": st.just("integer"), "minimum": st.integers(-10, 10)}),
)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": sorted(properties)[:1]}


SCHEMAS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.builds(lambda items: {"type": "array", "items": items}, children),
        st.builds(_object, st.dictionaries(NAMES, children, max_size=3)),
    ),
    max_leaves=4,
)


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    events = []
    for name in draw(st.lists(NAMES, min_size=0, max_size=3, unique=True)):
        properties = draw(st.dictionaries(NAMES, SCHEMAS, max_size=4))
        required = [p for p in properties if draw(st.booleans())]
        events.append(
            {
                "name": name,
                "description": draw(TEXT),
                "properties": properties,
                "required": required,
            }
        )
    vendors = draw(st.lists(st.sampled_from(["amplitude", "segment", "custom"]), unique=True))
    plan: dict[str, Any] = {
        "version": draw(st.text(min_size=1, max_size=8)),
        "sources": {"s": {"destinations": vendors}},
        "destinations": {v: {"vendor": v} for v in vendors},
        "events": events,
    }
    for item in ("context", "identify", "group"):
        if draw(st.booleans()):
            properties = draw(st.dictionaries(NAMES, SCHEMAS, max_size=3))
            required = [p for p in properties if draw(st.booleans())]
            plan[item] = {"properties": properties, "required": required}
    return plan


def test_random_plans_generate_clean_code_or_clear_errors(tmp_path: Path, tools: Any) -> None:
    generated: list[str] = []
    names = itertools.count()
    rejected = 0

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(plans())
    def one(data: dict[str, Any]) -> None:
        nonlocal rejected
        plan, problems = check_plan_data(data)
        if plan is None:
            rejected += 1
            assert problems
            for problem in problems:
                assert problem.where.startswith("$"), problem
                assert problem.message, problem
                assert problem.fix.endswith((".", "?")), problem
            return
        # a fresh name per example, failed ones included: a failed example leaves its
        # module in sys.modules, and reusing its name would import the stale one
        package = f"hyp_{next(names)}"
        raw = generate(plan, "s", package)
        files = format_files(raw, tools.ruff, everything=True)
        for name, text in raw.items():
            if name.endswith((".py", ".pyi")):
                ast.parse(text)  # valid Python, whatever the plan said
            # the templates lay code out as ruff does, except around a line too long to
            # fit anyway (documented in codegen/_write.py)
            if text != files[name]:
                assert any(width(line) > LINE_LENGTH for line in text.splitlines()), name
        write_package(files, tmp_path / package)
        module = importlib.import_module(package)
        # the builders and the precompiled validators agree on sample values
        validators = importlib.import_module(f"{package}._validators")
        for event in plan.events_of("s"):
            args, kwargs, expected = call_arguments(event)
            properties = getattr(module._properties, event.ident)(*args, **kwargs)
            assert properties == expected
            _, validate, check = validators.EVENTS[event.name]
            validate(properties)
            assert check is None or check(properties)
        generated.append(package)

    sys.path.insert(0, str(tmp_path))
    try:
        one()
    finally:
        sys.path.remove(str(tmp_path))
        for name in list(sys.modules):
            if name.startswith("hyp_"):
                del sys.modules[name]
    assert generated, f"every example was rejected ({rejected})"
    packages = [str(tmp_path / p) for p in generated]
    ruff = subprocess.run(
        [tools.ruff, "check", "--isolated", "--select", "E9,F", *packages],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ruff.returncode == 0, ruff.stdout[-5000:] + ruff.stderr[-2000:]
    proc = subprocess.run(
        [tools.mypy, "--strict", "--no-incremental", *packages],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=tools.env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:]
