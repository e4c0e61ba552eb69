"""The sync shim: scripts, threads, code inside a running loop, and real subprocesses."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from itly_async import (
    AmplitudeOptions,
    Client,
    DeliveryOptions,
    Options,
    SyncClient,
    ValidationError,
)
from itly_async.testing import ThreadedCollector
from tests.helpers import AMP_KEY, PLAN


@pytest.fixture
def threaded() -> Iterator[ThreadedCollector]:
    with ThreadedCollector() as c:
        yield c


def load(collector: ThreadedCollector, **options: object) -> tuple[Client, SyncClient]:
    client = Client()
    sync = SyncClient(client)
    sync.load(
        Options(
            context={"app": "sync-tests"},
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            **options,  # type: ignore[arg-type]
        ),
        plan=PLAN,
    )
    return client, sync


def test_sync_track_flush_delivers(threaded: ThreadedCollector) -> None:
    _, sync = load(threaded)
    for i in range(500):
        sync.track(f"user-{i:04d}", "Process Started", {"available_processors": i + 1})
    report = sync.flush(timeout=20)
    assert report.delivered == 500
    assert len(threaded.amplitude_events()) == 500
    sync.shutdown(timeout=5)


def test_validation_error_raises_in_the_calling_thread(threaded: ThreadedCollector) -> None:
    _, sync = load(threaded)
    with pytest.raises(ValidationError):
        sync.track("user-0001", "Process Started", {"available_processors": 0})
    assert sync.stats().enqueued == 0
    sync.shutdown(timeout=5)


def test_many_threads_share_one_client(threaded: ThreadedCollector) -> None:
    _, sync = load(threaded, delivery=DeliveryOptions(flush_queue_size=100))

    def work(t: int) -> None:
        for i in range(250):
            sync.track(f"user-{t:02d}-{i:04d}", "Process Started", {"available_processors": 1})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = sync.flush(timeout=30)
    assert report.delivered == 2000
    assert len({e["insert_id"] for e in threaded.amplitude_events()}) == 2000
    sync.shutdown(timeout=5)


def test_sync_calls_from_inside_a_running_loop(threaded: ThreadedCollector) -> None:
    client, sync = load(threaded)

    async def handler() -> None:
        for i in range(100):
            sync.track(f"user-{i:04d}", "Process Started", {"available_processors": 2})
        await client.track("user-0001", "Process Started", {"available_processors": 3})

    asyncio.run(handler())
    report = sync.flush(timeout=20)
    assert report.delivered == 101
    sync.shutdown(timeout=5)


def test_async_and_sync_share_one_client_across_asyncio_run_calls(
    threaded: ThreadedCollector,
) -> None:
    client, sync = load(threaded, delivery=DeliveryOptions(flush_queue_size=1000))

    async def first() -> None:
        for i in range(300):
            await client.track(f"user-{i:04d}", "Process Started", {"available_processors": 1})
        # returns without flushing: asyncio.run closes this loop with events pending

    asyncio.run(first())
    assert client.stats().pending == 300

    async def second() -> None:
        await client.track("user-9999", "Process Started", {"available_processors": 1})
        report = await client.flush(timeout=20)
        assert report.delivered == 301

    asyncio.run(second())
    assert len({e["insert_id"] for e in threaded.amplitude_events()}) == 301
    sync.shutdown(timeout=5)


SCRIPT = """
import sys
from itly_async import AmplitudeOptions, Client, Options, SyncClient

client = Client()
sync = SyncClient(client)
sync.load(Options(destinations={{"amplitude": AmplitudeOptions(
    api_key="{key}", server_url="{url}")}}))
for i in range(1000):
    sync.track("user-%04d" % i, "Script Event", {{"i": i}})
print("tracked", flush=True)
# no flush, no shutdown: the exit hook must deliver
"""


def test_script_that_exits_without_flush_delivers_everything(
    threaded: ThreadedCollector,
) -> None:
    code = textwrap.dedent(SCRIPT.format(key=AMP_KEY, url=threaded.amplitude_url))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "tracked" in done.stdout
    events = threaded.amplitude_events()
    assert len(events) == 1000
    assert len({e["insert_id"] for e in events}) == 1000


def test_production_script_against_a_dead_endpoint_exits_within_its_deadline() -> None:
    code = textwrap.dedent(
        """
        from itly_async import AmplitudeOptions, Client, DeliveryOptions, Environment
        from itly_async import Options, SyncClient
        sync = SyncClient(Client())
        sync.load(Options(environment=Environment.PRODUCTION,
            delivery=DeliveryOptions(shutdown_timeout=1.0),
            destinations={"amplitude": AmplitudeOptions(
                api_key="k-12345", server_url="http://127.0.0.1:9/2/httpapi")}))
        for i in range(10):
            sync.track("user-%04d" % i, "E")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "dropped" in done.stderr  # the exit hook says what it could not deliver
