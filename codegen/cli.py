"""The ``itly`` command: ``check``, ``pull``, ``status`` and ``collector``.

Exit codes: 0 success; 1 problems found (plan problems, events not instrumented); 2 usage
error (bad arguments, missing file, unknown source); 3 an internal error, i.e. a bug in
itly (printed as one line; set ``ITLY_DEBUG=1`` for the traceback). Nothing is ever
printed as a bare traceback.
"""

from __future__ import annotations

import argparse
import keyword
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from . import _status
from ._compile import CompileError
from ._export import ExportDefaults
from ._generate import generate
from ._model import load_plan
from ._problems import PlanError, UsageError, printable
from ._write import (
    describe_changes,
    find_ruff,
    format_files,
    parse_snapshot,
    read_snapshot,
    write_package,
)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

_VENDORS = ("amplitude", "segment", "custom")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises instead of exiting (so main() owns the exit)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _destination(text: str) -> tuple[str, str]:
    key, _, vendor = text.partition("=")
    vendor = vendor or (key if key in _VENDORS else "")
    if vendor not in _VENDORS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write KEY=VENDOR with VENDOR one of {', '.join(_VENDORS)} "
            "(or just amplitude / segment)"
        )
    return key, vendor


def _add_export_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "for an Iteratively schema.json export (ignored for a full tracking plan)"
    )
    group.add_argument(
        "--destination",
        action="append",
        type=_destination,
        metavar="KEY[=VENDOR]",
        help="a destination of the source (repeatable; default: amplitude=amplitude)",
    )
    group.add_argument(
        "--plan-version", default="0.0.0", help="the plan's version (default: 0.0.0)"
    )


def _defaults(args: argparse.Namespace, source: str | None) -> ExportDefaults:
    destinations = dict(args.destination or [("amplitude", "amplitude")])
    return ExportDefaults(
        source=source or "default", destinations=destinations, version=args.plan_version
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="itly",
        description="Generate a typed analytics package from a tracking plan, and check it.",
        epilog="Exit codes: 0 ok, 1 problems found, 2 usage error, 3 internal error.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    check = sub.add_parser(
        "check",
        help="validate a tracking plan and list every problem",
        description="Validate a tracking plan; print every problem with its JSON path "
        "and how to fix it.",
    )
    check.add_argument("--plan", default="tracking-plan.json", help="the plan file")
    check.add_argument(
        "--source",
        help="name of the source (for a schema.json export; for a full plan, one of its sources)",
    )
    _add_export_flags(check)

    pull = sub.add_parser(
        "pull",
        help="generate the package of one source",
        description="Generate the package of SOURCE into OUT/PACKAGE and print what "
        "changed since the last pull there.",
    )
    pull.add_argument("source", metavar="SOURCE", help="the source to generate")
    pull.add_argument("--plan", default="tracking-plan.json", help="the plan file")
    pull.add_argument("--out", default=".", help="folder to write the package into (.)")
    pull.add_argument("--package", default="itly", help="package name (itly)")
    pull.add_argument(
        "--force",
        action="store_true",
        help="overwrite OUT/PACKAGE even if itly did not generate it",
    )
    pull.add_argument(
        "--no-format",
        action="store_true",
        help="skip ruff format (the output is formatted already for ordinary plans)",
    )
    _add_export_flags(pull)

    status = sub.add_parser(
        "status",
        help="show which events are called in the code",
        description="Find the calls of each event of SOURCE in the Python files under DIR "
        "(default: .). Exit 0 when every event is called correctly, 1 otherwise.",
    )
    status.add_argument("dirs", nargs="*", metavar="DIR", default=["."])
    status.add_argument("--plan", default="tracking-plan.json", help="the plan file")
    status.add_argument("--source", required=True, help="the source whose events to look for")
    status.add_argument("--package", default="itly", help="the generated package's name (itly)")
    _add_export_flags(status)

    collector = sub.add_parser(
        "collector",
        help="run a local Amplitude/Segment-compatible collector (for demos and tests)",
        description="Run itly_async.testing's collector until SIGTERM or Ctrl-C.",
    )
    collector.add_argument("--host", default="127.0.0.1")
    collector.add_argument("--port", type=int, default=0)
    return parser


def _print_problems(error: PlanError, out: TextIO) -> None:
    for problem in error.problems:
        print(problem.render(error.filename), file=out)
    count = len(error.problems)
    print(f"{count} problem{'s' if count != 1 else ''} found in {error.filename}", file=out)


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    plan = load_plan(args.plan, defaults=_defaults(args, args.source))
    if args.source is not None:
        # an export's source is named by --source itself; a full plan must define it
        plan.require_source(args.source)
    sources = ", ".join(f"{s} ({len(plan.events_of(s))} events)" for s in plan.sources)
    print(
        f"{args.plan}: OK: plan version {printable(plan.version)}, {len(plan.events)} events; "
        f"sources: {sources}",
        file=out,
    )
    return EXIT_OK


def _check_package_name(name: str) -> None:
    # soft keywords (match, type...) are fine: ``import match`` works
    if not name.isidentifier() or name.startswith("_"):
        raise UsageError(f"--package {name!r} must be a Python identifier not starting with _")
    if keyword.iskeyword(name):
        raise UsageError(
            f"--package {name!r} is a Python keyword, so `import {name}` would be a syntax "
            f"error; choose another name, e.g. {name}_tracking"
        )
    if name in sys.stdlib_module_names or name in _RUNTIME_MODULES:
        raise UsageError(
            f"--package {name!r} is the name of a module the generated package (or Python) "
            f"imports itself, which it would hide; choose another name, e.g. {name}_tracking"
        )


#: top-level modules a generated package imports, beside the standard library's
_RUNTIME_MODULES = frozenset(("itly_async", "fastjsonschema", "attrs", "orjson", "aiohttp"))


def cmd_pull(args: argparse.Namespace, out: TextIO) -> int:
    _check_package_name(args.package)
    plan = load_plan(args.plan, defaults=_defaults(args, args.source))
    plan.require_source(args.source)
    files = generate(plan, args.source, args.package)
    if not args.no_format:
        files = format_files(files, find_ruff())
    package_dir = Path(args.out) / args.package
    before = read_snapshot(package_dir)
    try:
        write_package(files, package_dir, force=args.force)
    except OSError as exc:
        raise UsageError(_unwritable(args.out, package_dir, exc)) from None
    after = parse_snapshot(files["_validators.py"])
    events = len(plan.events_of(args.source))
    print(
        f"itly pull {args.source}: wrote {package_dir} "
        f"(plan version {printable(plan.version)}, {events} events)",
        file=out,
    )
    if after is None:  # pragma: no cover - we just generated it
        return EXIT_OK
    if before is None:
        print("first pull into this folder", file=out)
    else:
        changes = describe_changes(before, after)
        if changes:
            print("changes since the last pull:", file=out)
            for line in changes:
                print(f"  {line}", file=out)
        else:
            print("no changes since the last pull", file=out)
    return EXIT_OK


def _unwritable(out_dir: str, package_dir: Path, exc: OSError) -> str:
    """Why ``--out`` cannot take the package, for a usage error."""
    here = Path(out_dir)
    if here.exists() and not here.is_dir():
        why = f"{out_dir} is a file, not a folder"
    else:
        why = f"cannot write {package_dir} ({exc.strerror or exc})"
    return f"--out {out_dir}: {why}; choose a folder you can write to"


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    plan = load_plan(args.plan, defaults=_defaults(args, args.source))
    plan.require_source(args.source)
    for d in args.dirs:
        if not Path(d).exists():
            raise UsageError(f"{d}: no such file or directory")
    statuses, unreadable = _status.scan(plan, args.source, args.dirs, package=args.package)
    for line in _status.report(statuses):
        print(line, file=out)
    for line in unreadable:
        print(f"skipped (cannot parse): {line}", file=sys.stderr)
    ok = sum(s.ok for s in statuses)
    print(f"{ok} of {len(statuses)} events of source {args.source!r} instrumented", file=out)
    return EXIT_OK if ok == len(statuses) else EXIT_PROBLEMS


def cmd_collector(args: argparse.Namespace, out: TextIO) -> int:
    sys.argv = ["itly collector", "--host", args.host, "--port", str(args.port)]
    runpy.run_module("itly_async.testing", run_name="__main__", alter_sys=True)
    return EXIT_OK


_COMMANDS = {
    "check": cmd_check,
    "pull": cmd_pull,
    "status": cmd_status,
    "collector": cmd_collector,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args, out)
    except PlanError as exc:
        _print_problems(exc, out)
        return EXIT_PROBLEMS
    except CompileError as exc:
        print(f"itly: a schema could not be compiled: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except UsageError as exc:
        print(f"itly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("itly: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``itly status | head``): point stdout at /dev/null so the
        # interpreter's final flush does not complain, and say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the CLI boundary: one clean line, never a traceback
        if os.environ.get("ITLY_DEBUG"):
            raise
        print(
            f"itly: internal error: {type(exc).__name__}: {exc} (set ITLY_DEBUG=1 for the "
            "traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
