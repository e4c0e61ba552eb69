"""Plan text -> Python source: string literals, docstrings and comments stay inert."""

from __future__ import annotations

import ast

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen._render import Code, bracketed, comment, docstring, environment, py_literal, py_str

HOSTILE = [
    "",
    '"',
    "'",
    '"""',
    "'''",
    "\\",
    'ends with a quote"',
    "ends with a backslash\\",
    '"; import os; os.system("x") #',
    "line\nbreak",
    "carriage\rreturn",
    "tab\there",
    "nul\x00byte",
    "esc\x1b[31m",
    "separator\u2028here",
    "lone \ud800 surrogate",
    "emoji 🎉 and 日本語",
    "{braces} and %s and {0}",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_py_str_round_trips(text: str) -> None:
    literal = py_str(text)
    assert "\n" not in literal
    assert ast.literal_eval(literal) == text


@given(st.text())
def test_py_str_round_trips_any_text(text: str) -> None:
    assert ast.literal_eval(py_str(text)) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("plain", '"plain"'), ('say "hi"', "'say \"hi\"'"), ("it's", '"it\'s"'), ("a\\b", '"a\\\\b"')],
)
def test_py_str_picks_quotes_like_ruff(text: str, expected: str) -> None:
    assert py_str(text) == expected


def test_py_literal() -> None:
    value = {"a": [1, 2.5, True, None, "x\ny"], 'k"': {"nested": False}}
    assert ast.literal_eval(py_literal(value)) == value


def _docstring_of(code: str) -> str | None:
    tree = ast.parse(code)
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    # nothing but the docstring and `pass`: no text escaped into code
    assert len(func.body) == 2
    return ast.get_docstring(func, clean=False)


@pytest.mark.parametrize("text", HOSTILE)
def test_docstring_cannot_be_escaped(text: str) -> None:
    code = (
        "def f():\n" + docstring(text or ".", [text, "last line " + text], "    ") + "\n    pass\n"
    )
    doc = _docstring_of(code)
    assert doc is not None


@given(st.text(), st.text())
def test_docstring_cannot_be_escaped_by_any_text(summary: str, body: str) -> None:
    code = "def f():\n" + docstring(summary, body.splitlines(), "    ") + "\n    pass\n"
    _docstring_of(code)


@given(st.text())
def test_comment_stays_one_line(text: str) -> None:
    line = "# " + comment(text)
    tree = ast.parse(line + "\nx = 1\n")
    assert len(tree.body) == 1
    assert "\n" not in line
    assert "\r" not in line


def test_bracketed_layouts() -> None:
    assert bracketed("f(", ["a", "b"], "", "") == "f(a, b)"
    long = [f"argument_{i}" for i in range(12)]
    hugged = bracketed("call(", long[:6], "", "")
    assert hugged == "call(" + ", ".join(long[:6]) + ")"
    exploded = bracketed("call(", long, "", "")
    assert exploded.splitlines() == ["call(", *(f"    {a}," for a in long), ")"]
    collection = bracketed("x = [", long, "", "", closer="]", collection=True)
    assert collection.splitlines()[-2].endswith(",")  # one item per line, trailing comma


def test_templates_refuse_plain_text() -> None:
    env = environment()
    template = env.from_string("x = {{ value }}\n")
    assert template.render(value=Code('"ok"')) == 'x = "ok"\n'
    with pytest.raises(TypeError, match="plain text"):
        template.render(value='"; import os')
    assert isinstance(env, jinja2.Environment)
