"""The durable spool: real SQLite files, restarts, SIGKILL, corruption, contention."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from itly_async import AmplitudeOptions, Client, DeliveryOptions, Environment, Options
from itly_async._event import TRACK, Event
from itly_async._spool import Spool
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


KILLED = {
    "sync": """
    from itly_async import AmplitudeOptions, Client, DeliveryOptions, Options, SyncClient
    sync = SyncClient(Client())
    sync.load(Options(
        destinations={{"amplitude": AmplitudeOptions(api_key="{key}", server_url="{url}")}},
        delivery=DeliveryOptions(spool_path="{spool}", flush_queue_size=50)))
    for i in range(100000):
        sync.track("user-%04d" % (i % 1000), "Before Kill", {{"i": i}})
        print(i, flush=True)
""",
    "async": """
    import asyncio
    from itly_async import AmplitudeOptions, Client, DeliveryOptions, Options
    client = Client()
    client.load(Options(
        destinations={{"amplitude": AmplitudeOptions(api_key="{key}", server_url="{url}")}},
        delivery=DeliveryOptions(spool_path="{spool}", flush_queue_size=50)))
    async def main():
        for i in range(100000):
            await client.track("user-%04d" % (i % 1000), "Before Kill", {{"i": i}})
            print(i, flush=True)
    asyncio.run(main())
""",
}


@pytest.mark.parametrize("api", ["sync", "async"])
def test_sigkill_mid_run_loses_no_event_whose_call_returned(tmp_path: Path, api: str) -> None:
    spool = tmp_path / "events.sqlite"
    with ThreadedCollector() as dead:
        dead.hang(times=None)  # nothing gets out before the kill: it all must come from disk
        code = textwrap.dedent(KILLED[api]).format(key=AMP_KEY, url=dead.amplitude_url, spool=spool)
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


async def test_a_spool_that_cannot_be_written_falls_back_to_memory(
    collector: Collector, tmp_path: Path
) -> None:
    """A path in a folder that does not exist (or may not be written, as for a service
    user on a read-only image): logged with the path, and events are kept in memory."""
    spool = tmp_path / "no-such-folder" / "events.sqlite"
    logger = ListLogger()
    client = spool_client(collector.amplitude_url, spool, logger=logger)
    await client.track("user-0001", "Still Works")
    report = await client.flush(timeout=10)
    assert report.delivered == 1
    assert str(spool) in logger.text()
    assert not spool.exists()
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


async def test_a_spool_in_use_keeps_its_leftovers_from_a_second_client(tmp_path: Path) -> None:
    """The lock's job: while one client holds the spool and has not delivered its
    leftovers yet, a second one on the same path must not read and resend them too."""
    spool = tmp_path / "events.sqlite"
    async with Collector() as dead:
        dead.hang(times=None)
        before = spool_client(dead.amplitude_url, spool)
        for i in range(200):
            await before.track(f"user-{i:04d}", "Left Over", {"i": i})
        await before.shutdown(timeout=0.5)
    assert rows(spool) == 200

    async with Collector() as hanging, Collector() as live:
        hanging.hang(times=None)
        holder = spool_client(hanging.amplitude_url, spool)  # resends them; they hang
        logger = ListLogger()
        second = spool_client(live.amplitude_url, spool, logger=logger)
        assert "another process is using it" in logger.text()
        await second.track("user-9999", "Second Client's Own")
        report = await second.flush(timeout=10)
        assert report.delivered == 1
        assert [e["event_type"] for e in live.amplitude_events()] == ["Second Client's Own"]
        await second.shutdown(timeout=5)
        await holder.shutdown(timeout=0.5)
    assert rows(spool) == 200  # still on disk, for the next start


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


class OrgId:
    """A group id given as an application object: the runtime passes ids through as they
    are, and no JSON encoder takes this one."""

    def __init__(self, value: int) -> None:
        self.value = value


async def test_an_event_the_spool_cannot_encode_does_not_stop_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "events.sqlite"
    logger = ListLogger()
    async with Collector() as dead:
        dead.hang(times=None)  # nothing is delivered, so every committed row stays
        client = spool_client(dead.amplitude_url, spool, logger=logger)
        # before the fix the worker thread died here and this call never returned
        await asyncio.wait_for(client.group("user-0001", OrgId(7)), timeout=10)
        for i in range(20):
            await asyncio.wait_for(client.track(f"user-{i:04d}", "After", {"i": i}), timeout=10)
        assert rows(spool) == 20  # write-through: each later call returned after its commit
        text = logger.text()
        assert str(spool) in text
        assert "'group'" in text
        assert "delivered from memory only" in text
        report = await client.shutdown(timeout=0.5)
        assert report.spooled > 0  # the spool kept working: it was never marked failed


def an_event(name: str) -> Event:
    return Event(TRACK, name, "user-0001", b"{}", 1_700_000_000_000, f"id-{name}")


def test_a_failure_in_the_spool_worker_is_logged_and_releases_every_waiter(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.sqlite"
    logger = ListLogger()
    spool = Spool.open(str(path), logger, limit=100)
    assert spool is not None
    assert spool.add_and_wait(an_event("before"), timeout=10) is True
    # a unit of work that raises inside the worker (TypeError, not a sqlite3.Error)
    spool.delete(42)  # type: ignore[arg-type]
    # before the fix the thread was dead: each call waited out its timeout, reported nothing
    assert spool.add_and_wait(an_event("after"), timeout=10) is False
    assert spool.failed
    errors = [m for level, m in logger.lines if level == "error"]
    assert len(errors) == 1
    assert str(path) in errors[0]
    assert "TypeError" in errors[0]
    assert "events now stay in memory only" in errors[0]
    spool.close(timeout=5)
    assert rows(path) == 1


def test_add_and_wait_reports_a_commit_that_missed_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    logger = ListLogger()
    spool = Spool.open(str(path), logger, limit=100)
    assert spool is not None
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: no commit can land
        assert spool.add_and_wait(an_event("late"), timeout=0.05) is False
        assert "not committed within 0.05 s" in logger.text()
        assert str(path) in logger.text()
    finally:
        other.execute("ROLLBACK")
        other.close()
    spool.close(timeout=5)


async def test_unreadable_rows_are_quarantined_and_the_other_leftovers_resent(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "events.sqlite"
    async with Collector() as dead:
        dead.hang(times=None)
        first = spool_client(dead.amplitude_url, spool)
        for i in range(50):
            await first.track(f"user-{i:04d}", "Queued", {"i": i})
        await first.shutdown(timeout=0.5)
    with sqlite3.connect(spool) as db:  # damage two rows, add a third that never was one
        ids = [r[0] for r in db.execute("SELECT id FROM events ORDER BY rowid")]
        db.execute("UPDATE events SET body = ? WHERE id = ?", (b'{"truncated', ids[0]))
        db.execute("UPDATE events SET body = ? WHERE id = ?", (b'["track", "Queued"]', ids[9]))
        db.execute("INSERT INTO events VALUES (?, ?)", ("junk-1", b"\x00\xff not json"))
    db.close()

    logger = ListLogger()
    async with Collector() as alive:
        second = spool_client(alive.amplitude_url, spool, logger=logger)
        report = await second.flush(timeout=10)
        assert report.delivered == 48
        assert {e["insert_id"] for e in alive.amplitude_events()} == set(ids) - {ids[0], ids[9]}
        # lost, so counted: per destination, as every loss is
        assert report.stats.dropped_by_reason == {"spool_unreadable": 3}
        assert report.stats.enqueued == 51
        await second.shutdown(timeout=5)
    text = logger.text()
    assert "3 unreadable rows moved to its quarantine table" in text
    assert "the 48 other leftovers are resent" in text
    assert str(spool) in text
    assert rows(spool) == 0
    with sqlite3.connect(spool) as db:
        kept = sorted(db.execute("SELECT id, reason FROM quarantine"))
    db.close()
    assert [i for i, _ in kept] == sorted([ids[0], ids[9], "junk-1"])
    assert all(reason for _, reason in kept)
