"""The in-process event record and its ids.

An ``Event`` is built once in the caller, shared by every destination's lane, and never
mutated after it is enqueued (``seq`` is set once, on the home loop, at submit time).
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Final

import orjson

from ._config import EventOptions

TRACK: Final = "track"
IDENTIFY: Final = "identify"
GROUP: Final = "group"
ALIAS: Final = "alias"

#: ``props`` of a call without properties
NO_PROPS: Final = b"{}"


class Event:
    """One call to ``track`` / ``identify`` / ``group`` / ``alias``, enriched and ready to send.

    ``props`` is the JSON of the event properties for ``track`` (context merged in) and of
    the traits for ``identify`` / ``group``: encoded once, in the call, right after
    validation. That is the event's snapshot (a caller may reuse or change its dict at
    once) and what the destinations splice into their wire JSON (``orjson.Fragment``),
    so a queued event holds bytes, not a tree of objects. ``insert_id`` is fixed here and
    reused on every retry.
    """

    __slots__ = (
        "group_id",
        "insert_id",
        "kind",
        "name",
        "options",
        "previous_id",
        "props",
        "remaining",
        "seq",
        "time_ms",
        "user_id",
    )

    def __init__(
        self,
        kind: str,
        name: str,
        user_id: str | None,
        props: bytes,
        time_ms: int,
        insert_id: str,
        options: EventOptions | None = None,
        group_id: str | None = None,
        previous_id: str | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.user_id = user_id
        self.props = props
        self.time_ms = time_ms
        self.insert_id = insert_id
        self.options = options
        self.group_id = group_id
        self.previous_id = previous_id
        self.seq = 0
        self.remaining = 0  # lanes still holding it (only tracked with a spool)

    @property
    def properties(self) -> dict[str, Any]:
        """The properties (or traits) as a fresh dict, for adapters and the spool."""
        result: dict[str, Any] = orjson.loads(self.props)
        return result

    def __repr__(self) -> str:
        return f"Event({self.kind}, {self.name!r}, user_id={self.user_id!r}, id={self.insert_id})"


class IdFactory:
    """Unique event ids without uuid4's cost: a random per-process prefix and a counter.

    The 64-bit prefix comes from ``os.urandom`` and is drawn again in a forked child
    (``reseed``), so two processes never share one; within a process the counter makes
    each id unique. ``next(itertools.count())`` is atomic under the GIL, so threads are safe.
    """

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = ""
        self._counter = itertools.count()
        self.reseed()

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex() + "-"
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return self._prefix + format(next(self._counter), "x")


new_id = IdFactory()
