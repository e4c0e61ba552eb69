"""Test helpers: a local Amplitude- and Segment-compatible collector.

The collector is a real HTTP server on 127.0.0.1 that answers like the ingestion APIs,
records every request, and injects faults on demand, so tests exercise the SDK's real
network path instead of mocks::

    from itly_async.testing import Collector, Fault

    async def test_retries_a_503() -> None:
        async with Collector() as collector:
            collector.fail(503)
            ...  # point AmplitudeOptions(server_url=collector.amplitude_url) at it
            events = await collector.wait_for_amplitude(1)
            assert events[0]["event_type"] == "Process Started"

For blocking code use :class:`ThreadedCollector` (``with ThreadedCollector() as c:``); to
run one as a separate process, ``python -m itly_async.testing --port 0``.

Also here: :class:`RecordingAdapter`, a custom destination that records every call, and
``chaos(seed)``, the reliability suite's fault mix as a collector rule, and
:class:`VirtualClock`, which makes retry waits and backoff take no real time
(``Client(clock=vc.now, sleep=vc.sleep, rng=vc.rng)``).
"""

from itly_async.testing._clock import VirtualClock
from itly_async.testing._collector import (
    Collector,
    Fault,
    RecordedRequest,
    ThreadedCollector,
    chaos,
)
from itly_async.testing._recording import Call, RecordingAdapter

__all__ = [
    "Call",
    "Collector",
    "Fault",
    "RecordedRequest",
    "RecordingAdapter",
    "ThreadedCollector",
    "VirtualClock",
    "chaos",
]
