"""The one workload every SDK runs, and the sizes of a quick and a full run.

Standard library only: the peers' interpreter imports this module too.

Every SDK tracks the same event, built afresh in each call the way a generated event
function builds it: five properties (string, int, float, bool, short list), the ``int``
varying so that no two events share a properties dict. The timed loops are written out
per SDK (``ours.py``, ``peers.py``) with this literal, because a helper function or
lambda around the call would add a frame to every measured call; ``properties`` gives
the same dict for everything that is not a timed loop.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

EVENT_NAME = "Bench Event"
USER_ID = "user-12345"
#: Amplitude api key / Segment write key / PostHog project key sent to the sink (any).
API_KEY = "bench-key-0123456789"

#: Events per request for every SDK (Amplitude's default; Segment and PostHog allow it).
BATCH_SIZE = 200
#: Seconds a partial batch waits, for every SDK that has the setting (Segment's and
#: PostHog's default; the loops end with an explicit flush, so it only bounds stragglers).
FLUSH_INTERVAL = 0.5
#: Async producers yield to the event loop after this many calls, as a request handler
#: would; the delivery task runs in those gaps.
CHUNK = 100

#: The plan's schema of ``EVENT_NAME``: what ours validates (fastjsonschema) and what the
#: legacy SDK's validation is timed with (jsonschema).
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "count": {"type": "integer", "minimum": 0},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "enabled": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
    },
    "required": ["name", "count", "ratio", "enabled", "tags"],
    "additionalProperties": False,
}


def properties(i: int) -> dict[str, Any]:
    """The event's properties for call ``i`` (the timed loops inline this literal)."""
    return {"name": "checkout", "count": i, "ratio": 0.25, "enabled": True, "tags": ["a", "b"]}


@dataclass(frozen=True)
class Params:
    """How much of each measurement a run does."""

    #: track calls per timed run (per-call cost and delivered throughput)
    calls: int
    #: timed runs per SDK, after one warm-up run of ``warmup_calls``
    runs: int
    warmup_calls: int
    #: events tracked and delivered while the loop-lag ticker runs, and how many times
    lag_events: int
    lag_runs: int
    #: events left queued behind a hanging destination, per fresh process; processes
    mem_events: int
    mem_runs: int
    #: validations per timed repeat, and repeats
    validate_calls: int
    validate_runs: int
    #: fresh processes timing import + load (after one that writes the bytecode cache)
    load_runs: int
    #: seconds the sink's ceiling is measured for
    ceiling_seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Params:
        return cls(**json.loads(text))


FULL = Params(
    calls=20_000,
    runs=5,
    warmup_calls=2_000,
    lag_events=100_000,
    lag_runs=5,
    mem_events=15_000,
    mem_runs=3,
    validate_calls=20_000,
    validate_runs=7,
    load_runs=7,
    ceiling_seconds=3.0,
)

QUICK = Params(
    calls=4_000,
    runs=3,
    warmup_calls=400,
    lag_events=20_000,
    lag_runs=1,
    mem_events=5_000,
    mem_runs=1,
    validate_calls=5_000,
    validate_runs=3,
    load_runs=3,
    ceiling_seconds=1.0,
)
