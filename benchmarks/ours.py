"""Our measurements, run by the orchestrator in fresh processes of the project's venv.

``python -m benchmarks.ours SCENARIO --params JSON [--sink URL] [--mode M]``; prints one
``RESULT`` line (see ``_harness``). Scenarios:

``calls-async``  ``await client.track(...)``: per-call cost and delivered throughput
``calls-sync``   ``SyncClient.track(...)``: the same, from blocking code
``calls-generated``  ``await itly.bench_event(...)`` of a package made by ``itly pull``
``lag``          event-loop lag while ``lag_events`` are tracked and delivered
``memory``       RSS per event left queued behind a hanging (``--mode hang``) or
                 refusing (``--mode refused``: every event encoded, waiting to retry)
                 destination
``validate``     one precompiled fastjsonschema call on the workload's properties

Every client validates against a plan holding the event's schema with a precompiled
validator (what a generated package passes), in the production environment (an invalid
event would be logged, not raised; every event here is valid).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import socket
import sys
import time
from typing import Any

import fastjsonschema

from benchmarks._harness import (
    Sink,
    call_figures,
    delivery_figures,
    delivery_timeout,
    emit,
    finish,
    peak_rss,
    percentile,
    rss,
)
from benchmarks._plan200 import EVENT_PACKAGE
from benchmarks.workload import (
    API_KEY,
    BATCH_SIZE,
    CHUNK,
    EVENT_NAME,
    FLUSH_INTERVAL,
    SCHEMA,
    USER_ID,
    Params,
    properties,
)
from itly_async import (
    AmplitudeOptions,
    Client,
    DeliveryOptions,
    Environment,
    Options,
    Plan,
    Schema,
    SyncClient,
)
from itly_async._fastcheck import compile_check
from itly_async._validation import Validator

#: The ticker's nominal sleep; lag is how much longer each sleep took.
TICK = 0.001


def make_plan() -> Plan:
    return Plan(
        version="1.0.0",
        source="bench",
        # as a generated package passes it: the schema, its fastjsonschema validator, and
        # its sound pre-check (generated packages precompile both into _validators.py),
        # which also proves the values JSON-ready (check_ready)
        events={
            EVENT_NAME: Schema(
                schema=SCHEMA,
                validate=fastjsonschema.compile(SCHEMA),
                check=compile_check(SCHEMA),
                check_ready=True,
            )
        },
    )


def make_options(url: str, max_queue: int) -> Options:
    return Options(
        environment=Environment.PRODUCTION,
        destinations={"amplitude": AmplitudeOptions(api_key=API_KEY, server_url=url)},
        delivery=DeliveryOptions(
            flush_queue_size=BATCH_SIZE,
            flush_interval=FLUSH_INTERVAL,
            max_queue_size=max(max_queue, 20_000),
        ),
    )


def loaded_client(url: str, max_queue: int) -> Client:
    client = Client()
    client.load(make_options(url, max_queue), plan=make_plan())
    return client


# --- per-call cost and delivered throughput ----------------------------------------------


async def _async_run(sink: Sink, n: int) -> dict[str, Any]:
    client = loaded_client(sink.url + "/2/httpapi", 2 * n)
    await client.track(USER_ID, EVENT_NAME, properties(0))  # start the lane, open a connection
    await client.flush(10.0)
    sink.reset()
    gc.collect()
    times = [0] * n
    pc = time.perf_counter_ns
    t_first = time.monotonic()
    for start in range(0, n, CHUNK):
        prev = pc()
        for i in range(start, min(start + CHUNK, n)):
            await client.track(
                USER_ID,
                EVENT_NAME,
                {
                    "name": "checkout",
                    "count": i,
                    "ratio": 0.25,
                    "enabled": True,
                    "tags": ["a", "b"],
                },
            )
            now = pc()
            times[i] = now - prev
            prev = now
        await asyncio.sleep(0)  # the caller yields, as a request handler would
    report = await client.flush(delivery_timeout(n))
    stats = await asyncio.to_thread(sink.wait, n, 5.0)
    await client.shutdown(10.0)
    return {
        **call_figures(times),
        **delivery_figures(n, t_first, stats),
        "flush_timed_out": report.timed_out,
    }


def _sync_run(sink: Sink, n: int) -> dict[str, Any]:
    sync = SyncClient(Client())
    sync.load(make_options(sink.url + "/2/httpapi", 2 * n), plan=make_plan())
    sync.track(USER_ID, EVENT_NAME, properties(0))  # start the loop thread, open a connection
    sync.flush(10.0)
    sink.reset()
    gc.collect()
    times = [0] * n
    pc = time.perf_counter_ns
    t_first = time.monotonic()
    prev = pc()
    for i in range(n):
        sync.track(
            USER_ID,
            EVENT_NAME,
            {"name": "checkout", "count": i, "ratio": 0.25, "enabled": True, "tags": ["a", "b"]},
        )
        now = pc()
        times[i] = now - prev
        prev = now
    report = sync.flush(delivery_timeout(n))
    stats = sink.wait(n, 5.0)
    sync.shutdown(10.0)
    return {
        **call_figures(times),
        **delivery_figures(n, t_first, stats),
        "flush_timed_out": report.timed_out,
    }


async def _generated_run(sink: Sink, n: int, itly: Any) -> dict[str, Any]:
    """``await itly.bench_event(...)``: the generated function builds the properties dict
    itself from its arguments, as user code calls it. One package, one client, loaded
    once for every run (a generated package has a single client); each run is its own
    ``asyncio.run``, as in the other scenarios."""
    event = itly.bench_event
    await event(USER_ID, "checkout", 0, 0.25, True, ["a", "b"])
    await itly.flush(10.0)
    sink.reset()
    gc.collect()
    times = [0] * n
    pc = time.perf_counter_ns
    t_first = time.monotonic()
    for start in range(0, n, CHUNK):
        prev = pc()
        for i in range(start, min(start + CHUNK, n)):
            await event(USER_ID, "checkout", i, 0.25, True, ["a", "b"])
            now = pc()
            times[i] = now - prev
            prev = now
        await asyncio.sleep(0)  # the caller yields, as a request handler would
    report = await itly.flush(delivery_timeout(n))
    stats = await asyncio.to_thread(sink.wait, n, 5.0)
    return {
        **call_figures(times),
        **delivery_figures(n, t_first, stats),
        "flush_timed_out": report.timed_out,
    }


def generated_calls(sink_url: str, p: Params, package_dir: str) -> dict[str, Any]:
    sys.path.insert(0, package_dir)
    itly: Any = importlib.import_module(EVENT_PACKAGE)
    itly.load(
        itly.Options(
            environment=itly.Environment.PRODUCTION,
            destinations=itly.DestinationsOptions(
                amplitude=itly.AmplitudeOptions(server_url=sink_url + "/2/httpapi")
            ),
            delivery=make_options(sink_url, 2 * p.calls).delivery,
        )
    )
    sink = Sink(sink_url)
    runs: list[dict[str, Any]] = []
    for r in range(p.runs + 1):
        n = p.warmup_calls if r == 0 else p.calls
        result = asyncio.run(_generated_run(sink, n, itly))
        if r > 0:
            runs.append(result)
        if result["delivered"] < n:
            break
    itly.sync.shutdown(10.0)
    return {"runs": runs, "floor": floor_run(p.calls), "peak_rss": peak_rss()}


def floor_run(n: int) -> dict[str, float]:
    """The timing loop with the call taken out (it still builds the properties dict):
    what every SDK's figure includes before the SDK does anything."""
    times = [0] * n
    pc = time.perf_counter_ns
    prev = pc()
    for i in range(n):
        props = {"name": "checkout", "count": i, "ratio": 0.25, "enabled": True, "tags": ["a", "b"]}
        del props
        now = pc()
        times[i] = now - prev
        prev = now
    return call_figures(times)


def calls(sink_url: str, p: Params, mode: str) -> dict[str, Any]:
    sink = Sink(sink_url)
    runs: list[dict[str, Any]] = []
    for r in range(p.runs + 1):
        n = p.warmup_calls if r == 0 else p.calls
        result = asyncio.run(_async_run(sink, n)) if mode == "async" else _sync_run(sink, n)
        if r > 0:  # run 0 warms imports, caches and the sink's connections
            runs.append(result)
        if result["delivered"] < n:
            break  # events were lost: more runs would only repeat the wait
    return {"runs": runs, "floor": floor_run(p.calls), "peak_rss": peak_rss()}


# --- event-loop lag -------------------------------------------------------------------


async def _lag_run(sink: Sink, n: int) -> dict[str, Any]:
    client = loaded_client(sink.url + "/2/httpapi", 2 * n)
    await client.track(USER_ID, EVENT_NAME, properties(0))
    await client.flush(10.0)
    sink.reset()
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            t = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - t - TICK)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    del lags[:]
    t_first = time.monotonic()
    for start in range(0, n, CHUNK):
        for i in range(start, min(start + CHUNK, n)):
            await client.track(
                USER_ID,
                EVENT_NAME,
                {
                    "name": "checkout",
                    "count": i,
                    "ratio": 0.25,
                    "enabled": True,
                    "tags": ["a", "b"],
                },
            )
        await asyncio.sleep(0)
    await client.flush(delivery_timeout(n))
    running = False
    await tick
    stats = await asyncio.to_thread(sink.wait, n, 5.0)
    await client.shutdown(10.0)
    ordered = sorted(lags)
    return {
        "p50_ms": percentile(ordered, 0.50) * 1e3,
        "p99_ms": percentile(ordered, 0.99) * 1e3,
        "max_ms": ordered[-1] * 1e3 if ordered else float("nan"),
        "ticks": len(ordered),
        **delivery_figures(n, t_first, stats),
    }


async def _idle_lag(seconds: float) -> dict[str, float]:
    """The ticker alone: what the timer itself oversleeps on this machine."""
    lags: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append(time.perf_counter() - t - TICK)
    ordered = sorted(lags)
    return {"p50_ms": percentile(ordered, 0.5) * 1e3, "p99_ms": percentile(ordered, 0.99) * 1e3}


def lag(sink_url: str, p: Params) -> dict[str, Any]:
    sink = Sink(sink_url)
    idle = asyncio.run(_idle_lag(0.5))
    runs = [asyncio.run(_lag_run(sink, p.lag_events)) for _ in range(p.lag_runs)]
    return {"runs": runs, "idle": idle, "chunk": CHUNK, "tick_ms": TICK * 1e3}


# --- memory per queued event -------------------------------------------------------------


def _closed_port() -> int:
    """A loopback port nobody listens on: connections are refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def _fresh_left(client: Client) -> int | None:
    """Events not yet encoded in any lane. Reads a private field (benchmark only): there is
    no public counter for it; None when the runtime no longer has it."""
    lanes = getattr(client, "_lanes", None)
    try:
        return sum(len(lane.fresh) for lane in lanes or ())
    except AttributeError:
        return None


async def _queue(client: Client, n: int, encoded: bool) -> bool | None:
    """Track ``n`` events (yielding every CHUNK calls); with ``encoded``, then wait until
    the lane has encoded every one (True), or say it could not tell (None) or timed out."""
    for start in range(0, n, CHUNK):
        for i in range(start, min(start + CHUNK, n)):
            await client.track(
                USER_ID,
                EVENT_NAME,
                {
                    "name": "checkout",
                    "count": i,
                    "ratio": 0.25,
                    "enabled": True,
                    "tags": ["a", "b"],
                },
            )
        await asyncio.sleep(0)
    if not encoded:
        await asyncio.sleep(0.2)
        return None
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        left = _fresh_left(client)
        if left is None or left == 0:
            return left == 0 if left is not None else None
        await asyncio.sleep(0.05)
    return False


async def _memory_run(sink: Sink, n: int, mode: str) -> dict[str, Any]:
    """RSS growth per queued event. ``hang``: the destination never answers, events wait
    unencoded. ``refused``: connections are refused, every event is encoded and waits for
    its retry. ``outage``: the same after an earlier ``n`` events have been queued and
    encoded, so memory freed by then can be reused: the steady state of a long outage."""
    if mode == "hang":
        url = sink.url + "/hang/2/httpapi"
    else:
        url = f"http://127.0.0.1:{_closed_port()}/2/httpapi"
    client = loaded_client(url, 3 * n)
    await client.track(USER_ID, EVENT_NAME, properties(0))
    await client.flush(0.3)  # the first request now hangs (or was refused)
    if mode == "outage":
        await _queue(client, n, encoded=True)
    gc.collect()
    base = rss()
    encoded_all = await _queue(client, n, encoded=mode != "hang")
    gc.collect()
    after = rss()
    stats = client.stats()
    return {
        "bytes_per_event": (after - base) / n,
        "base_rss": base,
        "rss": after,
        "peak_rss": peak_rss(),
        "pending": stats.pending,
        "encoded_all": encoded_all,
        "events": n,
    }


# --- validation ---------------------------------------------------------------------------


def validate(p: Params) -> dict[str, Any]:
    # what a call runs: the pre-check, and fastjsonschema only when it cannot decide
    fn = Validator(EVENT_NAME, make_plan().events[EVENT_NAME]).check
    props = properties(7)
    fn(props)
    per_call: list[float] = []
    for _ in range(p.validate_runs):
        t0 = time.perf_counter()
        for _ in range(p.validate_calls):
            fn(props)
        per_call.append((time.perf_counter() - t0) / p.validate_calls * 1e6)
    return {"validator_us": per_call}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ours")
    parser.add_argument(
        "scenario",
        choices=["calls-async", "calls-sync", "calls-generated", "lag", "memory", "validate"],
    )
    parser.add_argument("--params", required=True)
    parser.add_argument("--sink", default="")
    parser.add_argument("--package-dir", default="", help="calls-generated: where it is")
    parser.add_argument("--mode", default="hang", choices=["hang", "refused", "outage"])
    args = parser.parse_args()
    p = Params.from_json(args.params)
    if args.scenario == "calls-async":
        emit(calls(args.sink, p, "async"))
    elif args.scenario == "calls-sync":
        emit(calls(args.sink, p, "sync"))
    elif args.scenario == "calls-generated":
        emit(generated_calls(args.sink, p, args.package_dir))
    elif args.scenario == "lag":
        emit(lag(args.sink, p))
    elif args.scenario == "memory":
        finish(asyncio.run(_memory_run(Sink(args.sink), p.mem_events, args.mode)))
    else:
        emit(validate(p))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
