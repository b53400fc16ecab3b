"""Hostile policy files are refused at once, with one positioned diagnostic of the right code (issue 14: "keep every
refusal under a second"; benchmarks/bench_refusals.py times the same cases).

The YAML reader can cap a list's length (lab.policy.loader.LONGEST caps a policy's rules at MAX_RULES): the reading
stops at the first item past the cap, for every reading of a policy (lab.policy.loader.read_policy applies it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lab.cli import main
from lab.config import MAX_DEPTH, parse_yaml
from lab.errors import MAX_DIAGNOSTICS, LabError
from lab.policy.loader import load_policy
from lab.policy.runtime import MAX_RULES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_refusals import billion_laughs, deeply_nested, garbage_keys, many_rules  # noqa: E402


def _refusal(tmp_path: Path, text: str) -> LabError:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    with pytest.raises(LabError) as err:
        load_policy(path)
    return err.value


@pytest.mark.parametrize("unknown_fields", [True, False])
def test_thousands_of_rules_stop_at_the_first_rule_past_the_cap(tmp_path, unknown_fields):
    err = _refusal(tmp_path, many_rules(6000, unknown_fields=unknown_fields))
    (d,) = err.diagnostics  # not one problem per unknown field: the reading stopped
    assert d.code == "yaml-limit" and d.path == ("rules", MAX_RULES)
    assert (d.line, d.col) == (3 + 4 * MAX_RULES, 5)  # "id" of the 65th rule
    assert f"at most {MAX_RULES} rules" in d.message and f"{MAX_RULES + 1} or more" in d.message


def test_the_cap_holds_on_the_command_line_in_one_line(tmp_path, capsys):
    path = tmp_path / "many.yaml"
    path.write_text(many_rules(8000, unknown_fields=False))
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{path}:{3 + 4 * MAX_RULES}:5: a policy may have at most {MAX_RULES} rules")


def test_exactly_the_cap_is_read_in_full(tmp_path):
    # 64 rules reading an unknown field: every one is reported (the cap stops nothing below it)
    err = _refusal(tmp_path, many_rules(MAX_RULES, unknown_fields=True))
    assert len(err.diagnostics) == MAX_RULES and all("unknown field" in d.message for d in err.diagnostics)


def test_the_cap_is_on_the_rules_list_only(tmp_path):
    # a list of more than MAX_RULES items elsewhere is not cut short by the reader
    node = parse_yaml("x: [" + ", ".join(["1"] * (MAX_RULES + 5)) + "]\n", "f.yaml", {("rules",): (MAX_RULES, "no")})
    assert len(node.get("x").value) == MAX_RULES + 5


def test_garbage_keys_stop_at_the_diagnostics_cap(tmp_path):
    err = _refusal(tmp_path, garbage_keys(300_000))
    assert len(err.diagnostics) == MAX_DIAGNOSTICS + 1
    assert {d.code for d in err.diagnostics[:-1]} == {"unknown-key"} and err.diagnostics[-1].code == "too-many"


def test_a_billion_laughs_is_refused_as_a_yaml_limit(tmp_path):
    (d,) = _refusal(tmp_path, billion_laughs()).diagnostics
    assert d.code == "yaml-limit" and "billion-laughs" in d.message


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 50_000])
def test_deep_nesting_is_refused_as_a_yaml_limit_at_any_depth(tmp_path, depth):
    # past 1,000 levels libyaml stops first; its refusal is reported as the same limit, not as malformed YAML
    (d,) = _refusal(tmp_path, deeply_nested(depth)).diagnostics
    assert d.code == "yaml-limit" and f"nested more than {MAX_DEPTH} levels" in d.message and d.line == 2
