"""Plan problems: where (a JSON path, or a line and column), what, and how to fix it.

Every check in codegen reports ``Problem`` values instead of raising on the first one, so
``itly check`` can print them all. ``PlanError`` carries the whole list when a caller
needs an exception (``load_plan``, ``generate``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

import attrs

#: One step of a JSON path: an object key or an array index.
PathPart = str | int
Path = tuple[PathPart, ...]

_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")


def format_path(path: Sequence[PathPart]) -> str:
    """``("events", 2, "properties", "order id")`` -> ``$.events[2].properties["order id"]``."""
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _SIMPLE_KEY.match(part):
            out.append(f".{part}")
        else:
            out.append(f"[{quote(part)}]")
    return "".join(out)


def quote(value: object) -> str:
    """A plan value as JSON text, for messages: control characters come out escaped."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def printable(text: str) -> str:
    """Plan text for a terminal: as is when harmless, else JSON-quoted (no escape codes)."""
    return text if text.isprintable() else quote(text)


@attrs.frozen
class Problem:
    """One thing wrong with a plan.

    ``path`` is the JSON path of the offending field; ``line`` / ``column`` are set
    instead when the file is not valid JSON at all. ``fix`` is one sentence on what to do.
    """

    path: Path
    message: str
    fix: str
    line: int | None = None
    column: int | None = None

    @property
    def where(self) -> str:
        if self.line is not None:
            return f"line {self.line}, column {self.column or 1}"
        return format_path(self.path)

    def render(self, filename: str) -> str:
        """``FILE: WHERE: message Fix: sentence`` (``FILE:LINE:COL:`` for syntax errors)."""
        if self.line is not None:
            prefix = f"{filename}:{self.line}:{self.column or 1}"
        else:
            prefix = f"{filename}: {format_path(self.path)}"
        return f"{prefix}: {self.message} Fix: {self.fix}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message} Fix: {self.fix}"


class PlanError(Exception):
    """A tracking plan has problems; ``problems`` lists every one, in file order."""

    def __init__(self, problems: Iterable[Problem], filename: str = "tracking plan") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.filename = filename
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(p.render(filename) for p in self.problems)
        super().__init__(f"{filename}: {count} {noun}\n{lines}")


class UsageError(Exception):
    """The command line asks for something that cannot be done (exit code 2)."""
