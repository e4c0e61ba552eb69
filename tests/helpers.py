"""Small helpers shared by tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from itly_async import Plan, Schema


class ListLogger:
    """An ItlyLogger that keeps every line, for asserting on what was logged."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def debug(self, message: str) -> None:
        self.lines.append(("debug", message))

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warn(self, message: str) -> None:
        self.lines.append(("warn", message))

    def error(self, message: str) -> None:
        self.lines.append(("error", message))

    def text(self) -> str:
        return "\n".join(m for _, m in self.lines)


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


PLAN = Plan(
    version="1.2.0",
    source="backend",
    context=Schema(schema=obj({"app": {"type": "string"}}, ["app"])),
    identify=Schema(schema=obj({"email": {"type": "string", "format": "email"}})),
    group=Schema(schema=obj({"plan": {"enum": ["free", "pro"]}})),
    events={
        "Process Started": Schema(
            schema=obj(
                {
                    "available_processors": {"type": "integer", "minimum": 1},
                    "mode": {"enum": ["batch", "online"]},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                    "when": {"type": "string", "format": "date-time"},
                    "ratio": {"type": "number"},
                    "note": {"type": ["string", "null"], "maxLength": 10},
                },
                ["available_processors"],
            )
        )
    },
)


def ids(events: list[dict[str, Any]], key: str) -> list[str]:
    return [e[key] for e in events]


AMP_KEY = "amp-test-key-0001"
SEG_KEY = "seg-test-key-0001"


async def eventually(condition: Callable[[], bool], what: str, turns: int = 200_000) -> None:
    """Let the event loop run until ``condition()`` holds: no sleeping, no wall clock.

    Each turn yields to the loop once (``sleep(0)``), which is enough for loopback I/O
    and the client's tasks to make progress; ``turns`` only bounds a broken test.
    """
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")
