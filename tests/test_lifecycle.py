"""Lifecycle, options and the public surface."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

import itly_async
from itly_async import (
    AmplitudeOptions,
    Client,
    ClientClosedError,
    ConfigurationError,
    CustomOptions,
    DeliveryOptions,
    Environment,
    NotLoadedError,
    Options,
    Plan,
    PlanDestination,
    SegmentOptions,
)
from itly_async.testing import Collector, Fault, RecordedRequest, VirtualClock
from tests.helpers import AMP_KEY, ListLogger, eventually


def test_public_names_are_pinned() -> None:
    assert itly_async.__all__ == sorted(itly_async.__all__)
    assert set(itly_async.__all__) == {
        "AmplitudeOptions",
        "Client",
        "ClientClosedError",
        "ClientStateError",
        "ConfigurationError",
        "CustomOptions",
        "DeliveryOptions",
        "DeliveryReport",
        "DestinationStats",
        "Environment",
        "Event",
        "EventOptions",
        "ItlyError",
        "ItlyLogger",
        "NotLoadedError",
        "Options",
        "Plan",
        "PlanDestination",
        "PropertyError",
        "Rejection",
        "Schema",
        "SegmentOptions",
        "StdLogger",
        "Stats",
        "SyncClient",
        "ValidationError",
        "ValidationOptions",
        "__version__",
    }


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: DeliveryOptions(flush_queue_size=-1), "flush_queue_size"),
        (lambda: DeliveryOptions(flush_interval=0), "flush_interval"),
        (lambda: DeliveryOptions(overflow="explode"), "overflow"),  # type: ignore[arg-type]
        (lambda: DeliveryOptions(max_queue_size=10, flush_queue_size=20), "flush_queue_size"),
        (lambda: DeliveryOptions(timeout=-3), "timeout"),
        (lambda: AmplitudeOptions(api_key=""), "api_key"),
        (lambda: AmplitudeOptions(server_zone="MARS"), "server_zone"),  # type: ignore[arg-type]
        (lambda: AmplitudeOptions(server_url="ftp://x"), "server_url"),
        (lambda: AmplitudeOptions(min_id_length=0), "min_id_length"),
        (lambda: SegmentOptions(write_key="  "), "write_key"),
        (lambda: CustomOptions(adapter=object()), "adapter"),
        (lambda: Options(environment="staging"), "environment"),  # type: ignore[arg-type]
        (lambda: Options(destinations={"a": 1}), "destinations"),  # type: ignore[dict-item]
        (lambda: Options(logger=object()), "logger"),  # type: ignore[arg-type]
    ],
)
def test_bad_options_name_the_field(build: Callable[[], object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build()


def test_key_values_never_appear_in_reprs_or_errors() -> None:
    secret = "super-secret-key-123"
    assert secret not in repr(AmplitudeOptions(api_key=secret))
    assert secret not in repr(SegmentOptions(write_key=secret))
    with pytest.raises(ValueError, match="api_key") as info:
        AmplitudeOptions(api_key="")
    assert secret not in str(info.value)


class NullAdapter:
    def track(self, user_id: str | None, event: object) -> None:
        return None


def test_missing_keys_and_adapters_are_configuration_errors() -> None:
    plan = Plan(
        destinations={
            "amplitude": PlanDestination(vendor="amplitude", keys={"development": "dev-key-1"}),
            "custom": PlanDestination(vendor="custom"),
        }
    )
    with pytest.raises(ConfigurationError, match=r"destinations\.custom"):
        Client().load(Options(), plan=plan)
    with pytest.raises(ConfigurationError, match=r"destinations\.amplitude\.api_key"):
        Client().load(
            Options(
                environment=Environment.PRODUCTION,
                destinations={"custom": CustomOptions(adapter=NullAdapter())},
            ),
            plan=plan,
        )


async def test_plan_keys_are_used_per_environment(collector: Collector) -> None:
    collector.api_keys = {"prod-key-1"}
    plan = Plan(
        destinations={
            "amplitude": PlanDestination(
                vendor="amplitude", keys={"development": "dev-key-1", "production": "prod-key-1"}
            )
        }
    )
    client = Client()
    client.load(
        Options(
            environment=Environment.PRODUCTION,
            destinations={"amplitude": AmplitudeOptions(server_url=collector.amplitude_url)},
        ),
        plan=plan,
    )
    await client.track("user-0001", "Tick")
    await client.flush(timeout=10)
    assert len(collector.amplitude_events()) == 1
    await client.shutdown(timeout=5)


async def test_a_bad_key_is_reported_without_the_key(collector: Collector) -> None:
    collector.api_keys = {"the-right-key"}
    logger = ListLogger()
    secret = "the-wrong-key-42"
    client = Client()
    client.load(
        Options(
            logger=logger,
            destinations={
                "amplitude": AmplitudeOptions(api_key=secret, server_url=collector.amplitude_url)
            },
        )
    )
    await client.track("user-0001", "Tick")
    report = await client.shutdown(timeout=0.5)
    assert report.delivered == 0
    assert "amplitude" in logger.text()
    assert secret not in logger.text()
    assert all(secret not in r.reason for r in report.rejections)


async def test_call_before_load_raises() -> None:
    with pytest.raises(NotLoadedError):
        await Client().track("user-0001", "Tick")


async def test_call_after_shutdown_raises_in_development_and_counts_in_production(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    dev = make_client()
    await dev.shutdown(timeout=5)
    with pytest.raises(ClientClosedError):
        await dev.track("user-0001", "Tick")

    logger = ListLogger()
    prod = make_client(environment=Environment.PRODUCTION, segment=True, logger=logger)
    await prod.track("user-0001", "Tick")
    first = await prod.shutdown(timeout=5)
    await prod.track("user-0001", "Tick")
    assert "dropped by destination 'segment': closed" in logger.text()
    stats = prod.stats()
    # counted per destination like every other count, so the totals add up
    assert stats.dropped_by_reason == {"closed": 2}
    assert stats.destinations["segment"].dropped_by_reason == {"closed": 1}
    assert stats.enqueued == stats.sent + stats.rejected + stats.dropped + stats.pending == 4
    assert await prod.shutdown(timeout=5) is first  # idempotent


def _open_sockets() -> int:
    """Sockets this process holds, read from /proc (Linux)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the listing's own descriptor, closed once it was read
            continue
        count += target.startswith("socket:")
    return count


async def test_disabled_opens_no_socket_and_starts_no_thread(collector: Collector) -> None:
    threads_before = threading.active_count()
    tasks_before = len(asyncio.all_tasks())
    sockets_before = _open_sockets()
    client = Client()
    client.load(
        Options(
            disabled=True,
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
        )
    )
    for i in range(100):
        await client.track(f"user-{i:04d}", "Tick")
    await client.identify("user-0001", {"a": 1})
    client_sync = itly_async.SyncClient(client)
    client_sync.track("user-0001", "Tick")
    report = await client.flush(timeout=1)
    assert report.stats.enqueued == 0
    assert threading.active_count() == threads_before
    assert len(asyncio.all_tasks()) == tasks_before
    assert collector.requests == []
    assert _open_sockets() == sockets_before
    assert client.state == "disabled"
    await client.shutdown(timeout=1)
    assert client.state == "closed"
    # still a no-op after shutdown, in the development environment too: disabled means
    # the SDK is out of the application's way, not that its calls start to raise
    await client.track("user-0001", "Tick")
    client_sync.track("user-0001", "Tick")
    assert client.stats().dropped == 0
    assert threading.active_count() == threads_before


async def test_overflow_drop_newest_counts_every_drop(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    collector.hang(times=None)
    logger = ListLogger()
    client = make_client(
        logger=logger,
        delivery=DeliveryOptions(flush_queue_size=10, max_queue_size=50, timeout=30),
    )
    for i in range(200):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    stats = client.stats()
    assert stats.dropped_by_reason == {"queue_full": 150}
    assert stats.pending == 50
    assert "queue_full" in logger.text()
    await client.shutdown(timeout=0.5)


async def test_overflow_drop_oldest_keeps_the_newest(
    collector: Collector, make_client: Callable[..., Client]
) -> None:
    """Fresh events only (both request slots hang): the oldest fresh ones make room."""
    collector.hang(times=2)
    client = make_client(
        delivery=DeliveryOptions(
            flush_queue_size=10, max_queue_size=30, overflow="drop_oldest", timeout=30
        )
    )
    for i in range(20):  # two batches of ten: both requests hang
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    await eventually(lambda: len(collector.requests) == 2, "both requests on the wire")
    for i in range(20, 120):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    stats = client.stats()
    assert stats.dropped_by_reason == {"queue_full": 90}
    assert stats.pending == 30
    report = await client.shutdown(timeout=0.5)
    # in flight: 0-19 (never answered); queued when it stopped: the newest ten, 110-119
    assert report.stats.dropped_by_reason == {"queue_full": 90, "shutdown": 30}


async def test_overflow_drop_oldest_drops_events_awaiting_retry_first(
    collector: Collector, vclock: VirtualClock
) -> None:
    """In an outage the queue fills with refused events waiting to be retried; those are
    the oldest, so they make room for new events, not the other way round."""
    refusing = True
    retry_waits_end = asyncio.Event()

    def outage(request: RecordedRequest) -> Fault | None:
        return Fault(status=503, headers={"Retry-After": "100"}) if refusing else None

    async def blocked_sleep(seconds: float) -> None:
        await retry_waits_end.wait()  # the virtual clock stands still until released

    collector.add_rule(outage)
    client = Client(clock=vclock.now, sleep=blocked_sleep, rng=vclock.rng)
    client.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            delivery=DeliveryOptions(
                flush_queue_size=10, max_queue_size=30, overflow="drop_oldest"
            ),
        )
    )
    for i in range(30):
        await client.track(f"user-{i:04d}", "Old", {"i": i})
    await eventually(lambda: client.stats().retried == 30, "all 30 refused and parked")
    for i in range(20):
        await client.track(f"user-{i:04d}", "New", {"i": i})
    stats = client.stats()
    assert stats.dropped_by_reason == {"queue_full": 20}
    assert stats.pending == 30

    refusing = False
    vclock.advance(200)
    retry_waits_end.set()
    report = await client.flush(timeout=10)
    assert report.pending == 0
    kept = sorted(
        (e["event_type"], e["event_properties"]["i"]) for e in collector.amplitude_events()
    )
    assert kept == [("New", i) for i in range(20)] + [("Old", i) for i in range(20, 30)]
    await client.shutdown(timeout=5)


def test_import_leaves_out_what_most_clients_never_use() -> None:
    """aiohttp (imported off the loop, on first delivery), sqlite3 (spool only), gzip and
    email (HTTP-date Retry-After) stay out of ``import itly_async`` and ``load``."""
    code = (
        "import sys, itly_async\n"
        "c = itly_async.Client()\n"
        "c.load(itly_async.Options(disabled=True))\n"
        "print(' '.join(m for m in ('aiohttp', 'sqlite3', 'gzip', 'email.utils')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
