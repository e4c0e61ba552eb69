"""Fixtures for the codegen tests."""

from __future__ import annotations

import importlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from codegen import check_plan_data, generate
from codegen._write import write_package

ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count()


@attrs.frozen
class Tools:
    """The venv's mypy and ruff, and an environment in which the repo is importable."""

    mypy: str
    ruff: str
    env: Mapping[str, str]


@pytest.fixture(scope="session")
def tools() -> Tools:
    bin_dir = Path(sys.executable).parent
    for name in ("mypy", "ruff"):
        if not (bin_dir / name).exists():
            pytest.skip(f"{name} is not installed next to {sys.executable}")
    env = dict(os.environ)
    env["MYPYPATH"] = str(ROOT)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return Tools(mypy=str(bin_dir / "mypy"), ruff=str(bin_dir / "ruff"), env=env)


@pytest.fixture
def import_generated(tmp_path: Path) -> Iterator[Callable[..., ModuleType]]:
    """Generate a plan's package under a unique name, import it, forget it afterwards."""
    imported: list[str] = []
    sys.path.insert(0, str(tmp_path))

    def load(data: Mapping[str, Any], source: str = "backend") -> ModuleType:
        plan, problems = check_plan_data(dict(data))
        assert plan is not None, [str(p) for p in problems]
        package = f"itly_t{next(_counter)}"
        write_package(generate(plan, source, package), tmp_path / package)
        importlib.invalidate_caches()
        module = importlib.import_module(package)
        imported.append(package)
        return module

    yield load
    sys.path.remove(str(tmp_path))
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in imported):
            del sys.modules[name]
