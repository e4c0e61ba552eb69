"""``itly status``: calls found by walking the AST, in every import style."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from codegen import check_plan_data
from codegen._status import report, scan
from codegen.cli import main
from codegen.samples import small_plan as plan_dict


def _plan_with_events() -> dict[str, object]:
    names = ["Order Completed", "User Signed Up", "Job Failed", "Report Exported", "Page Viewed"]
    events = [
        {
            "name": name,
            "properties": {"plan": {"type": "string"}, "note": {"type": "string"}},
            "required": ["plan"],
        }
        for name in names
    ]
    return plan_dict(events=events)


def _write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


STYLES = {
    "plain.py": """
        import itly

        async def handler():
            await itly.order_completed("u", "pro")
    """,
    "aliased.py": """
        import itly as analytics

        def later():
            result = [analytics.sync.user_signed_up("u", plan="pro", note="n")]
    """,
    "from_import.py": """
        from itly import job_failed as failed

        async def run():
            x = 1 if await failed("u", "pro") else 2
    """,
    "sync_module.py": """
        from itly import sync

        def script():
            print(sync.report_exported("u", "pro"))
    """,
    "nested/package_path.py": """
        def late():
            app.itly.order_completed("u", "pro")

        import app.itly
    """,
}


def test_finds_every_call_style(tmp_path: Path) -> None:
    _write(tmp_path, STYLES)
    plan, _ = check_plan_data(_plan_with_events())
    assert plan is not None
    statuses, unreadable = scan(plan, "backend", [tmp_path])
    assert unreadable == []
    found = {s.event.name: sorted(Path(c.path).name for c in s.calls) for s in statuses}
    assert found == {
        "Order Completed": ["package_path.py", "plain.py"],
        "User Signed Up": ["aliased.py"],
        "Job Failed": ["from_import.py"],
        "Report Exported": ["sync_module.py"],
        "Page Viewed": [],
    }
    lines = report(statuses)
    assert lines[-1].startswith("missing  Page Viewed")
    assert all(s.ok for s in statuses[:4])


def test_flags_missing_arguments_and_unknown_keywords(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "bad.py": """
                import itly
                from itly.sync import user_signed_up

                itly.order_completed("u")
                user_signed_up("u", "pro", colour="red")
                itly.job_failed("u", "pro", "n")
                itly.report_exported(user_id="u", plan="pro", note="n")
                itly.page_viewed(*args, **kwargs)
            """
        },
    )
    plan, _ = check_plan_data(_plan_with_events())
    assert plan is not None
    statuses, _ = scan(plan, "backend", [tmp_path])
    problems = {s.event.name: [p for c in s.calls for p in c.problems] for s in statuses}
    assert problems == {
        "Order Completed": ["missing required plan"],
        "User Signed Up": ["unknown keyword colour="],
        "Job Failed": [
            "3 positional arguments, at most 2 (user_id, plan); pass optional properties by keyword"
        ],
        "Report Exported": [],  # everything by keyword is fine
        "Page Viewed": [],  # *args / **kwargs: counted, not checked
    }
    lines = report(statuses)
    assert any("bad.py:5: order_completed(): missing required plan" in ln for ln in lines)


def test_ignores_other_modules_and_unparsable_files(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "other.py": """
                import analytics
                analytics.order_completed("u", "pro")
                order_completed("u", "pro")
            """,
            "broken.py": "def (:\n",
            ".venv/lib/itly_user.py": "import itly\nitly.order_completed('u', 'p')\n",
        },
    )
    plan, _ = check_plan_data(_plan_with_events())
    assert plan is not None
    statuses, unreadable = scan(plan, "backend", [tmp_path])
    assert all(not s.calls for s in statuses)
    assert len(unreadable) == 1
    assert "broken.py" in unreadable[0]


def test_custom_package_name(tmp_path: Path) -> None:
    _write(tmp_path, {"a.py": "from app import tracking\ntracking.order_completed('u', 'p')\n"})
    plan, _ = check_plan_data(_plan_with_events())
    assert plan is not None
    statuses, _ = scan(plan, "backend", [tmp_path], package="tracking")
    assert [len(s.calls) for s in statuses] == [1, 0, 0, 0, 0]


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(_plan_with_events()))
    code_dir = tmp_path / "src"
    _write(code_dir, STYLES)
    args = ["status", "--plan", str(plan_path), "--source", "backend", str(code_dir)]
    assert main(args) == 1  # Page Viewed is missing
    out = capsys.readouterr().out
    assert "4 of 5 events of source 'backend' instrumented" in out
    _write(code_dir, {"more.py": "import itly\nitly.page_viewed('u', 'p')\n"})
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args[:-1], str(tmp_path / "nope")]) == 2
    assert main(["status", "--plan", str(plan_path), "--source", "web"]) == 2
