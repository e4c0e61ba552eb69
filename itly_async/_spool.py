"""The optional durable spool: queued events kept in SQLite so a crash loses nothing.

Durability point. With ``spool_mode="write_through"`` (the default when a spool is on) a
tracking call returns only after the event is committed to the spool file: if the
process dies after the call returned, the event is on disk and is resent, with its
original id, by the next ``load()`` on the same path. Commits use SQLite's WAL with
``synchronous=NORMAL``: they survive a killed process, not a power cut (use your
platform's tools for that). ``"write_behind"`` returns at once and commits within a few
milliseconds: cheaper, but a crash can lose the last moments' events.

Every file operation runs in one worker thread that owns the connection, never on an
event loop. Calls are grouped: all adds and deletes waiting in the thread's inbox go in
one transaction, so many concurrent callers share one commit.

A row is deleted once every destination has delivered, rejected or dropped its event.
On restart each leftover goes to every destination again (the ids make the repeat
harmless). A file another process holds (an advisory lock beside it), a corrupt file or
one that cannot be opened is logged as an error and the client keeps events in memory.

Failures never strand a caller. Whatever goes wrong in a unit of the worker's work, every
caller waiting on it is released: an event that cannot be encoded as a row (a value no
JSON encoder takes, in a field the runtime does not check) is logged and kept in memory
only, the others are spooled as usual; any other failure marks the spool failed, is
logged with the path, and from then on events stay in memory only, as for a corrupt file.

Unreadable leftovers are quarantined, not deleted: a row that does not decode into an
event (bad JSON, a wrong shape, an option the runtime no longer accepts) is moved, in
one transaction, to the table ``quarantine`` of the same file with the reason, and the
count is logged; the other leftovers are resent normally. Moving keeps the evidence for
whoever investigates (``sqlite3 events.sqlite 'SELECT * FROM quarantine'``) without
the file growing, and the row can never be resent or block the spool again. The SDK
never reads that table back; it is safe to delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import attrs
import orjson

from ._config import EventOptions
from ._event import ALIAS, GROUP, IDENTIFY, TRACK, Event
from ._logger import ItlyLogger, RateLimitedLog
from ._validation import normalize

if TYPE_CHECKING:
    import sqlite3

SpoolMode = Literal["write_through", "write_behind"]

#: Seconds ``load()`` waits for the spool to open before going on without it.
OPEN_TIMEOUT = 5.0
#: Seconds SQLite waits on a lock held by another connection before reporting it.
BUSY_TIMEOUT_MS = 1000
#: Most commands folded into one transaction.
MAX_GROUP = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id   TEXT PRIMARY KEY,
    body BLOB NOT NULL
)
"""
#: Rows moved out of ``events`` because they could not be read (see the module doc).
#: ``id`` and ``body`` have no declared type, so SQLite keeps each value exactly as it was.
_QUARANTINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id,
    body,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
)
"""

_KINDS = frozenset((TRACK, IDENTIFY, GROUP, ALIAS))
#: What a row's body holds, in order (``event_to_row`` writes, ``row_to_event`` reads)
_ROW_FIELDS = ("kind", "name", "user_id", "props", "time_ms", "options", "group_id", "previous_id")


def _row_default(value: object) -> object:
    """orjson ``default=`` hook for rows: the conversions event properties get.

    Options are JSON-ready since ``EventOptions`` converts them; this covers what reaches
    a row unchecked (ids, names) and is a second line of defence. What even ``normalize``
    cannot convert raises ``TypeError``, and that one event is not spooled.
    """
    converted, errors = normalize({"value": value})
    if errors:
        raise TypeError(str(errors[0]))
    return converted["value"]


def event_to_row(event: Event) -> tuple[str, bytes]:
    opts = event.options
    options: dict[str, Any] | None = None
    if opts is not None:
        options = {
            f.name: value
            for f in attrs.fields(EventOptions)
            if f.name != "time" and (value := getattr(opts, f.name)) is not None
        }
    body = orjson.dumps(
        [
            event.kind,
            event.name,
            event.user_id,
            orjson.Fragment(event.props),
            event.time_ms,
            options,
            event.group_id,
            event.previous_id,
        ],
        default=_row_default,
    )
    return event.insert_id, body


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN ... COMMIT, rolled back on any error (then raised: the first error is the
    one reported, so a failing ROLLBACK is not)."""
    db.execute("BEGIN")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(Exception):
                db.execute("ROLLBACK")
        raise


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _unreadable(why: str) -> ValueError:
    return ValueError(f"row unreadable: {why}")


def row_to_event(insert_id: object, body: object) -> Event:
    """Decode one row; raises (``ValueError`` mostly) saying why a row is unreadable."""
    if not isinstance(insert_id, str) or not insert_id:
        raise _unreadable(f"id is a {type(insert_id).__name__}, not a non-empty string")
    if not isinstance(body, bytes | str):
        raise _unreadable(f"body is a {type(body).__name__}, not JSON")
    fields = orjson.loads(body)
    if not isinstance(fields, list) or len(fields) != len(_ROW_FIELDS):
        raise _unreadable(f"body is not the {len(_ROW_FIELDS)} fields of an event")
    kind, name, user_id, properties, time_ms, options, group_id, previous_id = fields
    if kind not in _KINDS or not isinstance(name, str):
        raise _unreadable("unknown event kind, or a name that is not a string")
    if not isinstance(properties, dict):
        raise _unreadable("properties are not a JSON object")
    if isinstance(time_ms, bool) or not isinstance(time_ms, int):
        raise _unreadable("time is not an integer")
    if not all(v is None or isinstance(v, str) for v in (user_id, group_id, previous_id)):
        raise _unreadable("an id that is not a string")
    if options is not None and not isinstance(options, dict):
        raise _unreadable("options are not a JSON object")
    return Event(
        kind,
        name,
        user_id,
        orjson.dumps(properties),
        time_ms,
        insert_id,
        EventOptions(**options) if options else None,
        group_id,
        previous_id,
    )


class SpoolUnavailable(Exception):  # noqa: N818 - a reason to fall back, not a failure of ours
    """The spool could not be opened; the message says why (shown in the log)."""


class _Ack:
    """Lets a caller wait until its add is committed, from any thread.

    Passed as the command's ``done`` callback; the worker sets ``committed`` before
    calling it when the add was written and its transaction committed.
    """

    __slots__ = ("committed", "done")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.committed = False

    def __call__(self) -> None:
        self.done.set()


Command = tuple[str, Any, Callable[[], object] | None]


class Spool:
    """One spool file, one worker thread. Thread-safe: any thread may call ``add``."""

    def __init__(self, path: str, logger: ItlyLogger, limit: int) -> None:
        self.path = path
        self.logger = logger
        self.limit = limit
        self.failed = False
        self.leftovers: list[Event] = []
        self.left_on_disk = 0
        #: unreadable leftovers moved to the quarantine table when the spool opened
        self.quarantined = 0
        #: events that could not be encoded as rows (kept in memory only)
        self.unspooled = 0
        self._closed = False
        self._ratelimit = RateLimitedLog()
        self._inbox: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._opened = threading.Event()
        self._error: str | None = None
        self._lock_fd: int | None = None
        self._thread = threading.Thread(target=self._run, name="itly-async-spool", daemon=True)

    @classmethod
    def open(cls, path: str, logger: ItlyLogger, limit: int) -> Spool | None:
        """Open (or create) the spool and read leftovers; None if it cannot be used."""
        spool = cls(path, logger, limit)
        try:
            spool._lock()
        except SpoolUnavailable as exc:
            logger.error(f"itly: spool {path!r} not used, events stay in memory: {exc}")
            return None
        spool._thread.start()
        if not spool._opened.wait(OPEN_TIMEOUT):
            spool._error = f"not opened within {OPEN_TIMEOUT:g} s"
        if spool._error is not None:
            logger.error(f"itly: spool {path!r} not used, events stay in memory: {spool._error}")
            spool.failed = True
            spool._unlock()
            return None
        if spool.left_on_disk:
            logger.warn(
                f"itly: spool {path!r} holds {spool.left_on_disk} more events than the queue "
                "takes; they are resent after a later restart"
            )
        return spool

    def _lock(self) -> None:
        try:
            fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolUnavailable(f"cannot create its lock file: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpoolUnavailable("another process is using it") from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    def forget_after_fork(self) -> None:
        """In a forked child: the parent owns the file; drop our copy of the lock."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):  # already closed: nothing held
                os.close(fd)
        self.failed = True

    # --- callers ---------------------------------------------------------------------

    def add(self, event: Event, on_commit: Callable[[], object] | None = None) -> None:
        """Queue the event for the next commit; ``on_commit`` runs once it is settled.

        ``on_commit`` always runs, from the worker thread or (when the spool has failed
        or closed) right here: committed, or kept in memory only, and then logged.
        """
        if not self.failed and not self._closed:
            self._inbox.put(("add", event, on_commit))
        elif on_commit is not None:
            on_commit()

    def add_and_wait(self, event: Event, timeout: float) -> bool:
        """Block the calling thread until the event is committed (write-through, sync).

        Returns whether it was committed within ``timeout`` seconds. When it was not, the
        event is still delivered from memory (and may yet be committed); a crash before
        that could lose it, which is logged (once per 10 s, with a count).
        """
        ack = _Ack()
        self.add(event, ack)
        if not ack.done.wait(timeout):
            self._ratelimit(
                self._log_warn,
                "commit-timeout",
                f"itly: spool {self.path!r}: an event was not committed within {timeout:g} s; "
                "the call returned and the event is delivered from memory",
            )
            return False
        return ack.committed

    def delete(self, insert_ids: list[str]) -> None:
        if not self.failed and not self._closed and insert_ids:
            self._inbox.put(("delete", insert_ids, None))

    def close(self, timeout: float) -> None:
        """Commit what is queued, stop the worker and release the lock (blocking)."""
        self._closed = True
        if self._thread.is_alive():
            ack = _Ack()
            self._inbox.put(("close", None, ack))
            ack.done.wait(timeout)
        self._unlock()

    async def aclose(self, timeout: float) -> None:
        """``close`` for the event loop: waits for the worker without blocking the loop."""
        self._closed = True
        if self._thread.is_alive():
            loop = asyncio.get_running_loop()
            closed = loop.create_future()
            self._inbox.put(("close", None, lambda: loop.call_soon_threadsafe(_resolve, closed)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed, timeout)
        self._unlock()

    # --- the worker thread -------------------------------------------------------------

    def _run(self) -> None:
        import sqlite3  # here, in the worker: most clients never spool, and it costs ~4 ms

        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except Exception as exc:  # noqa: BLE001 - reported by open(), which falls back to memory
            self._error = f"{type(exc).__name__}: {exc}"
            self._opened.set()
            return
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._read_leftovers(db)
        except Exception as exc:  # noqa: BLE001 - reported by open(), which falls back to memory
            self._error = f"{type(exc).__name__}: {exc}"
            self._opened.set()
            db.close()
            return
        self._opened.set()
        try:
            self._serve(db)
        finally:
            db.close()

    def _read_leftovers(self, db: sqlite3.Connection) -> None:
        """Up to ``limit`` readable leftovers, oldest first; unreadable ones quarantined."""
        events: list[Event] = []
        bad: list[tuple[int, str]] = []  # (rowid, reason)
        last = 0
        while len(events) < self.limit:
            rows = db.execute(
                "SELECT rowid, id, body FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (last, self.limit - len(events)),
            ).fetchall()
            if not rows:
                break
            for rowid, insert_id, body in rows:
                last = rowid
                try:
                    events.append(row_to_event(insert_id, body))
                except Exception as exc:  # noqa: BLE001 - any undecodable row is quarantined
                    bad.append((rowid, f"{type(exc).__name__}: {exc}"))
        if bad:
            now = time.time()
            with _transaction(db):
                db.execute(_QUARANTINE_SCHEMA)
                db.executemany(
                    "INSERT INTO quarantine SELECT id, body, ?, ? FROM events WHERE rowid = ?",
                    [(reason, now, rowid) for rowid, reason in bad],
                )
                db.executemany("DELETE FROM events WHERE rowid = ?", [(r,) for r, _ in bad])
            self.quarantined = len(bad)
            self._log_error(
                f"itly: spool {self.path!r}: {len(bad)} unreadable "
                f"{'row' if len(bad) == 1 else 'rows'} moved to its quarantine table, not resent "
                f"(first: {bad[0][1]}); the {len(events)} other leftovers are resent"
            )
        total = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        self.leftovers = events
        self.left_on_disk = max(0, total - len(events))

    def _serve(self, db: sqlite3.Connection) -> None:
        inbox = self._inbox
        while True:
            group = [inbox.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(inbox.get_nowait())
                except queue.Empty:
                    break
            closing = any(op == "close" for op, _, _ in group)
            try:
                if not self.failed:
                    self._write(db, group)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any failure
                self.failed = True
                self._log_error(
                    f"itly: spool {self.path!r} failed ({type(exc).__name__}: {exc}); "
                    "events now stay in memory only"
                )
            finally:
                # every waiter is released, whatever happened above
                for _, _, done in group:
                    if done is not None:
                        self._settle(done)
            if closing:
                return

    def _write(self, db: sqlite3.Connection, group: list[Command]) -> None:
        """One transaction for the group's adds and deletes; marks the acks it committed."""
        adds: list[tuple[str, bytes]] = []
        acks: list[_Ack] = []
        deletes: list[tuple[str]] = []
        for op, arg, done in group:
            if op == "add":
                row = self._row(arg)
                if row is not None:
                    adds.append(row)
                    if isinstance(done, _Ack):
                        acks.append(done)
            elif op == "delete":
                deletes.extend((i,) for i in arg)
        if not adds and not deletes:
            return
        with _transaction(db):
            if adds:
                db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?)", adds)
            if deletes:
                db.executemany("DELETE FROM events WHERE id = ?", deletes)
        for ack in acks:
            ack.committed = True

    def _row(self, event: Event) -> tuple[str, bytes] | None:
        """The event's row, or None (logged) when a value in it cannot be encoded."""
        try:
            return event_to_row(event)
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            self.unspooled += 1
            self._ratelimit(
                self._log_error,
                "unencodable",
                f"itly: spool {self.path!r}: {event.kind} {event.name!r} (id {event.insert_id}) "
                f"cannot be written ({exc}); it is delivered from memory only",
            )
            return None

    def _settle(self, done: Callable[[], object]) -> None:
        try:
            done()
        except Exception as exc:  # noqa: BLE001 - one waiter's callback must not stop the worker
            # e.g. the waiting coroutine's event loop has closed: nobody is waiting any more
            self._log_warn(f"itly: spool {self.path!r}: a commit callback failed: {exc!r}")

    # the logger is the application's: if it raises, the message still gets out, and
    # the worker thread, which every spooled call depends on, carries on
    def _log_error(self, message: str) -> None:
        try:
            self.logger.error(message)
        except Exception:
            logging.getLogger("itly").exception(message)

    def _log_warn(self, message: str) -> None:
        try:
            self.logger.warn(message)
        except Exception:
            logging.getLogger("itly").exception(message)
