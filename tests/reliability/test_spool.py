"""The durable spool: real SQLite files, restarts, SIGKILL, corruption, contention."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from itly_async import AmplitudeOptions, Client, DeliveryOptions, Environment, Options
from itly_async.testing import Collector, ThreadedCollector
from tests.helpers import AMP_KEY, ListLogger


def spool_client(
    url: str, path: Path, logger: ListLogger | None = None, **delivery: object
) -> Client:
    client = Client()
    client.load(
        Options(
            environment=Environment.PRODUCTION,
            logger=logger or ListLogger(),
            destinations={"amplitude": AmplitudeOptions(api_key=AMP_KEY, server_url=url)},
            delivery=DeliveryOptions(spool_path=str(path), **delivery),  # type: ignore[arg-type]
        )
    )
    return client


def rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


async def test_undelivered_events_survive_a_restart_with_their_ids(tmp_path: Path) -> None:
    spool = tmp_path / "events.sqlite"
    async with Collector() as dead:
        dead.hang(times=None)
        first = spool_client(dead.amplitude_url, spool)
        for i in range(100):
            await first.track(f"user-{i:04d}", "Queued", {"i": i})
        report = await first.shutdown(timeout=0.5)
        assert report.spooled == 100
        assert report.dropped == 0
        ids_before = {e["insert_id"] for r in dead.requests for e in r.events}
    assert rows(spool) == 100

    async with Collector() as alive:
        second = spool_client(alive.amplitude_url, spool)
        report = await second.flush(timeout=10)
        assert report.delivered == 100
        events = alive.amplitude_events()
        assert sorted(e["event_properties"]["i"] for e in events) == list(range(100))
        assert {e["insert_id"] for e in events} == ids_before  # resent with their own ids
        await second.shutdown(timeout=5)
    assert rows(spool) == 0


async def test_delivered_events_leave_the_spool(collector: Collector, tmp_path: Path) -> None:
    spool = tmp_path / "events.sqlite"
    client = spool_client(collector.amplitude_url, spool)
    for i in range(500):
        await client.track(f"user-{i:04d}", "Done", {"i": i})
    await client.flush(timeout=10)
    await client.shutdown(timeout=5)
    assert rows(spool) == 0
    assert len(collector.amplitude_events()) == 500


async def test_write_behind_mode_delivers_and_cleans_up(
    collector: Collector, tmp_path: Path
) -> None:
    spool = tmp_path / "events.sqlite"
    client = spool_client(collector.amplitude_url, spool, spool_mode="write_behind")
    for i in range(300):
        await client.track(f"user-{i:04d}", "Done", {"i": i})
    report = await client.shutdown(timeout=5)
    assert report.delivered == 300
    assert rows(spool) == 0


KILLED = """
    import sys
    from itly_async import AmplitudeOptions, Client, DeliveryOptions, Options, SyncClient
    sync = SyncClient(Client())
    sync.load(Options(
        destinations={{"amplitude": AmplitudeOptions(api_key="{key}", server_url="{url}")}},
        delivery=DeliveryOptions(spool_path="{spool}", flush_queue_size=50)))
    for i in range(100000):
        sync.track("user-%04d" % (i % 1000), "Before Kill", {{"i": i}})
        print(i, flush=True)
"""


def test_sigkill_mid_run_loses_no_event_whose_call_returned(tmp_path: Path) -> None:
    spool = tmp_path / "events.sqlite"
    with ThreadedCollector() as dead:
        dead.hang(times=None)  # nothing gets out before the kill: it all must come from disk
        code = textwrap.dedent(KILLED).format(key=AMP_KEY, url=dead.amplitude_url, spool=spool)
        with subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, bufsize=1
        ) as proc:
            assert proc.stdout is not None
            last = -1
            for line in proc.stdout:
                last = int(line)
                if last >= 400:
                    proc.send_signal(signal.SIGKILL)
                    break
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

    async def restart() -> set[int]:
        async with Collector() as alive:
            client = spool_client(alive.amplitude_url, spool, max_queue_size=200_000)
            report = await client.flush(timeout=30)
            assert report.rejected == 0
            await client.shutdown(timeout=5)
            return {e["event_properties"]["i"] for e in alive.amplitude_events()}

    delivered = asyncio.run(restart())
    assert set(range(last + 1)) <= delivered


async def test_a_corrupt_spool_falls_back_to_memory_with_a_clear_error(
    collector: Collector, tmp_path: Path
) -> None:
    spool = tmp_path / "events.sqlite"
    spool.write_bytes(b"this is not a database, it is a poem" * 100)
    logger = ListLogger()
    client = spool_client(collector.amplitude_url, spool, logger=logger)
    await client.track("user-0001", "Still Works")
    report = await client.flush(timeout=10)
    assert report.delivered == 1
    assert str(spool) in logger.text()
    assert "events stay in memory" in logger.text()
    await client.shutdown(timeout=5)


async def test_two_clients_on_one_spool_never_send_an_event_twice(
    collector: Collector, tmp_path: Path
) -> None:
    spool = tmp_path / "events.sqlite"
    logger = ListLogger()
    first = spool_client(collector.amplitude_url, spool)
    second = spool_client(collector.amplitude_url, spool, logger=logger)
    assert "another process is using it" in logger.text()
    for i in range(50):
        await first.track(f"user-{i:04d}", "First", {"i": i})
        await second.track(f"user-{i:04d}", "Second", {"i": i})
    await first.shutdown(timeout=5)
    await second.shutdown(timeout=5)
    ids = [e["insert_id"] for e in collector.amplitude_events()]
    assert len(ids) == 100
    assert len(set(ids)) == 100


async def test_leftovers_beyond_the_queue_bound_wait_on_disk(
    collector: Collector, tmp_path: Path
) -> None:
    spool = tmp_path / "events.sqlite"
    async with Collector() as dead:
        dead.hang(times=None)
        first = spool_client(dead.amplitude_url, spool)
        for i in range(120):
            await first.track(f"user-{i:04d}", "Queued", {"i": i})
        await first.shutdown(timeout=0.5)

    logger = ListLogger()
    second = spool_client(
        collector.amplitude_url, spool, logger=logger, max_queue_size=100, flush_queue_size=50
    )
    assert "20 more events than the queue takes" in logger.text()
    await second.flush(timeout=10)
    await second.shutdown(timeout=5)
    assert len(collector.amplitude_events()) == 100
    assert rows(spool) == 20
