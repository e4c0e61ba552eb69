"""The public names of ``codegen``: pinned, so a rename is a deliberate change."""

from __future__ import annotations

import codegen


def test_public_names() -> None:
    assert codegen.__all__ == [
        "ExportDefaults",
        "PlanError",
        "Problem",
        "TrackingPlan",
        "UsageError",
        "check_plan_data",
        "generate",
        "load_plan",
    ]
    for name in codegen.__all__:
        assert getattr(codegen, name) is not None
