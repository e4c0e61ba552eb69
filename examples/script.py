"""A nightly batch script that tracks through the blocking API, ``itly.sync``.

Scripts and threads call the same functions without ``await``; ``itly.load`` serves both
APIs, and ``itly.sync.shutdown()`` delivers what is left before the script exits (an exit
hook would too, with a bounded timeout). Run it through ``make demo``, or by hand::

    itly pull backend --plan examples/tracking-plan.json --out build/demo
    PYTHONPATH=build/demo ITLY_AMPLITUDE_URL=http://127.0.0.1:8080/2/httpapi \\
        ITLY_SEGMENT_HOST=http://127.0.0.1:8080 python examples/script.py
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

try:
    import itly  # type: ignore[import-not-found, unused-ignore]  # generated, see above
except ImportError:
    sys.exit(
        "examples/script.py: the generated package `itly` is not importable; run\n"
        "  itly pull backend --plan examples/tracking-plan.json --out build/demo\n"
        "and put build/demo on PYTHONPATH (make demo does both)."
    )

TEAMS = {"team-1": ("free", "pro", 8), "team-2": ("pro", "team", 25), "team-3": ("team", "pro", 4)}


def export_report(team: str, report_format: str, rows: int) -> None:
    """One unit of the nightly work; runs in a worker thread."""
    itly.sync.report_exported(
        f"owner-of-{team}",
        report_format,
        rows,
        filters={"date_from": "2024-06-01", "date_to": "2024-06-30", "team_id": team},
    )


def main() -> int:
    itly.sync.load(
        itly.Options(
            context=itly.Context(app_version="2024.6.1", environment="local"),
            destinations=itly.DestinationsOptions(
                amplitude=itly.AmplitudeOptions(server_url=os.environ.get("ITLY_AMPLITUDE_URL")),
                segment=itly.SegmentOptions(host=os.environ.get("ITLY_SEGMENT_HOST")),
            ),
        )
    )
    tracked = 0
    for team, (old, new, seats) in TEAMS.items():
        owner = f"owner-of-{team}"
        itly.sync.subscription_changed(owner, old, new, seats, annual=seats > 10)
        itly.sync.group(owner, team, team.replace("-", " ").title(), plan=new, seats=seats)
        itly.sync.job_enqueued(owner, f"nightly-{team}", "reports", priority=1)
        tracked += 3

    # the sync API is safe from many threads
    jobs = [(team, fmt, 100 * i) for i, team in enumerate(TEAMS, 1) for fmt in ("csv", "pdf")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda job: export_report(*job), jobs))
    tracked += len(jobs)

    report = itly.sync.shutdown(timeout=10)
    print(
        f"script: tracked {tracked} events; delivered {report.delivered}, "
        f"rejected {report.rejected}, pending {report.pending}"
    )
    return 0 if report.pending == 0 and report.rejected == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
