"""``itly status``: which events of a source are called in the code, found by walking ASTs.

The visitor resolves what a call refers to through the file's imports, so each of these
counts as a call of the event function ``order_completed`` of the package ``itly``::

    await itly.order_completed(...)             import itly
    itly.sync.order_completed(...)              blocking API
    await analytics.order_completed(...)        import itly as analytics
    order_completed(...)                        from itly import order_completed
    await oc(...)                               from itly import order_completed as oc
    sync.order_completed(...)                   from itly import sync
    app.itly.order_completed(...)               import app.itly
    x = [await itly.order_completed(...)]       anywhere in an expression

The package is matched by name (``--package``, default ``itly``) as the last part of the
imported module path, so ``from myapp.analytics import itly`` works too. Each call is
checked against the generated signature: missing required arguments, unknown keywords
and too many positional arguments are reported. Calls with ``*args`` / ``**kwargs`` are
counted but not checked. Nothing is imported or executed.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import attrs

from ._model import Item, TrackingPlan
from ._problems import printable

#: folders never searched: environments, caches, VCS data
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "env", ".tox", ".nox", "__pycache__",
     "node_modules", "site-packages", ".mypy_cache", ".ruff_cache", ".pytest_cache", "build",
     "dist"}
)  # fmt: skip


@attrs.frozen
class Signature:
    """What a generated event function accepts."""

    positional: tuple[str, ...]  # user_id, then the required properties
    keyword_only: tuple[str, ...]  # optional properties, event_options

    @classmethod
    def of(cls, event: Item) -> Signature:
        params = event.parameters
        return cls(
            positional=("user_id", *(p.ident for p in params if p.required)),
            keyword_only=(*(p.ident for p in params if not p.required), "event_options"),
        )

    def check(self, call: ast.Call) -> list[str]:
        """Problems of one call, as short sentences."""
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords
        ):
            return []
        problems = []
        if len(call.args) > len(self.positional):
            problems.append(
                f"{len(call.args)} positional arguments, at most {len(self.positional)} "
                f"({', '.join(self.positional)}); pass optional properties by keyword"
            )
        given = set(self.positional[: len(call.args)])
        for kw in call.keywords:
            assert kw.arg is not None
            if kw.arg not in self.positional and kw.arg not in self.keyword_only:
                problems.append(f"unknown keyword {kw.arg}=")
            elif kw.arg in given:
                problems.append(f"{kw.arg} given twice")
            given.add(kw.arg)
        missing = [p for p in self.positional if p not in given]
        if missing:
            problems.append("missing required " + ", ".join(missing))
        return problems


@attrs.frozen
class Call:
    path: str
    line: int
    problems: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@attrs.frozen
class EventStatus:
    event: Item
    calls: tuple[Call, ...]

    @property
    def ok(self) -> bool:
        return bool(self.calls) and not any(c.problems for c in self.calls)


class _Visitor(ast.NodeVisitor):
    def __init__(self, package: str, functions: Mapping[str, Signature]) -> None:
        self.package = package
        self.functions = functions
        #: local name -> dotted path inside the package ("" is the package itself)
        self.bindings: dict[str, str] = {}
        #: local names bound by ``import a.b.itly`` to the first component
        self.roots: dict[str, list[str]] = {}
        self.star = False
        #: first pass: imports only; second pass: calls (a call above a late import, e.g.
        #: in a function defined before ``import itly`` at the bottom, still resolves)
        self.collecting_imports = True
        self.found: list[tuple[str, ast.Call]] = []

    def run(self, tree: ast.AST) -> list[tuple[str, ast.Call]]:
        self.visit(tree)
        if self.bindings or self.roots or self.star:
            self.collecting_imports = False
            self.visit(tree)
        return self.found

    # --- imports ---------------------------------------------------------------------

    def _inside(self, module: str) -> str | None:
        """The path inside the package for an absolute module path, or None."""
        parts = module.split(".")
        if self.package not in parts:
            return None
        index = len(parts) - 1 - parts[::-1].index(self.package)
        return ".".join(parts[index + 1 :])

    def visit_Import(self, node: ast.Import) -> None:
        if not self.collecting_imports:
            return
        for alias in node.names:
            inside = self._inside(alias.name)
            if inside is None:
                continue
            if alias.asname:
                self.bindings[alias.asname] = inside
            else:
                # ``import app.itly`` binds ``app``; calls look like app.itly.x(...)
                first = alias.name.split(".")[0]
                self.roots.setdefault(first, []).append(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not self.collecting_imports:
            return
        module = node.module or ""
        inside = self._inside(module) if module else None
        for alias in node.names:
            local = alias.asname or alias.name
            if inside is not None:
                target = f"{inside}.{alias.name}" if inside else alias.name
                if alias.name == "*":
                    self.star = True
                else:
                    self.bindings[local] = target
            elif alias.name == self.package:
                # ``from app import itly`` / ``from . import itly``
                self.bindings[local] = ""

    # --- calls -----------------------------------------------------------------------

    def _dotted(self, node: ast.expr) -> list[str] | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(node.id)
        return parts[::-1]

    def _resolve(self, func: ast.expr) -> str | None:
        """The event function a call refers to, or None."""
        parts = self._dotted(func)
        if not parts:
            return None
        head, rest = parts[0], parts[1:]
        if head in self.bindings:
            inside = [p for p in self.bindings[head].split(".") if p] + rest
        elif head in self.roots and self.package in parts:
            inside = parts[len(parts) - parts[::-1].index(self.package) :]
        elif self.star and not rest:
            inside = [head]
        else:
            return None
        if inside[:1] == ["sync"]:
            inside = inside[1:]
        if len(inside) == 1 and inside[0] in self.functions:
            return inside[0]
        return None

    def visit_Call(self, node: ast.Call) -> None:
        if not self.collecting_imports:
            name = self._resolve(node.func)
            if name is not None:
                self.found.append((name, node))
        self.generic_visit(node)


def python_files(roots: Iterable[str | Path], exclude: Iterable[Path] = ()) -> Iterator[Path]:
    """``.py`` files under ``roots`` (files given directly are always included)."""
    excluded = {p.resolve() for p in exclude}
    for root in roots:
        path = Path(root)
        if path.is_file():
            yield path
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d for d in dirnames if d not in SKIP_DIRS and (here / d).resolve() not in excluded
            )
            for filename in sorted(filenames):
                if filename.endswith(".py"):
                    yield here / filename


def scan(
    plan: TrackingPlan,
    source: str,
    roots: Sequence[str | Path],
    *,
    package: str = "itly",
    exclude: Iterable[Path] = (),
) -> tuple[list[EventStatus], list[str]]:
    """Every event of ``source`` with the calls found; and files that could not be read."""
    events = plan.events_of(source)
    signatures = {e.ident: Signature.of(e) for e in events}
    calls: dict[str, list[Call]] = {e.ident: [] for e in events}
    unreadable: list[str] = []
    for path in python_files(roots, exclude):
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError) as exc:
            unreadable.append(f"{path}: {exc.__class__.__name__}: {exc}")
            continue
        for name, node in _Visitor(package, signatures).run(tree):
            problems = tuple(signatures[name].check(node))
            calls[name].append(Call(str(path), node.lineno, problems))
    statuses = [
        EventStatus(e, tuple(sorted(calls[e.ident], key=lambda c: (c.path, c.line))))
        for e in events
    ]
    return statuses, unreadable


def report(statuses: Sequence[EventStatus]) -> list[str]:
    """One line per event: found (first call, and how many more) or missing; then problems."""
    names = {s.event.name: printable(s.event.name) for s in statuses}
    width = min(max((len(n) for n in names.values()), default=0), 40)
    lines = []
    for status in statuses:
        name = names[status.event.name].ljust(width)
        if not status.calls:
            lines.append(f"missing  {name}  {status.event.ident}(...) is never called")
            continue
        first = status.calls[0]
        more = f" (+{len(status.calls) - 1} more)" if len(status.calls) > 1 else ""
        label = "found  " if status.ok else "problem"
        lines.append(f"{label}  {name}  {first.where}{more}")
        for call in status.calls:
            for problem in call.problems:
                lines.append(f"         {call.where}: {status.event.ident}(): {problem}")
    return lines
