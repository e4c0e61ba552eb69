"""A small asyncio "shop API" that tracks its events through the generated package.

It simulates a burst of HTTP requests from a few users (sign-ups, logins, orders, reports,
feature flags, background jobs, errors) and tracks each through ``itly``, the package that
``itly pull backend --plan examples/tracking-plan.json`` generates. Tracking never waits
for the network: the calls validate and enqueue, and ``shutdown()`` delivers the rest.

Run it through ``make demo`` (scripts/demo.py), or by hand::

    itly pull backend --plan examples/tracking-plan.json --out build/demo
    PYTHONPATH=build/demo ITLY_AMPLITUDE_URL=http://127.0.0.1:8080/2/httpapi \\
        ITLY_SEGMENT_HOST=http://127.0.0.1:8080 python examples/service.py --users 20

Without the two variables the events go to the real Amplitude and Segment endpoints with
the plan's development keys (which are placeholders in this example plan).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time

try:
    import itly  # type: ignore[import-not-found, unused-ignore]  # generated, see above
except ImportError:
    sys.exit(
        "examples/service.py: the generated package `itly` is not importable; run\n"
        "  itly pull backend --plan examples/tracking-plan.json --out build/demo\n"
        "and put build/demo on PYTHONPATH (make demo does both)."
    )


class PrintLogger:
    """An ItlyLogger that prints warnings and errors (debug and info are dropped)."""

    def debug(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        print(f"[itly warning] {message}", file=sys.stderr)

    def error(self, message: str) -> None:
        print(f"[itly error] {message}", file=sys.stderr)


def options() -> itly.Options:
    """Options for a local run: development mode, destinations from the environment."""
    amplitude_url = os.environ.get("ITLY_AMPLITUDE_URL")
    segment_host = os.environ.get("ITLY_SEGMENT_HOST")
    return itly.Options(
        context=itly.Context(app_version="2024.6.1", environment="local", region="eu-west-1"),
        environment=itly.Environment.DEVELOPMENT,
        logger=PrintLogger(),
        destinations=itly.DestinationsOptions(
            amplitude=itly.AmplitudeOptions(server_url=amplitude_url),
            segment=itly.SegmentOptions(host=segment_host),
        ),
        delivery=itly.DeliveryOptions(flush_interval=0.5),
    )


#: anonymous events (no user) carry the id of the device that sent them
GATEWAY = itly.EventOptions(device_id="api-gateway-01")


async def api_request(route: str, method: str, status: int, started: float) -> None:
    """What a request middleware would do after each response (an anonymous event)."""
    duration_ms = (time.perf_counter() - started) * 1000
    await itly.api_request(
        None, method, route, status, duration_ms, user_agent="demo/1.0", event_options=GATEWAY
    )


async def user_session(user_number: int, rng: random.Random) -> int:
    """One simulated user: sign up, log in, order, maybe refund. Returns events tracked."""
    user_id = f"user-{user_number:04d}"
    tracked = 0
    started = time.perf_counter()
    await itly.user_signed_up(
        user_id,
        rng.choice(["email", "google", "github"]),
        rng.choice(["free", "pro", "team"]),
        referrer=rng.choice([None, "https://news.example.com"]),
        marketing_opt_in=rng.random() < 0.4,
    )
    await itly.identify(user_id, f"{user_id}@example.com", name=f"User {user_number}", plan="free")
    await api_request("/signup", "POST", 201, started)
    tracked += 3

    for attempt in range(1, rng.randint(1, 3)):
        await itly.login_failed(user_id, "bad_password", attempt)
        tracked += 1
        if attempt == 2:
            await itly.password_reset_requested(user_id, "email")
            tracked += 1
    await itly.user_logged_in(user_id, "password", prop_2fa_used=rng.random() < 0.5)
    await itly.group(user_id, f"team-{user_number % 5}", f"Team {user_number % 5}", seats=5)
    tracked += 2

    for _ in range(rng.randint(1, 3)):
        await asyncio.sleep(rng.random() / 100)  # the "work" of handling a request
        order_id = f"ord_{rng.getrandbits(32):08x}"
        items: list[itly.OrderCreatedItemsItem] = [
            {"sku": f"sku-{rng.randint(1, 50)}", "quantity": rng.randint(1, 4), "unit price": 9.5}
        ]
        total = sum(i["quantity"] * i.get("unit price", 0.0) for i in items)
        await itly.order_created(user_id, order_id, items, "EUR", total, coupon=None)
        await itly.order_completed(
            user_id, order_id, total, "EUR", "card", first_order=tracked < 10
        )
        tracked += 2
        if rng.random() < 0.2:
            await itly.order_refunded(user_id, order_id, total, reason="damaged in transit")
            tracked += 1

    variant = rng.choice([None, "control", "new-checkout"])
    await itly.feature_flag_evaluated(user_id, "new-checkout", variant)
    await itly.job_enqueued(user_id, f"job-{user_number}", "emails", priority=5)
    tracked += 2
    return tracked


async def charge_card() -> None:
    """A payment call whose upstream times out, for the error-tracking example."""
    raise TimeoutError("upstream payment provider timed out")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=12, help="simulated users (12)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (42)")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    itly.load(options())
    counts = await asyncio.gather(
        *(user_session(n, random.Random(rng.random())) for n in range(args.users))
    )
    tracked = sum(counts)

    # a bug caught in development: the plan says attempt >= 1, so this raises here
    try:
        await itly.login_failed("user-0000", "locked", 0)
    except itly.ValidationError as error:
        print(f"service: caught as expected in development: {error}")

    try:
        await charge_card()
    except TimeoutError as error:
        await itly.error_raised(
            None,
            type(error).__name__,
            "error",
            message=str(error),
            tags=["payments", "upstream"],
            details={"provider": "examplepay", "timeout_s": 10},
            event_options=GATEWAY,
        )
        tracked += 1

    report = await itly.shutdown(timeout=10)
    print(
        f"service: tracked {tracked} events for {args.users} users; "
        f"delivered {report.delivered}, rejected {report.rejected}, pending {report.pending}"
    )
    return 0 if report.pending == 0 and report.rejected == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
