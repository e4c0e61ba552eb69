"""Tracking plan -> typed Python package, and the ``itly`` command (pull, check, status).

Most users run the command::

    itly check --plan tracking-plan.json
    itly pull backend --plan tracking-plan.json --out .
    itly status --plan tracking-plan.json --source backend src/

The same steps from Python::

    import codegen

    plan = codegen.load_plan("tracking-plan.json")   # raises PlanError listing every problem
    files = codegen.generate(plan, "backend")        # {file name: source text}

The plan format is described by ``codegen/plan.schema.json``; the generated package and
the naming rules by ``codegen/README.md``.
"""

from __future__ import annotations

try:
    import jinja2  # noqa: F401 - the templates' engine; an extra, not a runtime dependency
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(
        "itly's generator needs jinja2, which the runtime does not: "
        "pip install 'itly-async[codegen]'"
    ) from exc

from ._export import ExportDefaults
from ._generate import generate
from ._model import TrackingPlan, check_plan_data, load_plan
from ._problems import PlanError, Problem, UsageError

__all__ = [
    "ExportDefaults",
    "PlanError",
    "Problem",
    "TrackingPlan",
    "UsageError",
    "check_plan_data",
    "generate",
    "load_plan",
]
