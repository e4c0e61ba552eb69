"""The peers' own environment, ``benchmarks/.venv-peers``, created on first use.

The peer SDKs are never dependencies of itly-async: they live in a venv of their own,
made with ``python -m venv`` and filled by pip with pinned versions. A stamp file holds
the pins it was filled with; when the pins change, the venv is brought up to date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.peers import PINS

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-peers"
STAMP = VENV / ".bench-pins"


def python() -> Path:
    return VENV / "bin" / "python"


def requirements() -> list[str]:
    return [f"{name}=={version}" for name, version in sorted(PINS.items())]


def ensure(log: bool = True) -> Path:
    """Return the peers' interpreter, creating or updating the venv when needed."""
    want = "\n".join(requirements()) + "\n"
    py = python()
    if py.exists() and STAMP.exists() and STAMP.read_text() == want:
        return py
    if not py.exists():
        if log:
            print(f"[bench] creating {VENV.relative_to(HERE.parent)}", file=sys.stderr)
        # the base interpreter, not this venv's: the peers' venv must not see our packages
        base = Path(getattr(sys, "_base_executable", sys.executable))
        subprocess.run([str(base), "-m", "venv", str(VENV)], check=True)
    if log:
        print(f"[bench] installing {', '.join(requirements())}", file=sys.stderr)
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements(),
        ],
        check=True,
    )
    STAMP.write_text(want)
    return py
