"""The loopback sink every SDK delivers to in a run: ``python -m benchmarks.sink``.

One aiohttp server, its own process (so its CPU never competes with the measured SDK for
a GIL), that accepts what each SDK posts and counts events:

=========================  ==================================  ==========================
path                       body                                answer (200)
=========================  ==================================  ==========================
``/2/httpapi``, ``/batch`` Amplitude ``{"events": [...]}``     Amplitude's ingestion JSON
``/v1/batch``              Segment ``{"batch": [...]}``        ``{"success": true}``
``/batch/``                PostHog ``{"batch": [...]}``        ``{"status": 1}``
``/hang/<any of those>``   anything                            nothing until ``/_reset``
=========================  ==================================  ==========================

Each answer is a ``web.Response`` with its body set, which aiohttp sends as one write
(headers and body together), so no client waits on a delayed ACK between the two.
Bodies are parsed with orjson to count events exactly. Control: ``/_reset`` zeroes the
counters and releases hanging requests, ``/_stats`` returns them, ``/_wait?events=N&
timeout=T`` returns them once ``N`` events are acknowledged. ``last_ack`` is
``time.monotonic()`` when the last event request was answered.

Once listening it prints ``listening on http://127.0.0.1:PORT`` and serves until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import signal
import socket
import sys
import time
from typing import Any

import orjson
from aiohttp import web

#: Largest body read: above every SDK's batch cap (PostHog's 5 MiB + one event).
MAX_BODY = 32 * 1024 * 1024
#: Longest a hanging request is held when nobody resets the sink.
HANG_SECONDS = 300.0

_JSON = "application/json"
_SEGMENT_OK = b'{"success":true}'
_POSTHOG_OK = b'{"status":1}'


class Counters:
    """What the sink has acknowledged since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.events = 0
        self.requests = 0
        self.bytes = 0
        self.other = 0
        self.hanging = 0
        self.first_at: float | None = None
        self.last_ack: float | None = None
        self.cpu0 = time.process_time()

    def snapshot(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "requests": self.requests,
            "bytes": self.bytes,
            "other_requests": self.other,
            "hanging": self.hanging,
            "first_at": self.first_at,
            "last_ack": self.last_ack,
            "cpu_seconds": time.process_time() - self.cpu0,
        }


class SinkServer:
    def __init__(self) -> None:
        self.c = Counters()
        self.changed = asyncio.Event()
        self.release = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        r = app.router
        r.add_post("/2/httpapi", self.amplitude)
        r.add_post("/batch", self.amplitude)
        r.add_post("/v1/batch", self.segment)
        r.add_post("/batch/", self.posthog)
        r.add_get("/_reset", self.reset)
        r.add_get("/_stats", self.stats)
        r.add_get("/_wait", self.wait)
        r.add_route("*", "/hang/{tail:.*}", self.hang)
        r.add_route("*", "/{tail:.*}", self.other)
        return app

    async def _count(self, request: web.Request, key: str) -> int:
        body = await request.read()
        if body[:2] == b"\x1f\x8b":  # gzip the server did not already undo
            body = gzip.decompress(body)
        payload = orjson.loads(body)
        n = len(payload.get(key) or ())
        c = self.c
        if c.first_at is None:
            c.first_at = time.monotonic()
        c.events += n
        c.requests += 1
        c.bytes += len(body)
        return n

    def _acked(self) -> None:
        self.c.last_ack = time.monotonic()
        self.changed.set()

    async def amplitude(self, request: web.Request) -> web.Response:
        n = await self._count(request, "events")
        body = (
            b'{"code":200,"events_ingested":%d,"payload_size_bytes":%d,"server_upload_time":%d}'
            % (
                n,
                request.content_length or 0,
                int(time.time() * 1000),
            )
        )
        self._acked()
        return web.Response(body=body, content_type=_JSON)

    async def segment(self, request: web.Request) -> web.Response:
        await self._count(request, "batch")
        self._acked()
        return web.Response(body=_SEGMENT_OK, content_type=_JSON)

    async def posthog(self, request: web.Request) -> web.Response:
        await self._count(request, "batch")
        self._acked()
        return web.Response(body=_POSTHOG_OK, content_type=_JSON)

    async def other(self, request: web.Request) -> web.Response:
        await request.read()
        self.c.other += 1
        return web.Response(body=b"{}", content_type=_JSON)

    async def hang(self, request: web.Request) -> web.Response:
        await request.read()
        self.c.hanging += 1
        release = self.release
        try:
            async with asyncio.timeout(HANG_SECONDS):
                await release.wait()
        except TimeoutError:
            pass
        return web.Response(status=503, body=b'{"code":503}', content_type=_JSON)

    async def reset(self, request: web.Request) -> web.Response:
        self.release.set()
        self.release = asyncio.Event()
        self.c.reset()
        return web.json_response(self.c.snapshot())

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.c.snapshot())

    async def wait(self, request: web.Request) -> web.Response:
        target = int(request.query.get("events", "0"))
        timeout = float(request.query.get("timeout", "60"))
        deadline = time.monotonic() + timeout
        while self.c.events < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.changed.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self.changed.wait()
            except TimeoutError:
                break
        return web.json_response(self.c.snapshot())


async def serve(host: str, port: int) -> None:
    sink = SinkServer()
    runner = web.AppRunner(sink.app(), access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    sys.stdout.write(f"listening on http://{host}:{bound}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    sink.release.set()
    await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
