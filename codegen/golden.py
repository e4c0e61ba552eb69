"""Regenerate this repository's golden packages: ``python -m codegen.golden`` (``make golden``).

Each case pulls one source of one plan under ``examples/``, exactly as ``itly pull``
would, into ``tests/golden/<package>/``. ``tests/codegen/test_golden.py`` fails when the
generator's output drifts from those files; after an intended change, run this and
review the diff like any other code change. (Developer tooling: it needs the source
tree, not just the installed package.)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

from ._export import ExportDefaults
from ._generate import generate
from ._model import load_plan
from ._write import find_ruff, format_files

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"


class Case(NamedTuple):
    package: str
    plan: str  # relative to the repository root
    source: str


CASES = (
    Case("itly_demo_backend", "examples/tracking-plan.json", "backend"),
    Case("itly_demo_worker", "examples/tracking-plan.json", "worker"),
    Case("itly_minimal", "examples/plans/minimal.json", "cli"),
    Case("itly_custom", "examples/plans/custom-destination.json", "billing"),
    Case("itly_hostile", "examples/plans/hostile.json", "web"),
    Case("itly_export", "examples/plans/iteratively-export.json", "worker"),
)


def render(case: Case, *, format_with_ruff: bool = True) -> dict[str, str]:
    """The files ``itly pull`` writes for ``case``."""
    plan = load_plan(ROOT / case.plan, defaults=ExportDefaults(source=case.source))
    files = generate(plan, case.source, case.package)
    return format_files(files, find_ruff()) if format_with_ruff else files


def main() -> int:
    if not (ROOT / "examples").is_dir():
        print(f"codegen.golden: no examples/ in {ROOT}: run it from a source checkout")
        return 2
    for case in CASES:
        target = GOLDEN / case.package
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name, text in render(case).items():
            (target / name).write_text(text, "utf-8", newline="\n")
        print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
