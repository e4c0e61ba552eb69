"""Read a plan file as JSON, reporting what ``json.loads`` alone would hide or crash on.

- bytes that are not UTF-8 and text that is not JSON: a problem with line and column;
- a key given twice in one object (``json`` silently keeps the last): a problem at its path;
- ``NaN`` / ``Infinity`` (accepted by Python's ``json``, not by JSON), and a number too
  large for a float (``1e400``, which Python reads as infinity and the generated code
  could not spell): a problem at its path;
- an integer longer than Python converts (``sys.get_int_max_str_digits``, 4300 digits by
  default; ``json`` raises ``ValueError``): a problem with its path, line and column.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._problems import PathPart, Problem, UsageError, format_path

#: the tokens of valid JSON text that can hold digits: strings (skipped whole, so digits
#: inside them never count) and numbers
_DIGIT_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


class _NonFinite:
    """``NaN`` / ``Infinity`` / ``-Infinity``, or a float literal beyond the float range."""

    def __init__(self, token: str) -> None:
        self.token = token


class _LongInt:
    """An integer literal with more digits than Python converts; ``offset`` is set once
    the text has been searched for it (the parser does not tell where a number was)."""

    def __init__(self, digits: int) -> None:
        self.digits = digits
        self.offset = 0


def _parse_float(token: str) -> float | _NonFinite:
    value = float(token)
    return value if math.isfinite(value) else _NonFinite(token)


def _long_int_offsets(text: str) -> Iterator[int]:
    """Where the integer literals too long to convert start, in text order."""
    limit = sys.get_int_max_str_digits()
    for match in _DIGIT_TOKENS.finditer(text):
        token = match.group()
        if token[0] != '"' and token.lstrip("-").isdigit() and len(token.lstrip("-")) > limit:
            yield match.start()


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
    long_ints: list[_LongInt] = []

    def parse_int(token: str) -> int | _LongInt:
        try:
            return int(token)
        except ValueError:  # more digits than sys.get_int_max_str_digits() allows
            long_ints.append(_LongInt(len(token.lstrip("-"))))
            return long_ints[-1]

    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs_hook,
            parse_constant=_NonFinite,
            parse_float=_parse_float,
            parse_int=parse_int,
        )
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
    # the parser calls parse_int in text order, so the n-th long integer found is the n-th
    for long_int, offset in zip(long_ints, _long_int_offsets(text), strict=False):
        long_int.offset = offset
    problems: list[Problem] = []
    return _clean(value, (), problems, text), problems


def _clean(value: Any, path: tuple[PathPart, ...], problems: list[Problem], text: str) -> Any:
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
        return {k: _clean(v, (*path, k), problems, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, (*path, i), problems, text) for i, v in enumerate(value)]
    if isinstance(value, _NonFinite):
        problems.append(_non_finite(path, value.token))
        return None
    if isinstance(value, _LongInt):
        line, column = _position(text, value.offset)
        problems.append(
            Problem(
                path,
                f"the integer at {format_path(path)} has {value.digits} digits, more than "
                f"the {sys.get_int_max_str_digits()} Python reads.",
                "Use a number of sensible size (no schema needs thousands of digits), or leave "
                "the keyword out.",
                line=line,
                column=column,
            )
        )
        return None
    return value


def _non_finite(path: tuple[PathPart, ...], token: str) -> Problem:
    if token in ("NaN", "Infinity", "-Infinity"):
        return Problem(
            path,
            f"{token} is not a JSON number.",
            "Use a finite number, or leave the keyword out.",
        )
    shown = token if len(token) <= 24 else token[:21] + "..."
    return Problem(
        path,
        f"the number {shown} is too large for a float: it would be read as infinity.",
        "Use a finite number (at most about 1.7e308 either way), or leave the keyword out.",
    )


def non_finite_problems(value: Any, path: tuple[PathPart, ...] = ()) -> list[Problem]:
    """A problem for every NaN or infinity in an already-parsed value.

    ``parse_json_text`` reports them itself; this is for plans handed over as Python data
    (``check_plan_data``), where ``float("inf")`` would otherwise reach the generated code
    as the undefined name ``inf``.
    """
    if isinstance(value, float) and not math.isfinite(value):
        token = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return [_non_finite(path, token)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite_problems(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in non_finite_problems(v, (*path, i))]
    return []


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
