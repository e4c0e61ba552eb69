"""A custom destination that records every call, for asserting on tracked events."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import attrs

from .._event import Event


@attrs.frozen
class Call:
    """One plugin call the adapter received."""

    method: str
    user_id: str | None
    name: str = ""
    properties: Mapping[str, Any] = attrs.field(factory=dict)
    group_id: str | None = None
    previous_id: str | None = None
    insert_id: str = ""


class RecordingAdapter:
    """Pass as ``CustomOptions(adapter=RecordingAdapter())``; read ``calls`` afterwards.

    Example::

        recorder = RecordingAdapter()
        client.load(Options(destinations={"rec": CustomOptions(adapter=recorder)}))
        await client.track("user-1", "Signed Up", {"plan": "pro"})
        await client.flush()
        assert recorder.events("Signed Up")[0].properties["plan"] == "pro"

    Thread-safe: sync adapter methods run in worker threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self.loaded_with: object = None
        self.flushes = 0
        self.shutdowns = 0

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def events(self, name: str | None = None) -> list[Call]:
        """Recorded ``track`` calls, optionally only those of one event name."""
        return [c for c in self.calls if c.method == "track" and (name is None or c.name == name)]

    def _add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def load(self, options: object) -> None:
        self.loaded_with = options

    def track(self, user_id: str | None, event: Event) -> None:
        self._add(
            Call(
                "track",
                user_id,
                event.name,
                dict(event.properties),
                insert_id=event.insert_id,
            )
        )

    def identify(self, user_id: str | None, traits: Mapping[str, Any]) -> None:
        self._add(Call("identify", user_id, "identify", dict(traits)))

    def group(self, user_id: str | None, group_id: str, traits: Mapping[str, Any]) -> None:
        self._add(Call("group", user_id, "group", dict(traits), group_id=group_id))

    def alias(self, user_id: str | None, previous_id: str) -> None:
        self._add(Call("alias", user_id, "alias", previous_id=previous_id))

    def flush(self) -> None:
        self.flushes += 1

    def shutdown(self) -> None:
        self.shutdowns += 1
