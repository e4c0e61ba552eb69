"""Real processes: fork, preforking workers, overflow under a long outage."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from itly_async import AmplitudeOptions, Client, DeliveryOptions, Options, SyncClient
from itly_async.testing import Collector, ThreadedCollector
from tests.helpers import AMP_KEY


@pytest.fixture
def threaded() -> Iterator[ThreadedCollector]:
    with ThreadedCollector() as c:
        yield c


def run_script(source: str, **values: object) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(source).format(**values)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


FORK_AFTER_TRACKING = """
    import os
    from itly_async import AmplitudeOptions, Client, DeliveryOptions, Options, SyncClient
    sync = SyncClient(Client())
    sync.load(Options(
        destinations={{"amplitude": AmplitudeOptions(api_key="{key}", server_url="{url}")}},
        delivery=DeliveryOptions(flush_interval=3600, flush_queue_size=1000)))
    for i in range(10):
        sync.track("parent-%04d" % i, "Parent Event", {{"i": i}})   # queued, not yet sent
    pid = os.fork()
    if pid == 0:
        for i in range(5):
            sync.track("child-%04d" % i, "Child Event", {{"i": i}})
        report = sync.shutdown(timeout=10)
        os._exit(0 if report.delivered == 5 and report.pending == 0 else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    sync.track("parent-after", "Parent Event", {{"i": 99}})
    report = sync.shutdown(timeout=10)
    assert report.delivered == 11, report
    print("ok")
"""


def test_fork_child_starts_empty_and_nothing_is_sent_twice(threaded: ThreadedCollector) -> None:
    done = run_script(FORK_AFTER_TRACKING, key=AMP_KEY, url=threaded.amplitude_url)
    assert "ok" in done.stdout
    events = threaded.amplitude_events()
    names = sorted(e["event_type"] for e in events)
    assert names == ["Child Event"] * 5 + ["Parent Event"] * 11
    ids = [e["insert_id"] for e in events]
    assert len(set(ids)) == 16
    child_prefixes = {e["insert_id"].split("-")[0] for e in events if e["user_id"][:5] == "child"}
    parent_prefixes = {e["insert_id"].split("-")[0] for e in events if e["user_id"][:6] == "parent"}
    assert child_prefixes.isdisjoint(parent_prefixes)  # the child drew its own id prefix


PREFORK = """
    import asyncio, os
    from itly_async import AmplitudeOptions, Client, Options
    client = Client()
    client.load(Options(destinations={{"amplitude": AmplitudeOptions(
        api_key="{key}", server_url="{url}")}}))
    workers = []
    for w in range(3):
        pid = os.fork()
        if pid == 0:
            async def serve():
                for i in range(100):
                    await client.track("w%d-user-%04d" % (w, i), "Request Served", {{"w": w}})
                return await client.shutdown(timeout=10)
            report = asyncio.run(serve())
            os._exit(0 if report.delivered == 100 else 3)
        workers.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in workers]
    assert codes == [0, 0, 0], codes
    print("ok")
"""


def test_preforking_server_load_in_parent_track_in_workers(threaded: ThreadedCollector) -> None:
    done = run_script(PREFORK, key=AMP_KEY, url=threaded.amplitude_url)
    assert "ok" in done.stdout
    events = threaded.amplitude_events()
    assert len(events) == 300
    assert len({e["insert_id"] for e in events}) == 300
    assert {e["event_properties"]["w"] for e in events} == {0, 1, 2}


OUTAGE = """
    import asyncio, socket
    from itly_async import AmplitudeOptions, Client, DeliveryOptions, Options

    def rss_kb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

    # a port nobody listens on: every request is refused, every event waits to be retried
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Client()
    client.load(Options(logger=None,
        destinations={{"amplitude": AmplitudeOptions(
            api_key="{key}", server_url=f"http://127.0.0.1:{{port}}/2/httpapi")}},
        delivery=DeliveryOptions(max_queue_size=1000, flush_queue_size=100)))

    async def main():
        marks = []
        for i in range(300_000):
            await client.track("user-%04d" % (i % 100), "Tick", {{"i": i, "pad": "x" * 40}})
            if i % 1000 == 0:
                await asyncio.sleep(0)
            if i + 1 in (30_000, 300_000):
                marks.append(rss_kb())
        print(marks[0], marks[1], client.stats().pending, flush=True)
        await client.shutdown(timeout=0.2)

    asyncio.run(main())
"""


def test_memory_stays_flat_through_a_long_outage() -> None:
    """RSS, measured in a fresh process: after ten times as many events behind a dead
    endpoint, the process holds no more memory than after the first tenth."""
    done = run_script(OUTAGE, key=AMP_KEY)
    first, last, pending = (int(x) for x in done.stdout.split())
    assert pending <= 1000
    assert last - first < 8 * 1024, f"RSS grew {last - first} KB over 270,000 more events"


async def test_the_queue_stays_bounded_through_a_long_outage(collector: Collector) -> None:
    collector.hang(times=None)
    client = Client()
    client.load(
        Options(
            logger=None,
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            delivery=DeliveryOptions(max_queue_size=1000, flush_queue_size=100),
        )
    )
    for i in range(50_000):
        await client.track(f"user-{i % 100:04d}", "Tick", {"i": i})
        if i % 5000 == 0:
            await asyncio.sleep(0)  # let the lane run, as a real service would
    stats = client.stats()
    assert stats.pending == 1000
    assert stats.dropped_by_reason == {"queue_full": 49_000}
    await client.shutdown(timeout=0.2)


async def test_block_policy_waits_for_room_instead_of_dropping(collector: Collector) -> None:
    collector.delay(0.2, times=1)  # the first request is slow: the queue fills up behind it
    client = Client()
    client.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            delivery=DeliveryOptions(max_queue_size=20, flush_queue_size=10, overflow="block"),
        )
    )
    for i in range(200):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    report = await client.flush(timeout=20)
    assert report.delivered == 200
    assert report.dropped == 0
    await client.shutdown(timeout=5)


def test_block_policy_in_the_sync_shim(threaded: ThreadedCollector) -> None:
    threaded.delay(0.2, times=1)
    sync = SyncClient(Client())
    sync.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=threaded.amplitude_url)
            },
            delivery=DeliveryOptions(max_queue_size=20, flush_queue_size=10, overflow="block"),
        )
    )
    for i in range(200):
        sync.track(f"user-{i:04d}", "Tick", {"i": i})
    report = sync.flush(timeout=20)
    assert report.delivered == 200
    assert report.dropped == 0
    sync.shutdown(timeout=5)


def test_block_policy_from_many_threads_drops_nothing(threaded: ThreadedCollector) -> None:
    """Eight threads racing for the last free slots of a small queue: a thread told
    there is room hands its event over as held, so losing the race means waiting on
    the loop for the next slot, not being dropped."""
    threaded.delay(0.01, times=None)  # a slow destination keeps the queue full
    sync = SyncClient(Client())
    sync.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=threaded.amplitude_url)
            },
            delivery=DeliveryOptions(
                max_queue_size=20, flush_queue_size=10, overflow="block", timeout=30
            ),
        )
    )

    def work(t: int) -> None:
        for i in range(60):
            sync.track(f"user-{t}-{i:04d}", "Tick", {"i": i})

    workers = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    report = sync.flush(timeout=60)
    assert report.dropped == 0
    assert report.delivered == 480
    assert len({e["user_id"] for e in threaded.amplitude_events()}) == 480
    sync.shutdown(timeout=5)


async def test_block_policy_gives_up_after_its_timeout_and_counts_the_drop(
    collector: Collector,
) -> None:
    collector.hang(times=None)
    client = Client()
    client.load(
        Options(
            destinations={
                "amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=collector.amplitude_url)
            },
            delivery=DeliveryOptions(
                max_queue_size=5, flush_queue_size=5, overflow="block", timeout=0.2
            ),
        )
    )
    for i in range(6):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    assert client.stats().dropped_by_reason == {"queue_full": 1}
    await client.shutdown(timeout=0.2)
