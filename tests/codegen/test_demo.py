"""``make demo`` end to end: pull, collector, both example programs, the summary table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_and_cleans_up(tmp_path: Path, tools: Any) -> None:
    env = {**tools.env, "ITLY_DEMO_BUILD": str(tmp_path / "demo")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert out.rstrip().endswith("demo: OK")
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in out.splitlines()}
    assert rows["Order Completed"] == ["24", "24"]  # amplitude, segment
    assert rows["Report Exported"] == ["6", "6"]  # from the sync script
    assert "13 of 13 events of source 'backend' instrumented" in out
    assert (tmp_path / "demo" / "itly" / "__init__.py").exists()
    assert "Traceback" not in proc.stderr
