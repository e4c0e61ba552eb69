"""Format generated files, write them, and say what changed since the last pull.

Formatting: the templates already emit ``ruff format`` style: the golden tests check that
formatting their output changes nothing, and the hypothesis tests that it changes
something only where a line is too long to fit anyway (a 150-character property name
cannot be laid out in 100 columns by a template). So ruff runs only on such files, with
settings fixed here (``--isolated --line-length 100``) so the user's own ruff
configuration never changes the output; the output of an ordinary plan is the same
bytes with any ruff version or none.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ._generate import FILES, HEADER_MARK
from ._problems import UsageError, printable, quote
from ._render import LINE_LENGTH, width

_FORMAT_TIMEOUT = 60.0  # seconds; ruff formats a 200-event package in well under one


def find_ruff() -> str | None:
    """The ruff executable beside the running Python (a venv), else on PATH."""
    here = Path(sys.executable).parent
    path = os.pathsep.join([str(here), os.environ.get("PATH", "")])
    return shutil.which("ruff", path=path)


def needs_formatting(text: str) -> bool:
    """Whether a generated file has a line the templates could not fit in the width."""
    return any(width(line) > LINE_LENGTH for line in text.splitlines())


def format_files(
    files: Mapping[str, str], ruff: str | None, *, everything: bool = False
) -> dict[str, str]:
    """``files``, with the ``.py``/``.pyi`` files that need it (or all: ``everything``)
    passed through ruff format."""
    if ruff is None:
        return dict(files)
    out = {}
    for name, text in files.items():
        skip = name == "_validators.py" or not name.endswith((".py", ".pyi"))
        if skip or not (everything or needs_formatting(text)):
            out[name] = text
            continue
        proc = subprocess.run(  # noqa: S603 - a fixed argv, no shell
            [
                ruff,
                "format",
                "--isolated",
                "--line-length",
                str(LINE_LENGTH),
                "--target-version",
                "py311",
                "--stdin-filename",
                name,
                "-",
            ],
            input=text,
            capture_output=True,
            text=True,
            timeout=_FORMAT_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"ruff format failed on {name}: {proc.stderr.strip()}")
        out[name] = proc.stdout
    return out


# --- what changed --------------------------------------------------------------------


@attrs.frozen
class Snapshot:
    """What a generated package contains, read back from its ``_validators.py``."""

    items: Mapping[str, Mapping[str, Any]]  # "context"/"identify"/"group"/event name -> schema
    events: tuple[str, ...]
    #: event name -> (version, description); None for a package written before itly
    #: recorded them (its versions and descriptions are unknown, not empty)
    about: Mapping[str, tuple[str, str]] | None = None


def read_snapshot(package_dir: Path) -> Snapshot | None:
    """The snapshot of a previous pull into ``package_dir``, or None."""
    try:
        text = (package_dir / "_validators.py").read_text("utf-8")
    except (OSError, ValueError):
        return None
    return parse_snapshot(text)


def parse_snapshot(validators_source: str) -> Snapshot | None:
    """The snapshot held in a generated ``_validators.py``, parsed (never executed)."""
    try:
        tree = ast.parse(validators_source)
    except (SyntaxError, ValueError):
        return None
    items: dict[str, Mapping[str, Any]] = {}
    events: list[str] = []
    about: dict[str, tuple[str, str]] | None = None
    for node in tree.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name, value = node.target.id, node.value
        try:
            if name in ("CONTEXT", "IDENTIFY", "GROUP") and isinstance(value, ast.Tuple):
                items[name.lower()] = ast.literal_eval(value.elts[0])
            elif name == "EVENTS" and isinstance(value, ast.Dict):
                for key, entry in zip(value.keys, value.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and isinstance(key.value, str)
                        and isinstance(entry, ast.Tuple)
                    ):
                        events.append(key.value)
                        items["event:" + key.value] = ast.literal_eval(entry.elts[0])
            elif name == "EVENT_ABOUT" and value is not None:
                about = _about(value)
        except (ValueError, TypeError, SyntaxError):
            return None
    return Snapshot(items=items, events=tuple(events), about=about)


def _about(node: ast.expr) -> dict[str, tuple[str, str]] | None:
    """The ``EVENT_ABOUT`` table, or None (unknown) when it is not the shape we write;
    the schemas alone still make a snapshot."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None
    if not isinstance(value, dict):
        return None
    out: dict[str, tuple[str, str]] = {}
    for name, entry in value.items():
        if not (
            isinstance(name, str)
            and isinstance(entry, tuple)
            and len(entry) == 2
            and all(isinstance(x, str) for x in entry)
        ):
            return None
        out[name] = (entry[0], entry[1])
    return out


def _label(key: str) -> str:
    return f"event {quote(key[6:])}" if key.startswith("event:") else key


def describe_changes(old: Snapshot | None, new: Snapshot) -> list[str]:
    """Lines like ``+ event "Job Retried"`` / ``~ event "Order Completed": - property "x"``."""
    if old is None:
        return []
    lines: list[str] = []
    for key in new.items:
        if key not in old.items:
            lines.append(f"+ {_label(key)}")
    for key in old.items:
        if key not in new.items:
            lines.append(f"- {_label(key)}")
    for key, schema in new.items.items():
        before = old.items.get(key)
        if before is None:
            continue
        details = _about_changes(old, new, key)
        if before != schema:
            details += _schema_changes(before, schema)
        if details:
            lines.append(f"~ {_label(key)}: " + "; ".join(details))
    return lines


def _schema_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two different schemas of one item, property by property."""
    details: list[str] = []
    old_props = before.get("properties", {})
    new_props = after.get("properties", {})
    old_req = set(before.get("required", ()))
    new_req = set(after.get("required", ()))
    for name in new_props:
        if name not in old_props:
            details.append(f"+ property {quote(name)}")
    for name in old_props:
        if name not in new_props:
            details.append(f"- property {quote(name)}")
    for name, prop in new_props.items():
        if name not in old_props:
            continue
        what = []
        if old_props[name] != prop:
            what.append("schema changed")
        if (name in old_req) != (name in new_req):
            what.append("now required" if name in new_req else "now optional")
        if what:
            details.append(f"~ property {quote(name)}: {', '.join(what)}")
    return details or ["schema changed"]


def _about_changes(old: Snapshot, new: Snapshot, key: str) -> list[str]:
    """``version 1.0.0 -> 1.1.0`` / ``description changed`` for an event; nothing when
    either package does not record them (one written by an older itly)."""
    if not key.startswith("event:") or old.about is None or new.about is None:
        return []
    before, after = old.about.get(key[6:]), new.about.get(key[6:])
    if before is None or after is None:
        return []
    out = []
    if before[0] != after[0]:
        out.append(f"version {_version(before[0])} -> {_version(after[0])}")
    if before[1] != after[1]:
        out.append("description changed")
    return out


def _version(version: str) -> str:
    return printable(version) if version else "(none)"


# --- writing ---------------------------------------------------------------------------


def is_generated(package_dir: Path) -> bool:
    """Whether ``package_dir`` holds a package this generator wrote."""
    try:
        head = (package_dir / "__init__.py").read_text("utf-8")[:200]
    except OSError:
        return False
    return head.startswith(HEADER_MARK)


def write_package(files: Mapping[str, str], package_dir: Path, *, force: bool = False) -> None:
    """Write ``files`` into ``package_dir``; refuse to overwrite a folder we did not write."""
    if package_dir.exists() and not package_dir.is_dir():
        raise UsageError(f"{package_dir} exists and is not a directory")
    occupied = package_dir.is_dir() and any(package_dir.iterdir())
    if occupied and not force and not is_generated(package_dir):
        raise UsageError(
            f"{package_dir} exists and was not generated by itly; refusing to overwrite it "
            "(pass --force to replace the generated files in it anyway)"
        )
    package_dir.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        target = package_dir / name
        tmp = package_dir / f".{name}.tmp"
        tmp.write_text(files[name], "utf-8", newline="\n")
        tmp.replace(target)  # atomic per file: an import never sees half a module
