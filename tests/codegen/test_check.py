"""``itly check``: every problem of a plan, each with its JSON path and a fix."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen import check_plan_data
from codegen._jsonload import parse_json_text
from codegen.cli import main
from codegen.samples import small_plan as plan_dict

ROOT = Path(__file__).resolve().parents[2]


Mutation = Callable[[dict[str, Any]], object]


def _event(plan: dict[str, Any], index: int = 0) -> dict[str, Any]:
    event: dict[str, Any] = plan["events"][index]
    return event


def _add_event(plan: dict[str, Any], **event: Any) -> None:
    plan["events"].append({"name": "Other", **event})


CASES: list[tuple[str, Mutation, str, str]] = [
    # (id, mutation, expected JSON path, fragment of the message)
    ("missing version", lambda p: p.pop("version"), "$.version", "missing"),
    ("empty version", lambda p: p.update(version=""), "$.version", "empty"),
    (
        "unknown top-level key",
        lambda p: p.update(evnts=[]),
        "$.evnts",
        "unknown key",
    ),
    (
        "unknown destination in source",
        lambda p: p["sources"]["backend"]["destinations"].append("segmnt"),
        "$.sources.backend.destinations[1]",
        'destination "segmnt" is not defined',
    ),
    (
        "unknown vendor",
        lambda p: p["destinations"]["amplitude"].update(vendor="mixpanel"),
        "$.destinations.amplitude.vendor",
        "not one of",
    ),
    (
        "destination key not an identifier",
        lambda p: p["destinations"].update({"Segment EU": {"vendor": "segment"}}),
        '$.destinations["Segment EU"]',
        "not allowed",
    ),
    (
        "write_key on amplitude",
        lambda p: p["destinations"]["amplitude"].update(write_key={"production": "x"}),
        "$.destinations.amplitude.write_key",
        "does not apply",
    ),
    (
        "event source undefined",
        lambda p: _event(p).update(sources=["frontend"]),
        "$.events[0].sources[0]",
        'source "frontend" is not defined',
    ),
    (
        "duplicate event name",
        lambda p: _add_event(p, name="Process Started"),
        "$.events[1].name",
        "already used by $.events[0]",
    ),
    (
        "event names collide as identifiers",
        lambda p: _add_event(p, name="process-started"),
        "$.events[1].name",
        "both become the Python name 'process_started'",
    ),
    (
        "property names collide as identifiers",
        lambda p: _event(p)["properties"].update({"Available Processors": {"type": "integer"}}),
        '$.events[0].properties["Available Processors"]',
        "both become the Python name 'available_processors'",
    ),
    (
        "required but undefined",
        lambda p: _event(p).update(required=["cpus"]),
        "$.events[0].required[0]",
        '"cpus" is required but not defined',
    ),
    (
        "nested required but undefined",
        lambda p: _event(p)["properties"].update(
            obj={"type": "object", "properties": {"a": {}}, "required": ["b"]}
        ),
        "$.events[0].properties.obj.required[0]",
        '"b" is required',
    ),
    (
        "property collides with user_id",
        lambda p: _event(p)["properties"].update({"User ID": {"type": "string"}}),
        '$.events[0].properties["User ID"]',
        "becomes the parameter 'user_id'",
    ),
    (
        "group property collides with group_id",
        lambda p: p.update(group={"properties": {"group-id": {"type": "string"}}}),
        '$.group.properties["group-id"]',
        "'group_id'",
    ),
    (
        "unknown type",
        lambda p: _event(p)["properties"].update(x={"type": "strin"}),
        "$.events[0].properties.x.type",
        "not allowed",
    ),
    (
        "misspelled keyword",
        lambda p: _event(p)["properties"].update(x={"type": "integer", "minimun": 1}),
        "$.events[0].properties.x.minimun",
        "unknown key",
    ),
    (
        "minimum not a number",
        lambda p: _event(p)["properties"].update(x={"type": "integer", "minimum": "1"}),
        "$.events[0].properties.x.minimum",
        "expected a number",
    ),
    (
        "bad regex",
        lambda p: _event(p)["properties"].update(x={"type": "string", "pattern": "([a-z"}),
        "$.events[0].properties.x.pattern",
        "not a valid regular expression",
    ),
    (
        "unknown format",
        lambda p: _event(p)["properties"].update(x={"type": "string", "format": "e-mail"}),
        "$.events[0].properties.x.format",
        "not one the validators check",
    ),
    (
        "min above max",
        lambda p: _event(p)["properties"].update(x={"type": "integer", "minimum": 5, "maximum": 1}),
        "$.events[0].properties.x.minimum",
        "greater than maximum",
    ),
    (
        "enum value of the wrong type",
        lambda p: _event(p)["properties"].update(x={"type": "string", "enum": ["a", 2]}),
        "$.events[0].properties.x.enum[1]",
        "not of the declared type",
    ),
    (
        "empty enum",
        lambda p: _event(p)["properties"].update(x={"enum": []}),
        "$.events[0].properties.x.enum",
        "at least 1",
    ),
    (
        "events not a list",
        lambda p: p.update(events={"name": "x"}),
        "$.events",
        "expected a list",
    ),
    (
        "blank event name",
        lambda p: _add_event(p, name="   "),
        "$.events[1].name",
        "not allowed",
    ),
    (
        "name without letters",
        lambda p: _add_event(p, name="\u200b"),
        "$.events[1].name",
        "no letters or digits",
    ),
    (
        "python keyword destination",
        lambda p: (
            p["destinations"].update({"global": {"vendor": "custom"}}),
            p["sources"]["backend"]["destinations"].append("global"),
        ),
        "$.destinations.global",
        "Python keyword",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_problem_has_its_path_and_a_fix(mutate: Mutation, path: str, fragment: str) -> None:
    data = plan_dict()
    mutate(data)
    plan, problems = check_plan_data(data)
    assert plan is None
    found = [p for p in problems if p.where == path]
    assert found, [str(p) for p in problems]
    assert any(fragment in p.message for p in found), [str(p) for p in found]
    for problem in problems:
        assert problem.fix.endswith((".", "?")), problem
        assert len(problem.fix) > 10


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = plan_dict()
    data.pop("version")
    data["sources"]["backend"]["destinations"].append("nowhere")
    data["events"][0]["required"] = ["missing"]
    data["events"].append({"name": "Process Started"})
    plan, problems = check_plan_data(data)
    assert plan is None
    assert [p.where for p in problems] == [
        "$.version",  # the schema's problems first, then the rest, in one pass
        "$.sources.backend.destinations[1]",
        "$.events[0].required[0]",
        "$.events[1].name",
    ]


def test_malformed_parts_do_not_hide_or_fake_other_problems() -> None:
    data = plan_dict()
    data["destinations"]["segment"] = {"vendor": "segmint"}  # malformed, but defined
    data["sources"]["backend"]["destinations"].append("segment")
    data["events"][0]["properties"]["bad"] = {"type": "strng"}
    data["events"][0]["required"] = ["bad", "undefined"]
    data["events"].append({"name": 42})
    data["events"].append({"name": "process_started"})  # collides with event 0
    _, problems = check_plan_data(data)
    assert [p.where for p in problems] == [
        "$.destinations.segment.vendor",
        "$.events[0].properties.bad.type",
        "$.events[1].name",
        "$.events[0].required[1]",  # "bad" is defined (malformed), "undefined" is not
        "$.events[2].name",
    ]


def test_several_schema_problems_at_once() -> None:
    data = plan_dict(version=3, sources={"backend": {}}, destinations=[])
    _, problems = check_plan_data(data)
    assert {p.where for p in problems} == {
        "$.version",
        "$.sources.backend.destinations",
        "$.destinations",
    }


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{"version": "1",\n "events": [\n', 3, 1),  # truncated
        ('{"version": "1"\n "events": []}', 2, 2),  # missing comma
        ('{"version": "1",}', 1, 17),  # trailing comma
        ("{'version': '1'}", 1, 2),  # single quotes
    ],
)
def test_malformed_json_points_at_line_and_column(text: str, line: int, column: int) -> None:
    value, problems = parse_json_text(text)
    assert value is None
    assert [(p.line, p.column) for p in problems] == [(line, column)]
    assert problems[0].fix


def test_duplicate_keys_and_nan_are_reported() -> None:
    value, problems = parse_json_text('{"a": 1, "a": 2, "b": {"c": NaN}}')
    assert value == {"a": 2, "b": {"c": None}}
    assert [p.where for p in problems] == ["$.a", "$.b.c"]


# --- the command ------------------------------------------------------------------------


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_clean_plan_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["check", "--plan", str(ROOT / "examples/tracking-plan.json")], capsys)
    assert code == 0
    assert "OK" in out


def test_check_broken_plan_exits_1_with_path_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = plan_dict()
    data["sources"]["backend"]["destinations"].append("segmnt")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    code, out, _ = _run(["check", "--plan", str(path)], capsys)
    assert code == 1
    line = out.splitlines()[0]
    assert line.startswith(f"{path}: $.sources.backend.destinations[1]: ")
    assert "Fix: Define it under" in line
    assert out.splitlines()[-1] == f"1 problem found in {path}"


def test_check_truncated_json_exits_1_with_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_dict(), indent=2)[:-40])
    code, out, _ = _run(["check", "--plan", str(path)], capsys)
    assert code == 1
    assert out.startswith(f"{path}:")
    assert "invalid JSON" in out
    assert "truncated" in out


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--plan", "/nonexistent/plan.json"],
        ["check", "--nope"],
        ["pull"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2
    assert err.startswith("itly: error:")


def test_unknown_source_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    plan = str(ROOT / "examples/tracking-plan.json")
    code, _, err = _run(["pull", "frontend", "--plan", plan, "--out", "/tmp/x"], capsys)
    assert code == 2
    assert "no source 'frontend'" in err
    assert "backend, worker" in err


BROKEN_FILES: dict[str, str | bytes] = {
    "truncated.json": '{"version": "1", "sources": {',
    "not-utf8.json": b'{"version": "\xff"}',
    "array.json": "[1, 2, 3]",
    "empty.json": "",
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "bad-everything.json": json.dumps(
        {"version": 1, "sources": [], "destinations": {"x": 1}, "events": [{"nam": 1}]}
    ),
}


def test_never_a_traceback(tmp_path: Path, tools: Any) -> None:
    """Broken files through the real console entry point: clean messages, exit 1."""
    for name, content in BROKEN_FILES.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    for name in BROKEN_FILES:
        proc = subprocess.run(
            [sys.executable, "-m", "codegen", "check", "--plan", str(tmp_path / name)],
            capture_output=True,
            text=True,
            env=tools.env,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr, name
        assert "Fix:" in proc.stdout, (name, proc.stdout)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_any_json_value_gets_problems_not_an_exception(value: Any) -> None:
    plan, problems = check_plan_data(value)
    assert plan is None
    assert problems


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, sub in value.items():
            out += _paths(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            out += _paths(sub, (*path, i))
    return out


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_plan_with_any_part_replaced_gets_problems_not_an_exception(data: st.DataObject) -> None:
    plan = json.loads((ROOT / "examples" / "tracking-plan.json").read_text())
    path = data.draw(st.sampled_from(_paths(plan)[1:]))
    parent = plan
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = data.draw(JSON)
    _, problems = check_plan_data(plan)
    for problem in problems:
        assert problem.fix, problem


def test_schema_check_agrees_with_a_real_validator() -> None:
    """The plan schema is real draft-07: fastjsonschema accepts what our evaluator accepts."""
    import fastjsonschema

    from codegen._schemacheck import plan_schema

    validate = fastjsonschema.compile(plan_schema())
    for path in [ROOT / "examples/tracking-plan.json", *ROOT.glob("examples/plans/*.json")]:
        data = json.loads(path.read_text())
        if "events" in data:
            validate(copy.deepcopy(data))
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validate({"version": "1", "sources": {}, "destinations": {}, "events": []})


# --- numbers Python cannot hold as written ----------------------------------------------


def test_a_number_too_large_for_a_float_is_a_problem_at_its_path() -> None:
    value, problems = parse_json_text('{"a": {"minimum": 1e400}, "b": [-1e400, 1e-400]}')
    assert value == {"a": {"minimum": None}, "b": [None, 0.0]}  # underflow to 0 is harmless
    assert [p.where for p in problems] == ["$.a.minimum", "$.b[0]"]
    assert "too large for a float" in problems[0].message
    assert "finite number" in problems[0].fix


def test_an_infinite_float_in_parsed_data_is_a_problem_at_its_path() -> None:
    data = plan_dict()
    data["events"][0]["properties"]["available_processors"]["maximum"] = float("inf")
    plan, problems = check_plan_data(data)
    assert plan is None
    assert [p.where for p in problems] == ["$.events[0].properties.available_processors.maximum"]


def test_check_rejects_an_overflowing_number_instead_of_writing_inf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps(plan_dict()).replace('"minimum": 1', '"minimum": 1e400')
    path = tmp_path / "plan.json"
    path.write_text(text)
    code, out, _ = _run(["check", "--plan", str(path)], capsys)
    assert code == 1
    assert f"{path}: $.events[0].properties.available_processors.minimum: " in out
    code, out, _ = _run(["pull", "backend", "--plan", str(path), "--out", str(tmp_path)], capsys)
    assert code == 1
    assert not (tmp_path / "itly").exists()


def test_an_integer_with_too_many_digits_is_a_problem_with_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digits = "9" * 5000
    text = json.dumps(plan_dict(), indent=2).replace('"minimum": 1', f'"minimum": {digits}')
    # the same digits inside a string are text, not a number: they must not count
    text = text.replace('"version": "1.0.0"', f'"version": "{digits}"', 1)
    path = tmp_path / "plan.json"
    path.write_text(text)
    code, out, err = _run(["check", "--plan", str(path)], capsys)
    assert code == 1, err
    offset = text.index(f": {digits}") + 2
    line = text.count("\n", 0, offset) + 1
    column = offset - text.rfind("\n", 0, offset)
    first = out.splitlines()[0]
    assert first.startswith(f"{path}:{line}:{column}: the integer at ")
    assert "$.events[0].properties.available_processors.minimum has 5000 digits" in first
    assert "Fix:" in first
    assert len(first) < 400  # the digits themselves are not printed


# --- every problem, also inside one property or a duplicate -----------------------------


def test_every_problem_inside_one_nested_property_is_reported() -> None:
    data = plan_dict()
    data["events"][0]["properties"]["y"] = {
        "type": "object",
        "properties": {"z": {"type": "strng"}, "w": {"type": "string", "pattern": "["}},
        "required": ["q"],
    }
    plan, problems = check_plan_data(data)
    assert plan is None
    assert sorted(p.where for p in problems) == [
        "$.events[0].properties.y.properties.w.pattern",
        "$.events[0].properties.y.properties.z.type",
        "$.events[0].properties.y.required[0]",
    ]


def test_nested_problems_under_array_items_are_all_reported() -> None:
    data = plan_dict()
    data["events"][0]["properties"]["rows"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"a": {"type": "intger"}, "b": {"minLength": 3, "maxLength": 1}},
        },
        "minItems": 5,
        "maxItems": 2,
    }
    _, problems = check_plan_data(data)
    assert sorted(p.where for p in problems) == [
        "$.events[0].properties.rows.items.properties.a.type",
        "$.events[0].properties.rows.items.properties.b.minLength",
        "$.events[0].properties.rows.minItems",
    ]


def test_a_duplicate_events_own_problems_are_reported_too() -> None:
    data = plan_dict()
    data["events"].append(
        {
            "name": "Process Started",
            "sources": ["frontend"],
            "properties": {"x": {"type": "strng"}},
            "required": ["q"],
        }
    )
    plan, problems = check_plan_data(data)
    assert plan is None
    assert [p.where for p in problems] == [
        "$.events[1].properties.x.type",
        "$.events[1].required[0]",
        "$.events[1].sources[0]",
        "$.events[1].name",
    ]
    assert "already used by $.events[0]" in problems[-1].message
    # the duplicate is no second event: no "both become the Python name" on top
    assert not any("both become" in p.message for p in problems)


# --- messages ---------------------------------------------------------------------------


def test_an_invalid_pattern_is_reported_once() -> None:
    data = plan_dict()
    data["events"][0]["properties"]["code"] = {"type": "string", "pattern": "["}
    _, problems = check_plan_data(data)
    assert [p.where for p in problems] == ["$.events[0].properties.code.pattern"]
    assert "not a valid regular expression" in problems[0].message


def test_a_bad_element_of_a_type_list_is_named() -> None:
    data = plan_dict()
    data["events"][0]["properties"]["x"] = {"type": ["string", "strng"]}
    _, problems = check_plan_data(data)
    assert [p.where for p in problems] == ["$.events[0].properties.x.type[1]"]
    assert problems[0].message.startswith('"strng" is not one of "string", ')
    assert "JSON Schema type" in problems[0].fix


def test_a_colliding_property_fix_says_properties() -> None:
    data = plan_dict()
    data["events"][0]["properties"]["Available-Processors"] = {"type": "integer"}
    _, problems = check_plan_data(data)
    assert [p.fix for p in problems] == [
        "Rename one of the two properties so their names differ in more than case, spacing "
        "or punctuation."
    ]


def test_check_with_an_unknown_source_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = str(ROOT / "examples/tracking-plan.json")
    code, out, err = _run(["check", "--plan", plan, "--source", "nope"], capsys)
    assert code == 2
    assert out == ""
    assert "no source 'nope'" in err
    assert "its sources: backend, worker" in err
    code, out, _ = _run(["check", "--plan", plan, "--source", "worker"], capsys)
    assert code == 0
    assert "OK" in out
