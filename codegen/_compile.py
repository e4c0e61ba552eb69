"""Precompile the item schemas to Python with ``fastjsonschema.compile_to_code``.

All items of a package compile in one pass: a root schema holds them under
``definitions`` and references each once, so fastjsonschema emits one function per item,
``validate___definitions_<key>``, sharing one header and one table of regexes. The root
function (which would repeat every schema) is cut out.

Plan text reaches this code only through fastjsonschema's escaping. ``audit`` re-reads the
output as a syntax tree and refuses anything a validator never contains (imports beyond
the header, calls of eval/exec/open..., dunder attributes), so a hostile property name
that ever got through the escaping would stop the generator instead of shipping.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

import fastjsonschema

from itly_async._validation import FORMATS

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

#: formats compiled from a pattern because fastjsonschema has no built-in one: the
#: runtime's table, so that schemas compiled at load check exactly what generated code does
CUSTOM_FORMATS = dict(FORMATS)

_ALLOWED_IMPORTS = frozenset({"re", "decimal", "fastjsonschema"})
_FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "vars",
        "breakpoint",
        "input",
        "exit",
        "quit",
        "importlib",
        "os",
        "sys",
        "subprocess",
    }
)


class CompileError(Exception):
    """fastjsonschema rejected a schema, or its output failed the audit."""


def function_name(key: str) -> str:
    """The function fastjsonschema emits for ``definitions/<key>`` (keys are [a-z0-9_])."""
    return "validate___definitions_" + key


def compile_items(schemas: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Validator source for ``(key, item schema)`` pairs; keys must match ``[a-z0-9_]+``.

    Defaults in schemas are not filled in (``use_default=False``): validating an event
    must never change it.
    """
    for key, _ in schemas:
        if not key or not all(c.isascii() and (c.isalnum() or c == "_") for c in key):
            raise ValueError(f"definition key {key!r} must be [a-z0-9_]+")
        if key != key.lower():
            raise ValueError(f"definition key {key!r} must be lowercase")
    root = {
        "$schema": DRAFT_07,
        "definitions": {key: _for_compiler(schema) for key, schema in schemas},
        # allOf, not anyOf: the root function then only calls the others; with anyOf it
        # would carry the whole plan in its error message
        "allOf": [{"$ref": f"#/definitions/{key}"} for key, _ in schemas],
    }
    try:
        code: str = fastjsonschema.compile_to_code(
            root,
            formats=CUSTOM_FORMATS,
            use_default=False,
            # the runtime explains failures from the schema dicts; without the schema
            # repeated in every raise the module is far smaller, and parses faster
            detailed_exceptions=False,
        )
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise CompileError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - fastjsonschema's own bugs surface as plan errors
        raise CompileError(f"{type(exc).__name__}: {exc}") from None
    code = _drop_root(code)
    audit(code, expected={function_name(key) for key, _ in schemas})
    return code


def definition_error(schema: Mapping[str, Any]) -> str | None:
    """fastjsonschema's complaint about an item schema, or None when it compiles."""
    try:
        fastjsonschema.compile_to_code(
            {"$schema": DRAFT_07, **_for_compiler(schema)},
            formats=CUSTOM_FORMATS,
            use_default=False,
            detailed_exceptions=False,
        )
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a fastjsonschema bug is a schema it cannot take
        return f"{type(exc).__name__}: {exc}"
    return None


def _for_compiler(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``const: x`` as ``enum: [x]`` (same meaning): fastjsonschema cannot compile ``const``
    without detailed exceptions. Property names are left alone."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "const":
            out["enum"] = [value]
        elif key == "enum" and "const" in schema:
            continue  # const narrows the enum to one value
        elif key == "items" and isinstance(value, dict):
            out[key] = _for_compiler(value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _for_compiler(sub) for name, sub in value.items()}
        else:
            out[key] = value
    return out


def _drop_root(code: str) -> str:
    # fastjsonschema starts every function at column 0 with "def "; the audit re-parses
    # the result, so a cut in the wrong place could not go unnoticed
    start = code.find("\ndef validate(")
    if start < 0:
        return code
    end = code.find("\ndef ", start + 1)
    return code[: start + 1] + (code[end + 1 :] if end >= 0 else "")


def audit(code: str, expected: set[str]) -> None:
    """Refuse validator source that does anything but validate (see the module docstring)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise CompileError(f"the compiled validators do not parse: {exc}") from None
    functions = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
            if any((m or "").split(".")[0] not in _ALLOWED_IMPORTS for m in modules):
                raise CompileError("the compiled validators import an unexpected module")
        elif not isinstance(node, ast.Assign):
            raise CompileError(f"unexpected top-level statement at line {node.lineno}")
    missing = expected - functions
    if missing:
        raise CompileError(f"the compiled validators lack {sorted(missing)}")
    for inner in ast.walk(tree):
        _audit_node(inner, tree)


def _audit_node(node: ast.AST, tree: ast.Module) -> None:
    if isinstance(node, ast.Import | ast.ImportFrom) and node not in tree.body:
        raise CompileError(f"unexpected import at line {node.lineno}")
    if isinstance(node, ast.Name) and node.id in _FORBIDDEN_NAMES:
        raise CompileError(f"unexpected name {node.id!r} at line {node.lineno}")
    if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
        raise CompileError(f"unexpected attribute {node.attr!r} at line {node.lineno}")
    if isinstance(node, ast.Lambda | ast.ClassDef | ast.Global | ast.Nonlocal):
        raise CompileError(f"unexpected construct at line {node.lineno}")
