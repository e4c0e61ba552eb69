"""The peers' measurements, run in ``benchmarks/.venv-peers`` (never in the project's venv).

``python -m benchmarks.peers SCENARIO --sdk SDK --params JSON [--sink URL]``; prints one
``RESULT`` line (see ``_harness``). Standard library at import time: each SDK is imported
inside the function that uses it, so the orchestrator may import this module for its
constants. Scenarios:

``calls``     the SDK's track/capture call: per-call cost and delivered throughput
``memory``    RSS per event left queued behind a hanging destination
``validate``  ``jsonschema`` (what the legacy itly SDK validated with) on the same event

Every SDK gets the same batch size and flush interval, a queue large enough that nothing
is dropped, gzip off (its default), and otherwise its defaults.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

from benchmarks._harness import (
    Sink,
    call_figures,
    delivery_figures,
    delivery_timeout,
    emit,
    finish,
    peak_rss,
    rss,
)
from benchmarks.workload import (
    API_KEY,
    BATCH_SIZE,
    EVENT_NAME,
    FLUSH_INTERVAL,
    SCHEMA,
    USER_ID,
    Params,
    properties,
)

#: Package names and the versions installed in the peers' venv (``_venv.py`` pins them).
PINS: dict[str, str] = {
    "amplitude-analytics": "1.3.0",
    "segment-analytics-python": "2.4.0",
    "posthog": "7.91.1",
    "jsonschema": "4.26.0",
}
#: Table column / SDK key -> distribution name.
SDKS: dict[str, str] = {
    "amplitude": "amplitude-analytics",
    "segment": "segment-analytics-python",
    "posthog": "posthog",
}
#: Seconds an SDK's own flush may block (Segment's has no timeout of its own).
FLUSH_TIMEOUT = 120.0

#: ``import`` + construct a client, per SDK: timed in a fresh process by the orchestrator
#: beside our ``import`` + ``load``. ``{url}`` is the sink.
IMPORT_SNIPPETS: dict[str, str] = {
    "amplitude": (
        "from amplitude import Amplitude, Config\n"
        "client = Amplitude('bench-key-0123456789', Config(server_url='{url}/2/httpapi'))\n"
    ),
    "segment": (
        "from segment.analytics import Client\n"
        "client = Client('bench-key-0123456789', host='{url}')\n"
    ),
    "posthog": (
        "from posthog import Posthog\nclient = Posthog('bench-key-0123456789', host='{url}')\n"
    ),
}


class Peer:
    """One SDK behind the same four operations; ``loop`` is the timed part."""

    def __init__(self, base_url: str, max_queue: int) -> None:
        self.base_url = base_url
        self.max_queue = max_queue

    def loop(self, n: int, times: list[int]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def track_one(self) -> None:
        raise NotImplementedError


class AmplitudePeer(Peer):
    def __init__(self, base_url: str, max_queue: int) -> None:
        super().__init__(base_url, max_queue)
        from amplitude import Amplitude, BaseEvent, Config  # type: ignore[import-not-found,unused-ignore]

        # amplitude-analytics has no queue bound for new events (MAX_BUFFER_CAPACITY only
        # refuses retries), so max_queue has nothing to set.
        self.event_cls = BaseEvent
        self.client = Amplitude(
            API_KEY,
            Config(
                flush_queue_size=BATCH_SIZE,
                flush_interval_millis=int(FLUSH_INTERVAL * 1000),
                server_url=base_url + "/2/httpapi",
            ),
        )

    def track_one(self) -> None:
        self.client.track(
            self.event_cls(event_type=EVENT_NAME, user_id=USER_ID, event_properties=properties(0))
        )

    def loop(self, n: int, times: list[int]) -> None:
        client = self.client
        BaseEvent = self.event_cls  # noqa: N806 - the user's spelling of the class
        pc = time.perf_counter_ns
        prev = pc()
        for i in range(n):
            client.track(
                BaseEvent(
                    event_type=EVENT_NAME,
                    user_id=USER_ID,
                    event_properties={
                        "name": "checkout",
                        "count": i,
                        "ratio": 0.25,
                        "enabled": True,
                        "tags": ["a", "b"],
                    },
                )
            )
            now = pc()
            times[i] = now - prev
            prev = now

    def flush(self) -> None:
        for fut in self.client.flush() or ():
            if fut is not None:
                fut.result(FLUSH_TIMEOUT)

    def close(self) -> None:
        self.client.shutdown()


class SegmentPeer(Peer):
    def __init__(self, base_url: str, max_queue: int) -> None:
        super().__init__(base_url, max_queue)
        from segment.analytics import Client  # type: ignore[import-not-found,unused-ignore]

        self.client = Client(
            API_KEY,
            host=base_url,
            upload_size=BATCH_SIZE,
            upload_interval=FLUSH_INTERVAL,
            max_queue_size=max_queue,
        )

    def track_one(self) -> None:
        self.client.track(USER_ID, EVENT_NAME, properties(0))

    def loop(self, n: int, times: list[int]) -> None:
        client = self.client
        pc = time.perf_counter_ns
        prev = pc()
        for i in range(n):
            client.track(
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

    def flush(self) -> None:
        self.client.flush()

    def close(self) -> None:
        self.client.shutdown()


class PosthogPeer(Peer):
    def __init__(self, base_url: str, max_queue: int) -> None:
        super().__init__(base_url, max_queue)
        from posthog import Posthog  # type: ignore[import-not-found,unused-ignore]

        self.client = Posthog(
            API_KEY,
            host=base_url,
            flush_at=BATCH_SIZE,
            flush_interval=FLUSH_INTERVAL,
            max_queue_size=max_queue,
        )

    def track_one(self) -> None:
        self.client.capture(EVENT_NAME, distinct_id=USER_ID, properties=properties(0))

    def loop(self, n: int, times: list[int]) -> None:
        client = self.client
        pc = time.perf_counter_ns
        prev = pc()
        for i in range(n):
            client.capture(
                EVENT_NAME,
                distinct_id=USER_ID,
                properties={
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

    def flush(self) -> None:
        self.client.flush(timeout_seconds=FLUSH_TIMEOUT)

    def close(self) -> None:
        self.client.shutdown()


PEERS: dict[str, Callable[[str, int], Peer]] = {
    "amplitude": AmplitudePeer,
    "segment": SegmentPeer,
    "posthog": PosthogPeer,
}


def _run(sdk: str, sink: Sink, n: int) -> dict[str, Any]:
    peer = PEERS[sdk](sink.url, 2 * n)
    peer.track_one()  # start the SDK's threads, open a connection
    peer.flush()
    sink.wait(1, 10.0)
    sink.reset()
    gc.collect()
    times = [0] * n
    t_first = time.monotonic()
    peer.loop(n, times)
    peer.flush()
    stats = sink.wait(n, delivery_timeout(n))
    peer.close()
    return {**call_figures(times), **delivery_figures(n, t_first, stats)}


def calls(sdk: str, sink_url: str, p: Params) -> dict[str, Any]:
    sink = Sink(sink_url)
    runs: list[dict[str, Any]] = []
    for r in range(p.runs + 1):
        n = p.warmup_calls if r == 0 else p.calls
        result = _run(sdk, sink, n)
        if r > 0:
            runs.append(result)
        if result["delivered"] < n:
            break  # events were lost: more runs would only repeat the wait
    return {"runs": runs, "peak_rss": peak_rss()}


def memory(sdk: str, sink_url: str, p: Params) -> dict[str, Any]:
    n = p.mem_events
    peer = PEERS[sdk](sink_url.rstrip("/") + "/hang", 2 * n)
    peer.track_one()
    time.sleep(FLUSH_INTERVAL + 0.5)  # its first request is now hanging
    gc.collect()
    base = rss()
    peer.loop(n, [0] * n)
    time.sleep(0.5)
    gc.collect()
    after = rss()
    return {
        "bytes_per_event": (after - base) / n,
        "base_rss": base,
        "rss": after,
        "peak_rss": peak_rss(),
        "events": n,
    }


def validate(p: Params) -> dict[str, Any]:
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    props = properties(7)
    validator = jsonschema.Draft7Validator(SCHEMA)
    validator.validate(props)
    prebuilt: list[float] = []
    for _ in range(p.validate_runs):
        t0 = time.perf_counter()
        for _ in range(p.validate_calls):
            validator.validate(props)
        prebuilt.append((time.perf_counter() - t0) / p.validate_calls * 1e6)
    # jsonschema.validate() checks the schema and builds a validator on every call
    k = max(p.validate_calls // 20, 100)
    each_call: list[float] = []
    for _ in range(p.validate_runs):
        t0 = time.perf_counter()
        for _ in range(k):
            jsonschema.validate(props, SCHEMA)
        each_call.append((time.perf_counter() - t0) / k * 1e6)
    return {"prebuilt_us": prebuilt, "validate_fn_us": each_call}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    parser.add_argument("scenario", choices=["calls", "memory", "validate"])
    parser.add_argument("--sdk", choices=sorted(PEERS), default="segment")
    parser.add_argument("--params", required=True)
    parser.add_argument("--sink", default="")
    args = parser.parse_args()
    p = Params.from_json(args.params)
    if args.scenario == "calls":
        emit(calls(args.sdk, args.sink, p))
    elif args.scenario == "memory":
        finish(memory(args.sdk, args.sink, p))
    else:
        emit(validate(p))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
