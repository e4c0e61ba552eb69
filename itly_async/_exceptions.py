"""Exceptions raised by itly-async.

The tree::

    ItlyError                         root of everything this library raises
    ├── ValidationError (ValueError)  an event, its context or traits break the tracking plan
    ├── ConfigurationError (ValueError)
    │                                 options that cannot work: a missing key, a bad adapter
    └── ClientStateError (RuntimeError)
        ├── NotLoadedError            a call before ``load()``
        └── ClientClosedError         a call after ``shutdown()``

Delivery failures are never raised into the caller: they are counted in ``stats()`` and
returned in the ``DeliveryReport`` of ``flush()`` / ``shutdown()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class ItlyError(Exception):
    """Root of every exception itly-async raises."""


@attrs.frozen
class PropertyError:
    """One rule an item broke: where (a JSON path such as ``$.tags[2]``) and which rule."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (rule: {self.rule})"


class ValidationError(ItlyError, ValueError):
    """An event (or context, identify traits, group traits) does not match the plan.

    ``item`` names what was validated (an event name, ``"context"``, ``"identify"``,
    ``"group"``); ``errors`` lists every failing property, not only the first.
    """

    def __init__(self, item: str, errors: Sequence[PropertyError]) -> None:
        self.item = item
        self.errors: tuple[PropertyError, ...] = tuple(errors)
        lines = "; ".join(str(e) for e in self.errors) or "invalid"
        super().__init__(f"{item!r} failed validation: {lines}")


class ConfigurationError(ItlyError, ValueError):
    """Options that cannot work, found at ``load()`` time (never a secret in the message)."""


class ClientStateError(ItlyError, RuntimeError):
    """The client is not in a state that accepts this call."""


class NotLoadedError(ClientStateError):
    """A tracking call was made before ``load()``."""


class ClientClosedError(ClientStateError):
    """A tracking call was made after ``shutdown()``."""
