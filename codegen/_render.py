"""Turn plan text into Python source safely, already in ``ruff format`` style.

Every string from the plan reaches the generated code through one of these functions:

- ``py_str``: a string literal. Backslashes, the quote and every non-printable character
  (newlines, ``\\u2028``, lone surrogates, ANSI escapes...) are escaped, so no plan text
  can end the literal. The quote is chosen the way ``ruff format`` chooses it.
- ``docstring``: the body of a triple-quoted docstring: backslashes are doubled, a quote
  that could join others into ``\"\"\"`` is escaped, non-printables are escaped as above.
- ``comment``: text for a ``#`` comment, as a ``repr`` (no line break survives).

``Code`` marks text that is already Python source. The Jinja environment refuses to print
anything else, so a template cannot interpolate raw plan text by mistake.
"""

from __future__ import annotations

import io
import math
import textwrap
import tokenize
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import jinja2

LINE_LENGTH = 100
INDENT = "    "


class Code(str):
    """Text that is Python source, safe to put into a template as is."""

    __slots__ = ()


def _escape_char(ch: str, quote: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch == quote:
        return "\\" + quote
    if ch.isprintable():
        return ch
    simple = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if ch in simple:
        return simple[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def py_str(text: str) -> Code:
    """A Python string literal for ``text`` (double quotes unless single need fewer escapes)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    return Code(quote + "".join(_escape_char(ch, quote) for ch in text) + quote)


def py_literal(value: Any) -> Code:
    """A Python literal for a JSON value (dicts and lists on one line)."""
    if value is None:
        return Code("None")
    if value is True:
        return Code("True")
    if value is False:
        return Code("False")
    if isinstance(value, int):
        return Code(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):  # repr would be the undefined name inf or nan
            raise ValueError(f"not a JSON number: {value!r} (the plan checks reject it)")
        return Code(repr(value))
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, list | tuple):
        return Code("[" + ", ".join(py_literal(v) for v in value) + "]")
    if isinstance(value, dict):
        items = ", ".join(f"{py_str(str(k))}: {py_literal(v)}" for k, v in value.items())
        return Code("{" + items + "}")
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _escape_doc_line(line: str) -> str:
    out = []
    for i, ch in enumerate(line):
        if ch == '"' and (line[i + 1 : i + 2] == '"' or i == len(line) - 1):
            # a quote next to another, or last on the line (the closing quotes may follow)
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_escape_char(ch, ""))
    return "".join(out)


def wrap(text: str, width: int, indent: str = "", subsequent: str | None = None) -> list[str]:
    """Plan prose as lines of at most ``width`` columns (long words are kept whole).

    Line breaks in the text are kept; trailing spaces are dropped (ruff would drop them).
    """
    lines: list[str] = []
    first = True
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        raw = line.rstrip()
        if not raw.strip():
            lines.append("")
            continue
        lead = indent if first else (subsequent if subsequent is not None else indent)
        lines.extend(
            textwrap.wrap(
                raw.strip(),
                width=max(width, 20),
                initial_indent=lead,
                subsequent_indent=subsequent if subsequent is not None else indent,
                break_long_words=False,
                break_on_hyphens=False,
                replace_whitespace=False,
                drop_whitespace=True,
            )
        )
        first = False
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def docstring(summary: str, body: Sequence[str], indent: str) -> Code:
    """A complete docstring statement at ``indent``; ``body`` lines are unindented text."""
    summary_lines = wrap(summary, LINE_LENGTH - len(indent) - 6) or ["."]
    escaped = [_escape_doc_line(ln) for ln in summary_lines]
    rest = [_escape_doc_line(ln) for ln in body]
    if len(escaped) == 1 and not rest:
        text = escaped[0]
        # a one-line docstring ending in a quote would need the escape anyway
        return Code(f'{indent}"""{text}"""')
    lines = [f'{indent}"""{escaped[0]}']
    lines.extend(f"{indent}{ln}" if ln else "" for ln in escaped[1:])
    if rest:
        lines.append("")
        lines.extend(f"{indent}{ln}" if ln else "" for ln in rest)
    lines.append(f'{indent}"""')
    return Code("\n".join(lines))


def comment(text: str) -> Code:
    """Plan text for a ``#`` comment: its repr, so no line break or control character survives."""
    return Code(repr(text))


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal, as ``ruff format`` counts them: East Asian
    wide and full-width characters take two, combining marks and format characters none."""
    if text.isascii():
        return len(text)  # every ASCII character takes one column
    total = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def fits(line: str) -> bool:
    """Whether every line of ``line`` fits within ``LINE_LENGTH`` columns."""
    return all(width(part) <= LINE_LENGTH for part in line.split("\n"))


def bracketed(
    head: str,
    items: Iterable[str],
    tail: str,
    indent: str,
    closer: str = ")",
    *,
    collection: bool = False,
    signature: bool = False,
) -> str:
    """``head(item, item)tail`` laid out the way ``ruff format`` lays it out.

    One line if it fits. Otherwise a call, signature or subscript keeps its items together
    on one indented line if that fits (or if there is a single item); a collection
    display (``collection=True``: dict, list) or anything still too long puts one item
    per line with a trailing comma, which the formatter then keeps exploded.

    A ``def`` signature (``signature=True``) split around a body without a single comma
    (outside brackets) gets a trailing comma, as the formatter adds one there.
    """
    items = list(items)
    one_line = f"{indent}{head}{', '.join(items)}{closer}{tail}"
    if fits(one_line) or not items:
        return one_line
    inner = indent + INDENT
    if not collection:
        hugged = f"{inner}{', '.join(items)}"
        if fits(hugged) or len(items) == 1:
            if signature and not _has_comma(hugged):
                hugged += ","
            return f"{indent}{head}\n{hugged}\n{indent}{closer}{tail}"
    body = "".join(f"{inner}{item},\n" for item in items)
    return f"{indent}{head}\n{body}{indent}{closer}{tail}"


def _has_comma(code: str) -> bool:
    """Whether ``code`` holds a comma outside brackets and string literals."""
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(code.strip()).readline):
            if token.type != tokenize.OP:
                continue
            if token.string in "([{":
                depth += 1
            elif token.string in ")]}":
                depth -= 1
            elif token.string == "," and depth == 0:
                return True
    except (tokenize.TokenError, SyntaxError):
        return "," in code
    return False


def _only_code(value: object) -> object:
    if isinstance(value, str) and not isinstance(value, Code):
        raise TypeError(
            f"template tried to print plain text {value[:40]!r}; wrap it with py_str/docstring"
        )
    return value


def environment() -> jinja2.Environment:
    """The Jinja environment of the templates in ``codegen/templates``."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("codegen", "templates"),
        autoescape=False,  # noqa: S701 - the output is Python; _only_code guards interpolation
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        finalize=_only_code,
    )
