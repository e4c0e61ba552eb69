"""Run a collector as its own process: ``python -m itly_async.testing [--host H] [--port P]``.

Once it is listening it prints one line, ``listening on http://HOST:PORT``, and flushes
stdout, so a parent process can read the port (``--port 0``, the default, picks a free
one). It serves until SIGTERM or SIGINT, then prints the summary as one line of JSON and
exits 0. While running, ``GET /_summary`` answers the same summary (requests, statuses,
faults, accepted events per Amplitude ``event_type`` and per Segment type and event name)
and ``GET /_events`` the accepted Amplitude events and Segment messages.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from itly_async.testing._collector import Collector


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m itly_async.testing",
        description="A local Amplitude- and Segment-compatible collector.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: a free one)")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this Amplitude api_key (repeatable; default: any)",
    )
    parser.add_argument(
        "--write-key",
        action="append",
        dest="write_keys",
        metavar="KEY",
        help="accept only this Segment write key (repeatable; default: any)",
    )
    return parser.parse_args(argv)


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:  # event loops without signal support (Windows)
            signal.signal(signum, lambda _n, _f: loop.call_soon_threadsafe(stop.set))


async def _serve(args: argparse.Namespace) -> dict[str, Any]:
    stop = asyncio.Event()
    _on_signals(stop)
    api_keys = set(args.api_keys) if args.api_keys else None
    write_keys = set(args.write_keys) if args.write_keys else None
    async with Collector(args.host, args.port, api_keys=api_keys, write_keys=write_keys) as c:
        sys.stdout.write(f"listening on {c.url}\n")
        sys.stdout.flush()
        await stop.wait()
    return c.summary()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; print the summary; return the exit status."""
    args = _parse_args(argv)
    try:
        summary = asyncio.run(_serve(args))
    except OSError as exc:  # the address cannot be bound
        sys.stderr.write(f"cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
