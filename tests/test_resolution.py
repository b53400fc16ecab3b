"""One way to find a policy or scenario from every command, from any folder; a scenario reads only policies."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from lab.cli import main
from lab.policy.files import SHIPPED_POLICIES, SHIPPED_SCENARIOS, find_policy

ROOT = Path(__file__).resolve().parents[1]
DIAG = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+$")
SECRET = "TOPSECRET-7d1f"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working folder outside the repository."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_the_repository_folders_are_the_shipped_data_not_a_copy():
    for name in ("policies", "scenarios"):
        assert (ROOT / name).resolve() == (SHIPPED_POLICIES if name == "policies" else SHIPPED_SCENARIOS).resolve()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lab"]
    shipped = {p.relative_to(ROOT / "lab") for p in (ROOT / "lab" / "data").rglob("*.yaml")}
    assert shipped and all(any(p.match(g) for g in data) for p in shipped), data


def test_names_work_from_any_folder_in_every_command(elsewhere, capsys):
    assert main(["explain", "points"]) == 0
    assert "Policy 'points'" in capsys.readouterr().out
    assert main(["validate", "points", "classroom", "reward_sensitivity"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok:") == 3
    assert main(["run", "classroom", "--policy", "points", "--customers", "50", "--days", "375",
                 "--out", str(elsewhere / "r")]) == 0
    assert (elsewhere / "r" / "summary.json").is_file()


def test_a_scenario_copied_out_of_the_repository_finds_the_shipped_policies(elsewhere, capsys):
    shutil.copy(ROOT / "scenarios" / "classroom.yaml", elsewhere / "mine.yaml")
    assert main(["validate", "mine.yaml"]) == 0
    assert "policies: none, points, credit, performance" in capsys.readouterr().out
    assert main(["trace", "mine.yaml", "--policy", "credit", "--customer", "0", "--customers", "20",
                 "--days", "375"]) == 0


def test_a_policy_beside_the_scenario_comes_before_the_shipped_one(elsewhere, capsys):
    shutil.copy(ROOT / "scenarios" / "classroom.yaml", elsewhere / "mine.yaml")
    (elsewhere / "points.yaml").write_text("name: points\ndescription: my own\n")
    assert find_policy("points", elsewhere / "mine.yaml") == elsewhere / "points.yaml"
    assert find_policy("points") == SHIPPED_POLICIES / "points.yaml"


def _scenario_listing(folder: Path, refs: str) -> Path:
    text = (ROOT / "scenarios" / "classroom.yaml").read_text()
    f = folder / "s.yaml"
    f.write_text(text.replace("policies: [none, points, credit, performance]", f"policies: [none, {refs}]"))
    return f


@pytest.mark.parametrize("ref", ["../secret.yaml", "SECRET_ABS", "../secret"])
def test_a_scenario_cannot_read_files_outside_its_folder(tmp_path, capsys, ref):
    (tmp_path / "secret.yaml").write_text(f"name: x\nrules: [{SECRET}]\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    ref = str(tmp_path / "secret.yaml") if ref == "SECRET_ABS" else ref
    f = _scenario_listing(sub, f"'{ref}'")
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert SECRET not in err and "internal error" not in err
    assert all(DIAG.match(line) for line in err.strip().splitlines())
    assert err.startswith(f"{f}:")


@pytest.mark.parametrize("content", [f"hello: {SECRET}\n", f"{SECRET}: [\n", f"- {SECRET}\n",
                                     f"population: {{{SECRET}: 1}}\n"])
def test_a_file_that_is_not_a_policy_is_not_quoted(tmp_path, capsys, content):
    (tmp_path / "notes.yaml").write_text(content)
    f = _scenario_listing(tmp_path, "notes.yaml")
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert SECRET not in err and "is not a policy" in err and err.startswith(f"{f}:")


def test_a_path_given_on_the_command_line_is_taken_as_written(elsewhere, capsys):
    mine = elsewhere / "pol"
    mine.mkdir()
    (mine / "cheap.yaml").write_text((ROOT / "policies" / "points.yaml").read_text().replace("name: points",
                                                                                           "name: cheap"))
    assert main(["run", "classroom", "--policy", os.path.join("pol", "cheap.yaml"), "--customers", "50",
                 "--days", "375", "--out", "r"]) == 0
    assert "classroom / cheap" in capsys.readouterr().out


def test_an_unknown_name_says_where_it_looked(elsewhere, capsys):
    assert main(["explain", "pionts"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'points'" in err and "shipped policies" in err
