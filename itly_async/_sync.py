"""The blocking API: the same client, driven from synchronous code.

``SyncClient`` forwards to a ``Client``; it holds no state of its own. A call validates in
the caller's thread (so a development-mode ``ValidationError`` is raised right there),
then hands the event to the client's home loop (a private loop in a daemon thread when no
async code is running) without waiting for it. ``flush`` and ``shutdown`` block, each with
a timeout; at interpreter exit pending events are flushed within
``DeliveryOptions.shutdown_timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._client import Client
from ._config import EventOptions, Options
from ._plan import Plan
from ._stats import DeliveryReport, Stats


class SyncClient:
    """Blocking twin of ``Client``. Safe from many threads and from inside a running loop.

    Example::

        client = Client()
        sync = SyncClient(client)
        sync.load(Options(...))
        sync.track("user-1", "Process Started", {"available_processors": 8})
        sync.flush(timeout=5)
    """

    __slots__ = ("client",)

    def __init__(self, client: Client) -> None:
        self.client = client

    def load(self, options: Options | None = None, *, plan: Plan | None = None) -> None:
        """Same as ``Client.load``: one loaded client serves both APIs."""
        self.client.load(options, plan=plan)

    def track(
        self,
        user_id: str | None,
        name: str,
        properties: Mapping[str, Any] | None = None,
        *,
        event_options: EventOptions | None = None,
    ) -> None:
        """Validate and queue one event; returns without waiting for delivery."""
        event = self.client.make_track(user_id, name, properties, event_options)
        if event is not None:
            self.client.submit_sync(event)

    def identify(
        self,
        user_id: str | None,
        traits: Mapping[str, Any] | None = None,
        *,
        event_options: EventOptions | None = None,
    ) -> None:
        """Set traits on a user."""
        event = self.client.make_identify(user_id, traits, event_options)
        if event is not None:
            self.client.submit_sync(event)

    def group(
        self,
        user_id: str | None,
        group_id: str,
        traits: Mapping[str, Any] | None = None,
        *,
        event_options: EventOptions | None = None,
    ) -> None:
        """Put a user in a group and set the group's traits."""
        event = self.client.make_group(user_id, group_id, traits, event_options)
        if event is not None:
            self.client.submit_sync(event)

    def alias(
        self, user_id: str, previous_id: str, *, event_options: EventOptions | None = None
    ) -> None:
        """Tell destinations that ``previous_id`` and ``user_id`` are the same user."""
        event = self.client.make_alias(user_id, previous_id, event_options)
        if event is not None:
            self.client.submit_sync(event)

    def flush(self, timeout: float | None = None) -> DeliveryReport:
        """Block until everything tracked before this call is delivered, or ``timeout``."""
        return self.client.flush_blocking(timeout)

    def shutdown(self, timeout: float | None = None) -> DeliveryReport:
        """Flush, stop and close; blocks at most about ``timeout`` seconds."""
        return self.client.shutdown_blocking(timeout)

    def stats(self) -> Stats:
        """Same as ``Client.stats``."""
        return self.client.stats()
