"""Retry schedule, ``Retry-After`` parsing and the retry budget: pure functions.

Nothing here reads a clock, sleeps or draws randomness on its own: ``now`` and ``rng``
are arguments, so every rule is a table test. The lane (``_lane.py``) owns the I/O and
calls these; both HTTP destinations use the helpers at the bottom to read responses.

Example::

    delay = backoff_delay(attempt, base=0.5, cap=30.0, rng=random.random)
    wait = parse_retry_after(headers.get("Retry-After"), now=time.time(), cap=300.0)
"""

from __future__ import annotations

import datetime as _dt
import math
import random
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from ._destination import Action, Verdict

#: The largest exponent used for the backoff step; ``2.0 ** 1000`` is still a finite
#: float, so a huge attempt number saturates at the cap instead of overflowing.
_MAX_EXPONENT: Final = 1000


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random | Callable[[], float],
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential backoff with full jitter: a uniform draw from
    ``[0, min(cap, base * 2 ** (attempt - 1))]``, so a fleet of clients that failed
    together does not retry together. The result is always within ``[0, cap]``.

    Args:
        attempt: the retry number, >= 1.
        base: the first step in seconds.
        cap: the longest delay in seconds.
        rng: a ``random.Random`` or a function returning a float in ``[0, 1)``;
            tests pass ``lambda: 0.0`` (no delay) or ``lambda: 0.999`` (about the step).

    Example::

        >>> backoff_delay(3, base=0.5, cap=30.0, rng=lambda: 0.5)
        1.0
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt!r}")
    base = max(0.0, base)
    cap = max(0.0, cap)
    step = min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    draw = rng.random() if isinstance(rng, random.Random) else rng()
    # a misbehaving rng must not push the delay outside [0, step]
    draw = min(1.0, max(0.0, draw))
    return draw * step


def retry_wait(
    server_wait: float | None,
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random | Callable[[], float],
) -> float:
    """Seconds before resending a failed batch: our backoff, or longer if the server asks.

    The server's wait (``Retry-After``) is a floor, never a licence to go faster: a
    proxy answering ``Retry-After: 0`` (or a date in the past) to every request would
    otherwise spend a batch's whole retry budget in one burst during a short outage.

    Example::

        >>> retry_wait(None, 3, base=0.5, cap=30.0, rng=lambda: 0.5)
        1.0
        >>> retry_wait(0.0, 3, base=0.5, cap=30.0, rng=lambda: 0.5)
        1.0
        >>> retry_wait(120.0, 3, base=0.5, cap=30.0, rng=lambda: 0.5)
        120.0
    """
    backoff = backoff_delay(attempt, base=base, cap=cap, rng=rng)
    return backoff if server_wait is None else max(server_wait, backoff)


def parse_retry_after(value: str | None, *, now: float, cap: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for, or None when absent or unreadable.

    Accepts delta-seconds (``"120"``, also ``"1.5"``) and an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``), the latter relative to ``now`` (epoch
    seconds). A date in the past or a negative number gives 0; the result is clipped to
    ``cap`` so a wrong header cannot park events for days.

    Example::

        >>> parse_retry_after("30", now=0.0, cap=300.0)
        30.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds: float
    try:
        seconds = float(text)
    except ValueError:
        import email.utils  # rare (HTTP dates): kept out of the import of itly_async

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC with no claim about the origin
            when = when.replace(tzinfo=_dt.UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, cap), max(0.0, seconds))


def retry_allowed(
    attempts: int,
    first_failure: float | None,
    *,
    now: float,
    max_retries: int,
    max_duration: float,
) -> bool:
    """Whether an event that just failed may be sent again.

    Args:
        attempts: sends made so far, the one that just failed included (so 1 after the
            first failure). ``max_retries`` further sends are allowed after the first:
            with ``max_retries=12`` an event is sent at most 13 times.
        first_failure: when (epoch seconds) the event first failed; None if this is the
            first failure.
        now: the current time, same clock as ``first_failure``.
        max_retries: ``DeliveryOptions.max_retries``.
        max_duration: ``DeliveryOptions.max_retry_duration``: no retry once this many
            seconds have passed since the first failure.

    Example::

        >>> retry_allowed(1, None, now=0.0, max_retries=12, max_duration=600.0)
        True
    """
    if attempts > max_retries:
        return False
    return first_failure is None or now - first_failure < max_duration


def describe_error(exc: BaseException) -> str:
    """A short, secret-free reason for a transport failure, for reports and logs.

    Only the exception's type (and an OS error's ``strerror``) is used, never ``str(exc)``:
    aiohttp messages can carry URLs and the reason ends up in reports users read.

    Example::

        >>> describe_error(TimeoutError())
        'timeout'
    """
    if isinstance(exc, TimeoutError):  # asyncio's and aiohttp's timeouts included
        return "timeout"
    import aiohttp  # already loaded by whoever made the request; not at import time

    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection dropped"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "TLS error"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return "cannot connect"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response truncated"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror}" if exc.strerror else "network error"
    if isinstance(exc, aiohttp.ClientError):
        return f"network error: {type(exc).__name__}"
    return type(exc).__name__


# --- helpers the HTTP destinations share -------------------------------------------------


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up case-insensitively in any mapping (a plain dict included)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def server_wait(
    headers: Mapping[str, str], *, now: float, cap: float, default: float | None = None
) -> float | None:
    """The wait a response asks for: its ``Retry-After``, else ``default`` (both clipped)."""
    wait = parse_retry_after(get_header(headers, "Retry-After"), now=now, cap=cap)
    if wait is None and default is not None:
        wait = min(max(0.0, cap), default)
    return wait


def is_server_error(status: int) -> bool:
    """5xx."""
    return 500 <= status <= 599


def short_text(value: object, limit: int = 200) -> str:
    """A server-supplied message trimmed for a reason string (one line, bounded)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reject_all(n: int, reason: str) -> Verdict:
    """Every event of the batch is a final loss with this reason."""
    return Verdict(Action.DONE, reason, rejected=dict.fromkeys(range(n), reason))


def split_or_reject(n: int, reason: str) -> Verdict:
    """Halve a batch the server refused as a whole; a lone event is rejected instead."""
    if n > 1:
        return Verdict(Action.SPLIT, reason)
    return reject_all(n, reason)


def unexpected_status(status: int, n: int, *, retry_after: float | None = None) -> Verdict:
    """A status neither destination's table names.

    A redirect, 405 or 410 means the URL is wrong (configuration); another 4xx says this
    request cannot succeed as it is, so resending it would only burn the budget; anything
    else (1xx, unknown codes) is treated as transient.
    """
    if 300 <= status <= 399:
        return Verdict(Action.CONFIG, f"HTTP {status}: unexpected redirect, check the URL")
    if status in (405, 410):
        return Verdict(Action.CONFIG, f"HTTP {status}: the URL does not accept events")
    if 400 <= status <= 499:
        return reject_all(n, f"HTTP {status}")
    return Verdict(Action.RETRY, f"HTTP {status}", retry_after=retry_after)


def json_object(body: bytes) -> dict[str, Any] | None:
    """A response body parsed as a JSON object, or None (empty, not JSON, not an object)."""
    if not body:
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
