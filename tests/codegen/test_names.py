"""Name mangling: any event or property name -> a readable snake_case identifier."""

from __future__ import annotations

import importlib
import inspect
import keyword
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen._names import RESERVED, Kind, identifier, pascal, split_words
from codegen.samples import small_plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Order Completed", "order_completed"),
        ("order-completed", "order_completed"),
        ("order.completed", "order_completed"),
        ("  padded  name  ", "padded_name"),
        ("orderID", "order_id"),
        ("HTTPStatus", "http_status"),
        ("userID2", "user_id2"),
        ("ABTest", "ab_test"),
        ("snake_case_already", "snake_case_already"),
        ("__init__", "init"),
        ("None", "none"),
        ("Café au lait", "cafe_au_lait"),
        ("Größe", "groesse"),
        ("İstanbul", "istanbul"),
        ("ﬁle", "file"),  # NFKC: Python would read the ligature as "file" anyway
        ("日本語 イベント", "日本語_イベント"),
        ("σύνολο", "σύνολο"),
        ("🎉", "party_popper"),
        ("%", "percent_sign"),
        ("_", "low_line"),  # no letters: spelled out (and so not the soft keyword "_")
        ("a\nb\u2028c", "a_b_c"),
        ('quote"key', "quote_key"),
        ("{braces}", "braces"),
    ],
)
def test_identifier(name: str, expected: str) -> None:
    assert identifier(name, "property") == expected


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("2FA enabled", "property", "prop_2fa_enabled"),
        ("3DSecure", "property", "prop_3d_secure"),
        ("404 Not Found", "event", "event_404_not_found"),
    ],
)
def test_leading_digits_get_the_prefix_of_their_kind(name: str, kind: Kind, expected: str) -> None:
    assert identifier(name, kind) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("class", "class_"),  # keyword
        ("Import", "import_"),
        ("match", "match_"),  # soft keywords
        ("case", "case_"),
        ("type", "type_"),
        ("self", "self_"),  # would clash with Context's self
        ("str", "str_"),  # builtins: would shadow annotations
        ("id", "id_"),
        ("load", "load_"),  # the generated API's own names
        ("Flush", "flush_"),
        ("sync", "sync_"),
        ("properties", "properties_"),
        ("to_properties", "to_properties_"),
    ],
)
def test_reserved_names_get_a_trailing_underscore(name: str, expected: str) -> None:
    assert identifier(name, "property") == expected


@pytest.mark.parametrize("name", ["", "   ", "\u0301", "\u200b"])
def test_no_identifier_without_letters_or_symbols(name: str) -> None:
    assert identifier(name, "event") is None


def test_pascal() -> None:
    assert pascal("order_completed", "items", "item") == "OrderCompletedItemsItem"
    assert pascal("class_", "prop_3ds") == "ClassProp3ds"
    assert pascal() == "Item"


def test_split_words() -> None:
    assert split_words("User signedUp via HTTPRequest") == [
        "user",
        "signed",
        "up",
        "via",
        "http",
        "request",
    ]


@given(st.text(max_size=40))
def test_any_name_gives_a_valid_unreserved_identifier_or_none(name: str) -> None:
    kinds: tuple[Kind, ...] = ("event", "property")
    for kind in kinds:
        result = identifier(name, kind)
        if result is None:
            continue
        assert result.isidentifier()
        assert not keyword.iskeyword(result)
        assert result not in RESERVED
        assert not result.startswith("_")
        assert result == result.lower() or not result.isascii()


def test_type_names_avoid_function_names_in_scripts_without_case(
    import_generated: Callable[..., ModuleType], tools: Any
) -> None:
    """``日`` + enum ``本`` makes the alias name ``日本``, which no capital letter keeps
    apart from the function of the event ``日本`` (nor from ``track`` & co., in principle)."""
    plan = small_plan(
        events=[
            {"name": "日", "properties": {"本": {"enum": ["a", "b"]}}, "required": ["本"]},
            {"name": "日本"},
        ]
    )
    module = import_generated(plan)
    assert inspect.iscoroutinefunction(module.日本)
    models = importlib.import_module(f"{module.__name__}._models")
    assert models.日本2 == Literal["a", "b"]
    assert "日本2" in module.__all__
    proc = subprocess.run(
        [tools.mypy, "--strict", "--no-incremental", str(Path(module.__file__).parent)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=tools.env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
