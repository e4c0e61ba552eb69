"""Read a plan file as JSON, reporting what ``json.loads`` alone would hide or crash on.

- bytes that are not UTF-8 and text that is not JSON: a problem with line and column;
- a key given twice in one object (``json`` silently keeps the last): a problem at its path;
- ``NaN`` / ``Infinity`` (accepted by Python's ``json``, not by JSON): a problem at its path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._problems import PathPart, Problem, UsageError


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


class _NonFinite:
    def __init__(self, token: str) -> None:
        self.token = token


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _syntax_fix(message: str, at_end: bool) -> str:
    if at_end:
        return "The file ends too early (truncated?): restore the missing end of the plan."
    if message.startswith("Expecting ',' delimiter"):
        return "Add the missing comma between the two entries, or close the open [ or {."
    if message.startswith("Expecting property name"):
        return "Object keys must be double-quoted strings, and JSON allows no trailing comma."
    if message.startswith("Expecting ':' delimiter"):
        return "Put a ':' between the key and its value."
    if message.startswith("Extra data"):
        return "Remove what follows the plan's closing brace (a plan is a single JSON object)."
    if message.startswith(("Invalid control character", "Unterminated string")):
        return "Close the string, and write newlines and tabs inside strings as \\n and \\t."
    if message.startswith("Invalid \\escape"):
        return "Write a backslash inside a string as \\\\."
    return "Fix the JSON syntax at this point (a validating editor shows the spot)."


def parse_json_text(text: str) -> tuple[Any, list[Problem]]:
    """Parse ``text``; on a syntax error return ``(None, [problem with line/column])``."""
    try:
        value = json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_NonFinite)
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(text.rstrip())
        return None, [
            Problem(
                (),
                f"invalid JSON: {exc.msg}.",
                _syntax_fix(exc.msg, at_end),
                line=exc.lineno,
                column=exc.colno,
            )
        ]
    except RecursionError:
        return None, [
            Problem(
                (),
                "invalid JSON: nested too deeply to read.",
                "Flatten the plan: no tracking plan needs hundreds of nested levels.",
                line=1,
                column=1,
            )
        ]
    problems: list[Problem] = []
    return _clean(value, (), problems), problems


def _clean(value: Any, path: tuple[PathPart, ...], problems: list[Problem]) -> Any:
    if isinstance(value, _Object):
        for key in value.duplicates:
            problems.append(
                Problem(
                    (*path, key),
                    f"the key {json.dumps(key, ensure_ascii=False)} appears more than once in "
                    "this object; JSON readers keep only the last one.",
                    "Remove the duplicate or rename it.",
                )
            )
        return {k: _clean(v, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, (*path, i), problems) for i, v in enumerate(value)]
    if isinstance(value, _NonFinite):
        problems.append(
            Problem(
                path,
                f"{value.token} is not a JSON number.",
                "Use a finite number, or leave the keyword out.",
            )
        )
        return None
    return value


def read_json_file(path: str | Path) -> tuple[Any, list[Problem]]:
    """Read and parse a plan file. A missing or unreadable file is a ``UsageError``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a plan file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8", errors="replace")
        line, column = _position(prefix, len(prefix))
        return None, [
            Problem(
                (),
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x}).",
                "Save the plan as UTF-8.",
                line=line,
                column=column,
            )
        ]
    return parse_json_text(text)
