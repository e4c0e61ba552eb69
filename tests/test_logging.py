"""Logging of losses and failures: rate-limited, never hiding what happened, bounded."""

from __future__ import annotations

from collections.abc import Callable

from itly_async import Client, CustomOptions, Environment
from itly_async._logger import RateLimitedLog
from itly_async.testing import Collector, VirtualClock
from tests.helpers import ListLogger


def test_repeats_are_held_then_summarised() -> None:
    clock = VirtualClock()
    log = RateLimitedLog(interval=10.0, clock=clock.now)
    lines: list[str] = []
    log(lines.append, "k", "dropped 1")
    log(lines.append, "k", "dropped 1", 4)
    log(lines.append, "k", "dropped 1")
    assert lines == ["dropped 1"]
    clock.advance(10.0)
    log(lines.append, "k", "dropped 2")
    assert lines[-1] == "dropped 2 (and 5 more since the last report)"


def test_what_is_held_when_a_flood_stops_is_still_said() -> None:
    clock = VirtualClock()
    log = RateLimitedLog(interval=10.0, clock=clock.now)
    lines: list[str] = []
    log(lines.append, "a", "first a")
    log(lines.append, "a", "last a", 3)
    log(lines.append, "b", "only b")
    log.report_held()
    assert lines == ["first a", "only b", "last a (and 3 more like it since the last report)"]
    log.report_held()  # said once, not again
    assert len(lines) == 3


def test_keys_are_bounded_and_the_forgotten_ones_say_what_they_held() -> None:
    clock = VirtualClock()
    log = RateLimitedLog(interval=10.0, clock=clock.now, max_keys=3)
    lines: list[str] = []
    log(lines.append, "k0", "m0")
    log(lines.append, "k0", "m0 again", 2)
    for i in range(1, 4):
        log(lines.append, f"k{i}", f"m{i}")
    # k0 was the oldest key: forgotten, with what it held
    assert lines == ["m0", "m1", "m2", "m3", "m0 again (and 2 more like it since the last report)"]
    log(lines.append, "k0", "m0 back")  # a new start for k0: logged at once
    assert lines[-1] == "m0 back"


class ChattyAdapter:
    """Raises with a different message every time, as real errors often do."""

    def __init__(self) -> None:
        self.calls = 0

    def track(self, user_id: str | None, event: object) -> None:
        self.calls += 1
        raise ValueError(f"row {self.calls} refused by the warehouse")


async def test_adapter_errors_count_by_type_and_log_their_message(
    make_client: Callable[..., Client],
) -> None:
    logger = ListLogger()
    client = make_client(
        amplitude=False, logger=logger, destinations={"dw": CustomOptions(adapter=ChattyAdapter())}
    )
    for i in range(500):
        await client.track(f"user-{i:04d}", "Tick", {"i": i})
    report = await client.flush(timeout=10)
    stats = report.stats.destinations["dw"]
    assert stats.rejected == 500
    assert stats.rejected_by_reason == {"adapter track() raised ValueError": 500}
    assert report.rejections[0].reason.startswith("adapter track() raised ValueError")
    errors = [m for level, m in logger.lines if level == "error"]
    assert "row 1 refused by the warehouse" in errors[0]
    # a line for the first failure, a line for the first rejection, and the summaries
    # the report gave for both: not 1,000 lines
    assert len(errors) <= 4
    assert any("499 more like it" in m for m in errors)
    await client.shutdown(timeout=5)


async def test_each_kind_of_validation_failure_of_an_event_is_logged(
    collector: Collector,
) -> None:
    from tests.test_validation import plan_client

    logger = ListLogger()
    client = plan_client(collector, logger=logger, environment=Environment.PRODUCTION)
    bad_mode = {"available_processors": 2, "mode": "sideways"}
    for _ in range(3):
        await client.track("user-0001", "Process Started", bad_mode)
    await client.track("user-0001", "Process Started", {"available_processors": 2, "tags": [1]})
    await client.track(
        "user-0001", "Process Started", {"available_processors": 2, "tags": ["a", 2]}
    )
    text = logger.text()
    assert "$.mode" in text
    assert "$.tags[0]" in text  # a different failure of the same event: not hidden
    assert "$.tags[1]" not in text  # the same failure at another index: held
    assert client.stats().validation_errors == 5
    await client.flush(timeout=10)
    assert "and 2 more like it" in logger.text()  # the held repeats of $.mode
    await client.shutdown(timeout=5)
