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
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs
import orjson

from ._config import EventOptions
from ._event import Event
from ._logger import ItlyLogger

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
        ]
    )
    return event.insert_id, body


def row_to_event(insert_id: str, body: bytes) -> Event:
    kind, name, user_id, properties, time_ms, options, group_id, previous_id = orjson.loads(body)
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
    """Lets a caller wait until its add is committed, from any thread."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


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
        if not self.failed:
            self._inbox.put(("add", event, on_commit))
        elif on_commit is not None:
            on_commit()

    def add_and_wait(self, event: Event, timeout: float) -> None:
        """Block the calling thread until the event is committed (write-through, sync)."""
        ack = _Ack()
        self.add(event, ack.done.set)
        ack.done.wait(timeout)

    def delete(self, insert_ids: list[str]) -> None:
        if not self.failed and insert_ids:
            self._inbox.put(("delete", insert_ids, None))

    def close(self, timeout: float) -> None:
        if self._thread.is_alive():
            ack = _Ack()
            self._inbox.put(("close", None, ack.done.set))
            ack.done.wait(timeout)
        self._unlock()

    # --- the worker thread -------------------------------------------------------------

    def _run(self) -> None:
        import sqlite3  # here, in the worker: most clients never spool, and it costs ~4 ms

        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            rows = db.execute(
                "SELECT id, body FROM events ORDER BY rowid LIMIT ?", (self.limit,)
            ).fetchall()
            total = db.execute("SELECT count(*) FROM events").fetchone()[0]
            self.leftovers = [row_to_event(i, bytes(b)) for i, b in rows]
            self.left_on_disk = max(0, int(total) - len(rows))
        except (sqlite3.Error, ValueError, TypeError) as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            self._opened.set()
            return
        self._opened.set()
        try:
            self._serve(db)
        finally:
            db.close()

    def _serve(self, db: sqlite3.Connection) -> None:
        import sqlite3

        inbox = self._inbox
        while True:
            group = [inbox.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(inbox.get_nowait())
                except queue.Empty:
                    break
            adds = [event_to_row(arg) for op, arg, _ in group if op == "add"]
            deletes = [(i,) for op, arg, _ in group if op == "delete" for i in arg]
            closing = any(op == "close" for op, _, _ in group)
            if not self.failed and (adds or deletes):
                try:
                    db.execute("BEGIN")
                    if adds:
                        db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?)", adds)
                    if deletes:
                        db.executemany("DELETE FROM events WHERE id = ?", deletes)
                    db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self.failed = True
                    self.logger.error(
                        f"itly: spool {self.path!r} failed ({type(exc).__name__}: {exc}); "
                        "events now stay in memory only"
                    )
            for _, _, done in group:
                if done is not None:
                    done()
            if closing:
                return
