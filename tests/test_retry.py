"""Table tests of the pure retry rules (``itly_async._retry``)."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import ssl

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from itly_async._destination import Action, Verdict
from itly_async._retry import (
    backoff_delay,
    describe_error,
    get_header,
    json_object,
    parse_retry_after,
    reject_all,
    retry_allowed,
    retry_wait,
    server_wait,
    short_text,
    split_or_reject,
    unexpected_status,
)

# --- backoff_delay -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "draw", "expected"),
    [
        pytest.param(1, 0.5, 30.0, 0.0, 0.0, id="rng-0-no-delay"),
        pytest.param(1, 0.5, 30.0, 0.5, 0.25, id="first-step-is-base"),
        pytest.param(2, 0.5, 30.0, 0.5, 0.5, id="second-step-doubles"),
        pytest.param(3, 0.5, 30.0, 0.5, 1.0, id="third-step"),
        pytest.param(6, 0.5, 30.0, 1.0, 16.0, id="below-cap"),
        pytest.param(7, 0.5, 30.0, 1.0, 30.0, id="step-32-capped-at-30"),
        pytest.param(7, 0.5, 30.0, 0.5, 15.0, id="jitter-within-cap"),
        pytest.param(10_000, 0.5, 30.0, 1.0, 30.0, id="huge-attempt-no-overflow"),
        pytest.param(1, 0.0, 30.0, 0.9, 0.0, id="zero-base"),
        pytest.param(5, 0.5, 0.0, 0.9, 0.0, id="zero-cap"),
        pytest.param(3, 0.5, -1.0, 0.9, 0.0, id="negative-cap-clamped"),
        pytest.param(3, 0.5, 30.0, 7.0, 2.0, id="rng-above-1-clipped"),
        pytest.param(3, 0.5, 30.0, -7.0, 0.0, id="rng-below-0-clipped"),
    ],
)
def test_backoff_delay(attempt: int, base: float, cap: float, draw: float, expected: float) -> None:
    assert backoff_delay(attempt, base=base, cap=cap, rng=lambda: draw) == pytest.approx(expected)


def test_backoff_almost_one_gives_about_the_cap() -> None:
    eps = 1e-12
    assert backoff_delay(50, base=0.5, cap=30.0, rng=lambda: 1.0 - eps) == pytest.approx(30.0)


def test_backoff_accepts_a_random_instance() -> None:
    expected = random.Random(7).random() * 2.0
    assert backoff_delay(3, base=0.5, cap=30.0, rng=random.Random(7)) == expected


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_rejects_attempt_below_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff_delay(attempt, base=0.5, cap=30.0, rng=lambda: 0.5)


@given(
    attempt=st.integers(min_value=1, max_value=10**6),
    base=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    cap=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    draw=st.floats(min_value=-10.0, max_value=10.0, allow_nan=False),
)
def test_backoff_is_always_within_zero_and_cap(
    attempt: int, base: float, cap: float, draw: float
) -> None:
    delay = backoff_delay(attempt, base=base, cap=cap, rng=lambda: draw)
    assert 0.0 <= delay <= cap


@given(attempt=st.integers(min_value=1, max_value=200), seed=st.integers())
def test_backoff_with_real_rng_is_within_the_step(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, base=0.5, cap=30.0, rng=random.Random(seed))
    assert 0.0 <= delay <= min(30.0, 0.5 * 2.0 ** min(attempt - 1, 1000))


# --- retry_wait --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "attempt", "draw", "expected"),
    [
        pytest.param(None, 1, 0.5, 0.25, id="no-header-backoff"),
        pytest.param(None, 4, 0.5, 2.0, id="no-header-later-attempt"),
        pytest.param(0.0, 4, 0.5, 2.0, id="retry-after-0-is-not-faster"),
        pytest.param(0.0, 13, 0.999, 29.97, id="retry-after-0-at-the-cap"),
        pytest.param(1.0, 1, 0.5, 1.0, id="server-longer-wins"),
        pytest.param(120.0, 6, 0.999, 120.0, id="server-much-longer"),
        pytest.param(0.5, 6, 0.5, 8.0, id="backoff-longer-wins"),
    ],
)
def test_retry_wait(server: float | None, attempt: int, draw: float, expected: float) -> None:
    wait = retry_wait(server, attempt, base=0.5, cap=30.0, rng=lambda: draw)
    assert wait == pytest.approx(expected)


# --- parse_retry_after -------------------------------------------------------------------

NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        pytest.param(None, NOW, None, id="absent"),
        pytest.param("", NOW, None, id="empty"),
        pytest.param("   ", NOW, None, id="blank"),
        pytest.param("30", NOW, 30.0, id="seconds"),
        pytest.param(" 30 ", NOW, 30.0, id="seconds-padded"),
        pytest.param("1.5", NOW, 1.5, id="float-seconds"),
        pytest.param("0", NOW, 0.0, id="zero"),
        pytest.param("-5", NOW, 0.0, id="negative-is-zero"),
        pytest.param("1000", NOW, 300.0, id="clipped-to-cap"),
        pytest.param("soon", NOW, None, id="garbage"),
        pytest.param("nan", NOW, None, id="nan"),
        pytest.param("inf", NOW, None, id="inf"),
        pytest.param("-inf", NOW, None, id="minus-inf"),
        pytest.param(HTTP_DATE, NOW - 120, 120.0, id="date-in-future"),
        pytest.param(HTTP_DATE, NOW, 0.0, id="date-now"),
        pytest.param(HTTP_DATE, NOW + 50, 0.0, id="date-in-past-is-zero"),
        pytest.param(HTTP_DATE, NOW - 86_400, 300.0, id="date-far-future-clipped"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 -0000", NOW - 10, 10.0, id="date-minus-0000"),
        pytest.param("Wed, 21 Oct 2015 09:28:00 +0200", NOW - 10, 10.0, id="date-with-offset"),
        pytest.param("Wed, 99 Foo 2015 07:28:00 GMT", NOW, None, id="bad-date"),
        pytest.param("Wed, 21 Oct", NOW, None, id="truncated-date"),
    ],
)
def test_parse_retry_after(value: str | None, now: float, expected: float | None) -> None:
    assert parse_retry_after(value, now=now, cap=300.0) == expected


def test_parse_retry_after_date_matches_the_stdlib_formatter() -> None:
    stamp = email.utils.format_datetime(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), usegmt=True)
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp() - 42
    assert parse_retry_after(stamp, now=start, cap=300.0) == 42.0


# --- retry_allowed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "first_failure", "now", "max_retries", "max_duration", "expected"),
    [
        pytest.param(1, None, 0.0, 12, 600.0, True, id="first-failure"),
        pytest.param(12, 0.0, 10.0, 12, 600.0, True, id="last-retry-allowed"),
        pytest.param(13, 0.0, 10.0, 12, 600.0, False, id="retries-exhausted"),
        pytest.param(1, None, 0.0, 0, 600.0, False, id="no-retries-configured"),
        pytest.param(2, 100.0, 699.9, 12, 600.0, True, id="inside-time-budget"),
        pytest.param(2, 100.0, 700.0, 12, 600.0, False, id="time-budget-spent"),
        pytest.param(2, 100.0, 5000.0, 12, 600.0, False, id="long-outage"),
        pytest.param(1, None, 1e9, 12, 600.0, True, id="no-first-failure-yet"),
    ],
)
def test_retry_allowed(
    attempts: int,
    first_failure: float | None,
    now: float,
    max_retries: int,
    max_duration: float,
    expected: bool,
) -> None:
    assert (
        retry_allowed(
            attempts, first_failure, now=now, max_retries=max_retries, max_duration=max_duration
        )
        is expected
    )


# --- describe_error ----------------------------------------------------------------------


def _connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(None, os_error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(TimeoutError(), "timeout", id="timeout"),
        pytest.param(aiohttp.ServerTimeoutError(), "timeout", id="aiohttp-timeout"),
        pytest.param(aiohttp.ServerDisconnectedError(), "connection dropped", id="dropped"),
        pytest.param(
            _connector_error(ConnectionRefusedError(111, "Connection refused")),
            "connection refused",
            id="connector-refused",
        ),
        pytest.param(
            _connector_error(OSError(113, "No route to host")), "cannot connect", id="no-route"
        ),
        pytest.param(ssl.SSLError(1, "bad"), "TLS error", id="ssl"),
        pytest.param(aiohttp.ClientPayloadError("cut"), "response truncated", id="payload"),
        pytest.param(ConnectionRefusedError(), "connection refused", id="refused"),
        pytest.param(ConnectionResetError(), "connection reset", id="reset"),
        pytest.param(BrokenPipeError(), "connection reset", id="broken-pipe"),
        pytest.param(OSError(5, "I/O error"), "network error: I/O error", id="oserror"),
        pytest.param(OSError(), "network error", id="bare-oserror"),
        pytest.param(
            aiohttp.ClientConnectionError(),
            "network error: ClientConnectionError",
            id="client-error",
        ),
        pytest.param(ValueError("https://secret@host"), "ValueError", id="other"),
    ],
)
def test_describe_error(exc: BaseException, expected: str) -> None:
    assert describe_error(exc) == expected


# --- response helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "5"}, "5", id="exact"),
        pytest.param({"retry-after": "6"}, "6", id="lower"),
        pytest.param({"RETRY-AFTER": "7"}, "7", id="upper"),
        pytest.param({"Other": "x"}, None, id="absent"),
        pytest.param({}, None, id="empty"),
    ],
)
def test_get_header(headers: dict[str, str], expected: str | None) -> None:
    assert get_header(headers, "Retry-After") == expected


@pytest.mark.parametrize(
    ("headers", "default", "expected"),
    [
        pytest.param({}, None, None, id="nothing"),
        pytest.param({}, 30.0, 30.0, id="default"),
        pytest.param({}, 999.0, 300.0, id="default-clipped"),
        pytest.param({"retry-after": "4"}, 30.0, 4.0, id="header-wins"),
        pytest.param({"Retry-After": "junk"}, 30.0, 30.0, id="junk-header-default"),
        pytest.param({"Retry-After": "junk"}, None, None, id="junk-header-no-default"),
    ],
)
def test_server_wait(
    headers: dict[str, str], default: float | None, expected: float | None
) -> None:
    assert server_wait(headers, now=0.0, cap=300.0, default=default) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"", None, id="empty"),
        pytest.param(b"<html>502</html>", None, id="html"),
        pytest.param(b"[1, 2]", None, id="array"),
        pytest.param(b'"text"', None, id="string"),
        pytest.param(b'{"code": 200}', {"code": 200}, id="object"),
        pytest.param(b"\xff\xfe", None, id="not-utf8"),
    ],
)
def test_json_object(body: bytes, expected: object) -> None:
    assert json_object(body) == expected


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        pytest.param("short", 200, "short", id="kept"),
        pytest.param("a\n  b\tc", 200, "a b c", id="one-line"),
        pytest.param("x" * 20, 10, "xxxxxxx...", id="trimmed"),
        pytest.param(42, 200, "42", id="non-string"),
    ],
)
def test_short_text(value: object, limit: int, expected: str) -> None:
    assert short_text(value, limit) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        pytest.param(3, Verdict(Action.SPLIT, "why"), id="split"),
        pytest.param(2, Verdict(Action.SPLIT, "why"), id="split-two"),
        pytest.param(1, Verdict(Action.DONE, "why", rejected={0: "why"}), id="single-rejected"),
    ],
)
def test_split_or_reject(n: int, expected: Verdict) -> None:
    assert split_or_reject(n, "why") == expected


def test_reject_all() -> None:
    assert reject_all(3, "HTTP 501") == Verdict(
        Action.DONE, "HTTP 501", rejected={0: "HTTP 501", 1: "HTTP 501", 2: "HTTP 501"}
    )


@pytest.mark.parametrize(
    ("status", "action"),
    [
        pytest.param(301, Action.CONFIG, id="redirect"),
        pytest.param(308, Action.CONFIG, id="permanent-redirect"),
        pytest.param(405, Action.CONFIG, id="method-not-allowed"),
        pytest.param(410, Action.CONFIG, id="gone"),
        pytest.param(418, Action.DONE, id="other-4xx-rejects"),
        pytest.param(422, Action.DONE, id="unprocessable-rejects"),
        pytest.param(102, Action.RETRY, id="1xx-retries"),
        pytest.param(999, Action.RETRY, id="unknown-retries"),
    ],
)
def test_unexpected_status(status: int, action: Action) -> None:
    verdict = unexpected_status(status, 2, retry_after=3.0)
    assert verdict.action is action
    assert f"HTTP {status}" in verdict.reason
    if action is Action.DONE:
        assert set(verdict.rejected) == {0, 1}
    if action is Action.RETRY:
        assert verdict.retry_after == 3.0
