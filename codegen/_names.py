"""Turn any event or property name into a readable snake_case Python identifier.

Pure functions, table-tested in ``tests/codegen/test_names.py``. The rules, in order:

1. NFKC-normalise (Python itself NFKC-normalises identifiers, so two names that differ
   only there would otherwise collide silently).
2. Split into words at every character that cannot be part of an identifier (spaces,
   dashes, dots, punctuation, emoji, ``_``) and at camelCase boundaries
   (``orderID`` -> ``order``, ``ID``; ``HTTPStatus`` -> ``HTTP``, ``Status``).
3. Lowercase each word. Latin letters lose their accents (``Café`` -> ``cafe``,
   ``Größe`` -> ``groesse``); other scripts are kept as the valid unicode identifiers
   they are (``日本`` stays ``日本``), since transliterating them would be a guess.
4. Join with ``_``. A name with no letters or digits at all is spelled with the unicode
   names of its characters (``🎉`` -> ``party_popper``, ``%`` -> ``percent_sign``).
5. A leading digit gets a prefix naming the kind: ``event_`` for event functions,
   ``prop_`` for properties (``3DS Enabled`` -> ``prop_3ds_enabled``).
6. Python keywords, soft keywords, lowercase builtins and the names the generated package
   itself uses (``load``, ``track``, ``sync``, ``self``, ``properties``...) get a trailing
   underscore (``class`` -> ``class_``, ``type`` -> ``type_``, ``Flush`` -> ``flush_``).

Two names that end up with the same identifier are a plan error (reported by the plan
model with both paths), never silently renamed.
"""

from __future__ import annotations

import keyword
import unicodedata
from typing import Literal

Kind = Literal["event", "property"]

#: hard keywords, and soft keywords up to Python 3.12 (``type``), whatever runs codegen
KEYWORDS = frozenset(keyword.kwlist) | {"_", "case", "match", "type"}

#: lowercase builtins, fixed here so the output does not depend on the Python that runs
#: codegen; a parameter named ``str`` would shadow the annotation of the next one
BUILTINS = frozenset(
    [
        "abs",
        "aiter",
        "all",
        "anext",
        "any",
        "ascii",
        "bin",
        "bool",
        "breakpoint",
        "bytearray",
        "bytes",
        "callable",
        "chr",
        "classmethod",
        "compile",
        "complex",
        "copyright",
        "credits",
        "delattr",
        "dict",
        "dir",
        "divmod",
        "enumerate",
        "eval",
        "exec",
        "exit",
        "filter",
        "float",
        "format",
        "frozenset",
        "getattr",
        "globals",
        "hasattr",
        "hash",
        "help",
        "hex",
        "id",
        "input",
        "int",
        "isinstance",
        "issubclass",
        "iter",
        "len",
        "license",
        "list",
        "locals",
        "map",
        "max",
        "memoryview",
        "min",
        "next",
        "object",
        "oct",
        "open",
        "ord",
        "pow",
        "print",
        "property",
        "quit",
        "range",
        "repr",
        "reversed",
        "round",
        "set",
        "setattr",
        "slice",
        "sorted",
        "staticmethod",
        "str",
        "sum",
        "super",
        "tuple",
        "type",
        "vars",
        "zip",
    ]
)

#: names the generated modules bind or use themselves
GENERATED = frozenset(
    [
        "load",
        "track",
        "identify",
        "group",
        "alias",
        "flush",
        "shutdown",
        "stats",
        "sync",
        "annotations",
        "attrs",
        "typing",
        "self",
        "cls",
        "to_properties",
        "properties",
    ]
)

RESERVED = KEYWORDS | BUILTINS | GENERATED

_PREFIX: dict[Kind, str] = {"event": "event_", "property": "prop_"}

#: Latin letters that NFKD does not decompose into an ASCII base and a mark
_LATIN = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "ø": "o",
        "œ": "oe",
        "đ": "d",
        "ł": "l",
        "þ": "th",
        "\u0131": "i",
        "ð": "d",
    }
)
_LATIN_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})


def _is_word_char(ch: str) -> bool:
    return ch != "_" and ("a" + ch).isidentifier()


def _camel_split(word: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for i in range(1, len(word)):
        prev, cur = word[i - 1], word[i]
        nxt = word[i + 1] if i + 1 < len(word) else ""
        if cur.isupper() and (prev.islower() or (prev.isupper() and nxt.islower())):
            parts.append(word[start:i])
            start = i
    parts.append(word[start:])
    return [p for p in parts if p]


def _fold(word: str) -> str:
    lower = word.lower()
    if lower.isascii():
        return lower
    # German umlauts read better expanded (Größe -> groesse) than stripped
    latin = lower.translate(_LATIN_GERMAN).translate(_LATIN)
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFKD", latin) if not unicodedata.combining(ch)
    )
    if stripped.isascii():
        return stripped
    return unicodedata.normalize("NFKC", lower)


def split_words(name: str) -> list[str]:
    """The lowercase words of ``name`` (rules 1-3 of the module docstring)."""
    text = unicodedata.normalize("NFKC", name)
    raw: list[str] = []
    current: list[str] = []
    for ch in text:
        if _is_word_char(ch):
            current.append(ch)
        elif current:
            raw.append("".join(current))
            current = []
    if current:
        raw.append("".join(current))
    words: list[str] = []
    for chunk in raw:
        for part in _camel_split(chunk):
            folded = _fold(part)
            # folding can leave characters that are not identifier characters (rare
            # compatibility forms); they separate words like punctuation does
            words.extend(w for w in split_plain(folded) if w)
    return words


def split_plain(text: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for ch in text:
        if _is_word_char(ch):
            current.append(ch)
        else:
            out.append("".join(current))
            current = []
    out.append("".join(current))
    return out


def _spelled_out(name: str) -> list[str]:
    words: list[str] = []
    for ch in unicodedata.normalize("NFKC", name):
        if ch.isspace() or unicodedata.category(ch) in ("Mn", "Me", "Cf", "Cc", "Co", "Cn"):
            continue
        words.extend(w for w in split_words(unicodedata.name(ch, "")) if w)
    return words


def identifier(name: str, kind: Kind) -> str | None:
    """The snake_case identifier for ``name``, or None when no identifier can be made.

    >>> identifier("Order Completed", "event")
    'order_completed'
    >>> identifier("class", "property")
    'class_'
    >>> identifier("2FA enabled", "property")
    'prop_2fa_enabled'
    """
    words = split_words(name) or _spelled_out(name)
    if not words:
        return None
    ident = "_".join(words)
    if not ident[0].isidentifier():
        ident = _PREFIX[kind] + ident
    if ident in RESERVED:
        ident += "_"
    if not ident.isidentifier() or unicodedata.normalize("NFKC", ident) != ident:
        return None
    return ident


def pascal(*idents: str) -> str:
    """CamelCase type name from identifiers: ``pascal("order_completed", "items")``."""
    parts = [p for ident in idents for p in ident.split("_") if p]
    return "".join(p[0].upper() + p[1:] for p in parts) or "Item"
