"""Names and echoed text: a bad name is a positioned diagnostic (exit 2), every message is one short line,
and a file with thousands of mistakes is refused with a bounded list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.cli import main
from lab.errors import MAX_DIAGNOSTICS, MAX_NAME, MAX_SHOWN, LabError, name_problem, printable
from lab.policy.loader import load_policy
from lab.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
DIAG = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+$")
POINTS = (ROOT / "policies" / "points.yaml").read_text()
CLASSROOM = (ROOT / "scenarios" / "classroom.yaml").read_text()


def _refused(capsys, argv: list[str]) -> list[str]:
    """Run `lab ARGV`, assert exit 2 with well-formed one-line diagnostics, return the lines."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines and "internal error" not in err, err
    assert all(DIAG.match(line) or line.startswith("lab: ") for line in lines), lines
    return lines


POLICY_CASES = {
    "empty points ledger": POINTS.replace("\n  points:   ", '\n  "":   ').replace("ledger: points", 'ledger: ""')
                                 .replace("points['points']", "points['']"),
    "empty credit line": "name: c\ncredit:\n  '': {limit: 100}\nrules: []\n",
    "no tier levels": "name: t\ntiers: {levels: {}}\nrules: []\n",
    "name over 255 characters": POINTS.replace("name: points", "name: " + "p" * 300),
    "a name with a line break": POINTS.replace("name: points", 'name: "po\\nints"'),
    "a rule id with a line break": POINTS.replace("id: earn", 'id: "ea\\nrn"'),
    "a blank tier": "name: t\ntiers: {levels: {' ': {}}}\nrules: []\n",
}


@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_a_bad_name_in_a_policy_is_a_positioned_diagnostic(case, tmp_path, capsys):
    f = tmp_path / "p.yaml"
    f.write_text(POLICY_CASES[case])
    lines = _refused(capsys, ["validate", str(f)])
    assert all(line.startswith(f"{f}:") for line in lines), lines
    with pytest.raises(LabError) as info:
        load_policy(f)
    assert {d.code for d in info.value.diagnostics} <= {"name", "required", "unknown-name"}, info.value


SCENARIO_CASES = {
    "empty category": ("    shirts:   {", '    "":   {'),
    "empty segment": ("    regulars:\n", '    "":\n'),
    "a segment name with a line break": ("    regulars:\n", '    "regu\\nlars":\n'),
    "a long scenario name": ("name: classroom", "name: " + "c" * 400),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_CASES))
def test_a_bad_name_in_a_scenario_is_a_positioned_diagnostic(case, tmp_path, capsys):
    old, new = SCENARIO_CASES[case]
    f = tmp_path / "s.yaml"
    f.write_text(CLASSROOM.replace(old, new).replace("policies: [none, points, credit, performance]",
                                                       "policies: [none]"))
    lines = _refused(capsys, ["validate", str(f)])
    assert any(line.startswith(f"{f}:") for line in lines)
    with pytest.raises(LabError) as info:
        load_scenario(f)
    assert "name" in {d.code for d in info.value.diagnostics}


def test_a_long_policy_name_is_refused_before_any_file_is_named_after_it(tmp_path, capsys):
    f = tmp_path / "long.yaml"
    f.write_text(POINTS.replace("name: points", "name: " + "x" * 300))
    _refused(capsys, ["run", str(ROOT / "scenarios" / "classroom.yaml"), "--policy", str(f), "--customers", "50",
                      "--days", "10", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_echoed_text_is_escaped_and_cut():
    assert printable("a\nb") == "a\\nb"
    assert len(printable("x" * 900_049)) == 40
    assert "\n" not in printable("\n" * 10_000)


def test_a_huge_unknown_key_gives_a_short_message(tmp_path, capsys):
    f = tmp_path / "p.yaml"
    f.write_text("name: p\n" + '"' + "k\\n" * 300_000 + '": 1\nrules: []\n')
    lines = _refused(capsys, ["validate", str(f)])
    assert max(len(line) for line in lines) < 1000


def test_name_problem_accepts_ordinary_names():
    for ok in ("points", "tier_2", "Bargain hunters", "x" * MAX_NAME):
        assert name_problem(ok) is None
    for bad in ("", "   ", "a\tb", "x" * (MAX_NAME + 1), " lead"):
        assert name_problem(bad) is not None


def test_thousands_of_mistakes_are_collected_up_to_the_cap_and_printed_up_to_a_screenful(tmp_path, capsys):
    f = tmp_path / "many.yaml"
    # within the rule limit (64 rules), three unknown keys a rule: far more mistakes than the collector keeps
    f.write_text("name: many\nrules:\n"
                 + "".join(f"  - {{id: r{i}, on: purchase, bogus: 1, bogus2: 1, bogus3: 1}}\n" for i in range(60)))
    with pytest.raises(LabError) as info:
        load_policy(f)
    diags = info.value.diagnostics
    assert len(diags) == MAX_DIAGNOSTICS + 1
    assert diags[-1].code == "too-many" and "stopped after" in diags[-1].message
    lines = _refused(capsys, ["validate", str(f)])
    assert len(lines) == MAX_SHOWN + 1
    assert lines[-1] == (f"lab: {MAX_DIAGNOSTICS + 1 - MAX_SHOWN} more problems not shown "
                         "(fix the first ones and run again)")


def test_a_batch_spec_with_hundreds_of_bad_factors_is_refused_with_the_cap(tmp_path, capsys):
    f = tmp_path / "b.yaml"
    f.write_text(f"name: b\nscenario: {ROOT / 'scenarios' / 'classroom.yaml'}\nfactors:\n"
                 + "".join(f"  f{i}:\n    path: nowhere.x{i}\n    low: 0\n    high: 1\n" for i in range(300)))
    lines = _refused(capsys, ["validate", str(f)])
    assert len(lines) == MAX_SHOWN + 1 and lines[-1].startswith("lab: 51 more problems")
