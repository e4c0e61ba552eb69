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
    CustomOptions,
    DeliveryOptions,
    DeliveryReport,
    Options,
    SyncClient,
    ValidationError,
)
from itly_async.testing import RecordingAdapter, ThreadedCollector
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


def test_blocking_flush_and_shutdown_on_the_loop_that_delivers(
    threaded: ThreadedCollector,
) -> None:
    """Sync code called from a coroutine whose loop is the client's home: that loop is
    blocked by the very call, so delivery moves to the private loop thread and the call
    still delivers, instead of waiting on itself or starting a loop inside a loop."""
    client, sync = load(threaded)

    async def handler() -> tuple[int, int, str]:
        for i in range(40):
            await client.track(f"user-{i:04d}", "Process Started", {"available_processors": 2})
        flushed = sync.flush(timeout=20)
        await client.track("user-0040", "Process Started", {"available_processors": 2})
        closed = sync.shutdown(timeout=10)
        return flushed.delivered, closed.delivered, client.state

    flushed, closed, state = asyncio.run(handler())
    assert (flushed, closed, state) == (40, 41, "closed")
    assert len({e["insert_id"] for e in threaded.amplitude_events()}) == 41


def test_a_shutdown_called_while_another_runs_gets_its_report(
    threaded: ThreadedCollector,
) -> None:
    """The first shutdown is held inside an adapter's flush() while a second one starts
    from another thread; the first then stops the private loop. The second must not be
    running on that loop: it waits for, and returns, the first one's report."""
    entered, release = threading.Event(), threading.Event()

    class SlowFlush:
        def track(self, user_id: str | None, event: object) -> None:
            return None

        def flush(self) -> None:
            entered.set()
            release.wait(30)

    client = Client()
    sync = SyncClient(client)
    sync.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=threaded.amplitude_url),
                "slow": CustomOptions(adapter=SlowFlush()),
            }
        )
    )
    for i in range(50):
        sync.track(f"user-{i:04d}", "Tick", {"i": i})
    results: dict[str, object] = {}

    def stop(name: str) -> None:
        try:
            results[name] = sync.shutdown(timeout=20)
        except BaseException as exc:  # recorded, then asserted on below
            results[name] = exc

    first = threading.Thread(target=stop, args=("first",))
    first.start()
    assert entered.wait(30)
    second = threading.Thread(target=stop, args=("second",))
    second.start()
    release.set()
    first.join(30)
    second.join(30)
    assert isinstance(results["first"], DeliveryReport), results
    assert results["second"] is results["first"]
    assert results["first"].delivered == 100


def test_an_adapter_is_shut_down_with_the_client_not_with_each_loop(
    threaded: ThreadedCollector,
) -> None:
    recorder = RecordingAdapter()
    client = Client()
    client.load(Options(destinations={"rec": CustomOptions(adapter=recorder)}))

    async def batch(name: str) -> None:
        for i in range(5):
            await client.track(f"user-{i:04d}", name)
        await client.flush(timeout=10)

    asyncio.run(batch("First"))
    asyncio.run(batch("Second"))
    assert recorder.shutdowns == 0
    assert len(recorder.events("First")) == len(recorder.events("Second")) == 5
    asyncio.run(client.shutdown(timeout=5))
    assert recorder.shutdowns == 1
    assert recorder.loaded_with is not None


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


def test_a_loop_closed_without_shutdown_hands_delivery_to_the_next_one(
    threaded: ThreadedCollector,
) -> None:
    """``run_until_complete`` then ``close``: unlike ``asyncio.run``, nothing cancels the
    lanes' tasks, so the client must not reuse what belonged to that loop (its wake-up
    events, its HTTP session). A real process, as such a script would be."""
    code = textwrap.dedent(
        f"""
        import asyncio
        from itly_async import AmplitudeOptions, Client, Options

        client = Client()
        client.load(Options(destinations={{"amplitude": AmplitudeOptions(
            api_key="{AMP_KEY}", server_url="{threaded.amplitude_url}")}}))

        async def first():
            for i in range(50):
                await client.track("user-%04d" % i, "First")
            await client.flush(10)  # a session is open on this loop now
            for i in range(10):
                await client.track("user-%04d" % i, "Left Behind")

        loop = asyncio.new_event_loop()
        loop.run_until_complete(first())
        loop.close()

        async def second():
            for i in range(10):
                await client.track("user-%04d" % i, "Second")
            report = await client.flush(10)
            print("delivered", report.delivered, "pending", report.pending)
            await client.shutdown(5)

        asyncio.run(second())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "delivered 70 pending 0" in done.stdout, done.stderr
    assert "internal error" not in done.stderr
    names = [e["event_type"] for e in threaded.amplitude_events()]
    assert sorted(set(names)) == ["First", "Left Behind", "Second"]
    assert len(names) == 70


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


def test_an_async_program_that_never_shuts_down_delivers_at_exit(
    threaded: ThreadedCollector,
) -> None:
    """asyncio.run returns with events pending and nobody calls shutdown: the exit hook
    delivers them from a fresh loop."""
    code = textwrap.dedent(
        f"""
        import asyncio
        from itly_async import AmplitudeOptions, Client, Options

        client = Client()
        client.load(Options(destinations={{"amplitude": AmplitudeOptions(
            api_key="{AMP_KEY}", server_url="{threaded.amplitude_url}")}}))

        async def main():
            for i in range(500):
                await client.track("user-%04d" % i, "Async Script Event", {{"i": i}})

        asyncio.run(main())
        print("returned", flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "returned" in done.stdout
    events = threaded.amplitude_events()
    assert sorted(e["event_properties"]["i"] for e in events) == list(range(500))


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
