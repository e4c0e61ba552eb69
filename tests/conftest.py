"""Shared fixtures: a real collector on 127.0.0.1 and clients wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from itly_async import AmplitudeOptions, Client, DeliveryOptions, Options, SegmentOptions
from itly_async.testing import Collector, VirtualClock
from tests.helpers import AMP_KEY, SEG_KEY


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    async with Collector() as c:
        yield c


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def make_client(collector: Collector, vclock: VirtualClock) -> Callable[..., Client]:
    """Build a loaded client pointed at the collector; shut down by the test or at exit."""

    def make(
        *,
        amplitude: bool = True,
        segment: bool = False,
        delivery: DeliveryOptions | None = None,
        destinations: dict[str, Any] | None = None,
        **options: Any,
    ) -> Client:
        dests: dict[str, Any] = {}
        if amplitude:
            dests["amplitude"] = AmplitudeOptions(
                api_key=AMP_KEY, server_url=collector.amplitude_url
            )
        if segment:
            dests["segment"] = SegmentOptions(write_key=SEG_KEY, host=collector.segment_host)
        dests.update(destinations or {})
        client = Client(clock=vclock.now, sleep=vclock.sleep, rng=vclock.rng)
        client.load(
            Options(
                destinations=dests,
                delivery=delivery or DeliveryOptions(flush_queue_size=100),
                **options,
            )
        )
        return client

    return make
