"""The `lab` command: help, exit codes, error lines, and the files each command writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lab.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = str(ROOT / "scenarios" / "classroom.yaml")
DIAG = re.compile(r"^.+:\d+:\d+: .+$")
SUBCOMMANDS = ["validate", "explain", "schema", "run", "compare", "trace", "batch", "batch-report"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command):
    out = subprocess.run([sys.executable, "-m", "lab", command, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()


def test_validate_accepts_the_shipped_files(capsys):
    assert main(["validate", str(ROOT / "policies"), CLASSROOM]) == 0
    out = capsys.readouterr().out
    assert "ok:" in out
    assert "(policy 'credit', 1 rule)" in out and "(policy 'points', 2 rules)" in out


def test_validate_reports_every_problem_as_file_line_col(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "points:\n"
        "  pts: {value: 0.01, expirey_days: 30}\n"
        "rules:\n"
        "  - id: earn\n"
        "    on: purchase\n"
        "    do:\n"
        "      - award: {ledger: points, amount: \"floor(purchase.amont)\"}\n"
    )
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(DIAG.match(line) for line in err), err
    text = "\n".join(err)
    assert f"{bad}:3:" in text and "did you mean 'expiry_days'" in text
    assert "Traceback" not in text


def test_a_scenario_with_its_store_and_population_misspelt_is_checked_as_a_scenario(tmp_path, capsys):
    """The keys left (days, launch_day, policies, ...) say what the file is: its mistakes are a scenario's."""
    text = Path(CLASSROOM).read_text().replace("\nstore:", "\nstor:").replace("\npopulation:", "\npopluation:")
    bad = tmp_path / "store.yaml"
    bad.write_text(text)
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'stor' in scenario; did you mean 'store'?" in err
    assert "unknown key 'popluation' in scenario; did you mean 'population'?" in err
    assert " in policy" not in err


def test_the_batch_specs_own_keys_are_no_scenarios_or_policys():
    """lab.scenario.loader.BATCH_KEYS, which tell a batch spec from the rest, are keys of a batch spec only."""
    import dataclasses

    from lab.batch.spec import BatchSpec
    from lab.config.declare import yaml_name
    from lab.policy.model import Policy
    from lab.scenario.loader import BATCH_KEYS
    from lab.scenario.model import Scenario

    keys = {c: {yaml_name(f.name) for f in dataclasses.fields(c)} for c in (BatchSpec, Scenario, Policy)}
    assert BATCH_KEYS <= keys[BatchSpec] - keys[Scenario] - keys[Policy]


@pytest.mark.parametrize("given, kind", [("scenarios/classroom.yaml", "scenario"),
                                         ("scenarios/batches/reward_sensitivity.yaml", "batch spec")])
def test_explain_says_a_scenario_or_a_batch_spec_is_not_a_policy(capsys, given, kind):
    assert main(["explain", str(ROOT / given)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"{ROOT / given}:1:1: this is a {kind}, not a policy: lab explain tells what a policy's rules "
                   "do; give a policy file or a shipped policy's name, e.g. lab explain policies/points.yaml")


def test_bad_command_line_values_exit_2_without_traceback():
    out = subprocess.run([sys.executable, "-m", "lab", "compare", CLASSROOM, "--replications", "zero"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert "expected a whole number" in out.stderr and "Traceback" not in out.stderr


def _lab_without(module: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`lab ARGV` in a fresh Python where importing `module` fails as it does when it is not installed."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"  # (import then raises ModuleNotFoundError)
            f"from lab.cli import main; sys.exit(main({list(argv)!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(("module", "install"), [("pandas", "pip install pandas"), ("yaml", "pip install pyyaml")])
def test_a_missing_dependency_is_named_with_how_to_install_it(module, install, tmp_path):
    out = _lab_without(module, "run", CLASSROOM, "--policy", "points", "--customers", "50", "--days", "10",
                       "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 1
    assert f"no module '{module}'" in out.stderr and install in out.stderr and "pip install -e ." in out.stderr
    assert "internal error" not in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("module", ["lab.experiment.run", "lab.fit.command"])  # when running, when parsing
def test_a_missing_module_of_the_lab_itself_is_an_internal_error(module, tmp_path):
    out = _lab_without(module, "run", CLASSROOM, "--policy", "points", "--customers", "50",
                       "--days", "10", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 1
    assert "internal error: ModuleNotFoundError" in out.stderr and "pip install" not in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_policy_suggests_the_closest(capsys):
    assert main(["run", CLASSROOM, "--policy", "pionts", "--out", "unused"]) == 2
    assert "did you mean 'points'" in capsys.readouterr().err


def test_run_writes_the_output_contract(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", CLASSROOM, "--policy", "points", "--seed", "7", "--out", str(out),
                 "--customers", "300", "--days", "455", "--transactions"]) == 0  # launch + 90
    summary = json.loads((out / "summary.json").read_text())
    # its line says which days the totals cover and writes money as the reports do
    line = capsys.readouterr().out.splitlines()[0]
    net = summary["outcomes"]["net_profit"]
    assert line.startswith("classroom / points, seed 7, days 365 to 455 (from the launch): ")
    assert f"net profit {'-' if net < 0 else ''}${abs(net):,.0f};" in line
    assert summary["policy"] == "points" and summary["seed"] == 7
    tx = pd.read_parquet(out / "transactions.parquet")
    assert list(tx.columns) == ["customer_id", "time", "amount", "category", "discount", "credit", "rules"]
    assert tx["time"].between(0, 455).all()
    customers = pd.read_parquet(out / "customers.parquet")
    assert ({"customer_id", "segment", "acquired_at", "purchases", "revenue", "last_purchase", "churned"}
            <= set(customers.columns))
    assert len(tx) == customers["purchases"].sum()
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert ts["day_end"].max() == 455


def test_same_seed_gives_identical_files(tmp_path):
    for name in ("a", "b"):
        assert main(["run", CLASSROOM, "--policy", "points", "--seed", "3", "--out", str(tmp_path / name),
                     "--customers", "200", "--days", "425"]) == 0
    for f in ("timeseries.parquet", "customers.parquet"):
        assert pd.read_parquet(tmp_path / "a" / f).equals(pd.read_parquet(tmp_path / "b" / f))


def test_explain_and_schema(capsys):
    assert main(["explain", str(ROOT / "policies" / "points.yaml")]) == 0
    assert "point" in capsys.readouterr().out.lower()
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "properties" in schema or "$defs" in schema


@pytest.mark.parametrize("command", [["run", "scenarios/classroom.yaml", "--policy", "points", "--out", "OUT"],
                                     ["compare", "scenarios/classroom.yaml", "--out", "OUT"]])
def test_days_that_end_before_the_launch_are_refused_with_the_fix(command, tmp_path, capsys):
    """The classroom launches on day 365: --days 365 would measure nothing, so the command line says what to give."""
    args = [str(tmp_path / "out") if a == "OUT" else str(ROOT / a) if a.startswith("scenarios/") else a
            for a in command]
    assert main([*args, "--days", "365"]) != 0
    err = capsys.readouterr().err
    assert "--days 365 ends the run before the launch of classroom.yaml on day 365" in err
    assert "give --days above 365" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_validate_says_a_folder_without_yaml_has_nothing_to_check(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a policy")
    assert main(["validate", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (f"{tmp_path}:1:1: the folder holds no .yaml or .yml file to check; "
                                               "give the policy, scenario or batch files, or their folder")


def test_validate_of_a_misspelt_file_names_the_one_beside_it(capsys):
    assert main(["validate", str(ROOT / "policies" / "ponts.yaml")]) == 2
    assert capsys.readouterr().err.strip().endswith("no such file (nor a shipped scenario, batch spec or policy of "
                                                    "that name); did you mean 'points.yaml'?")


def test_explain_of_a_name_too_long_for_a_file_is_a_clear_error(capsys):
    for given in ("a" * 5000, "./" + "a" * 5000 + ".yaml"):
        assert main(["explain", given]) == 2
        err = capsys.readouterr().err
        assert DIAG.match(err.strip().splitlines()[0]) and "internal error" not in err and "Traceback" not in err
