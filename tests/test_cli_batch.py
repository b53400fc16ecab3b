"""`lab batch` and `lab batch-report` are commands of the `lab` parser, with their options, messages and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.cli import EXIT_BAD_INPUT, EXIT_OK, build_parser, main
from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = CLASSROOM_DAY0  # a day-0 cohort: the specs run a few weeks, the shipped store launches on day 365
SPEC = f"""\
name: cli_batch
scenario: {CLASSROOM}
customers: 100
days: 30
policies: [none, points]
replications: 2
seed: 3
"""


def test_the_batch_options_are_parsed_by_the_lab_parser():
    args = build_parser().parse_args(["batch", "spec.yaml", "--jobs", "2", "--resume", "--executor", "dask",
                                      "--flush-runs", "10", "--retries", "0", "--customers", "50"])
    assert (args.spec, args.jobs, args.resume, args.executor, args.flush_runs, args.retries, args.customers) == \
        ("spec.yaml", 2, True, "dask", 10, 0, 50)
    args = build_parser().parse_args(["batch-report", "store", "--bootstrap", "50", "--out", "r.html"])
    assert (args.store, args.bootstrap, args.out) == ("store", 50, "r.html")


@pytest.mark.parametrize("argv", [["batch", "s.yaml", "--jobs", "0"], ["batch", "s.yaml", "--retries", "-1"],
                                  ["batch", "s.yaml", "--flush-seconds", "nan"], ["batch", "s.yaml", "--bogus"],
                                  ["batch-report"]])
def test_bad_batch_options_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_BAD_INPUT


def test_batch_runs_refuses_a_used_store_resumes_and_reports(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    store = tmp_path / "store"
    assert main(["batch", str(spec), "--out", str(store), "--jobs", "1"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "1 design points x 2 replications x 2 policies = 4 runs" in err and "4 runs in" in err
    assert f"lab batch-report {store}" in err

    assert main(["batch", str(spec), "--out", str(store), "--jobs", "1"]) == EXIT_BAD_INPUT
    assert (f"already holds a complete batch (4 runs): read it with `lab batch-report {store}`, or choose another "
            "--out (--resume would add nothing)") in capsys.readouterr().err
    assert main(["batch", str(spec), "--out", str(store), "--jobs", "1", "--resume"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "0 runs in" in err and "(4 already done, 0 failed)" in err

    assert main(["batch-report", str(store), "--bootstrap", "5"]) == EXIT_BAD_INPUT
    assert "--bootstrap needs at least 10" in capsys.readouterr().err
    assert main(["batch-report", str(store), "--bootstrap", "20"]) == EXIT_OK
    out = capsys.readouterr().out
    assert (store / "report.html").is_file() and "report" in out


def test_a_store_of_another_batch_is_refused_as_such(tmp_path, capsys):
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(SPEC)
    second.write_text(SPEC.replace("name: cli_batch", "name: other_batch").replace("days: 30", "days: 20"))
    store = tmp_path / "store"
    assert main(["batch", str(first), "--out", str(store), "--jobs", "1"]) == EXIT_OK
    capsys.readouterr()
    said = (f"{store} holds another batch ('cli_batch', from {first}), not 'other_batch' from {second}; "
            "choose another --out")
    for resume in ([], ["--resume"]):  # said alone: not 'complete', not the options that differ
        assert main(["batch", str(second), "--out", str(store), "--jobs", "1", *resume]) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert said in err and "complete" not in err and "days" not in err


def test_a_resume_with_other_options_says_them_in_words(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("days: 30\n", ""))  # the scenario's days, unless the command line says
    store = tmp_path / "store"
    assert main(["batch", str(spec), "--out", str(store), "--jobs", "1", "--days", "20"]) == EXIT_OK
    capsys.readouterr()
    assert main(["batch", str(spec), "--out", str(store), "--jobs", "1", "--resume"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "'days' differs from the stored batch (20 then, the scenario's own now)" in err
    assert "None" not in err and "code" not in err


def test_a_scaled_store_is_said_stored_and_rerun_by_lab_run(tmp_path, capsys):
    import json

    from lab.batch import read_dataset

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)  # 100 customers of a store written for 2,000
    store, alone = tmp_path / "store", tmp_path / "alone"
    assert main(["batch", str(spec), "--out", str(store), "--jobs", "1", "--scale-store"]) == EXIT_OK
    assert "written for 2,000 customers; it runs with 100, scaled as a whole" in capsys.readouterr().err
    runs = read_dataset(store).runs
    stored = runs[(runs.run_id == "p0000-r01-points") & (runs.outcome == "net_profit")].value.item()
    assert main(["run", str(spec), "--policy", "points", "--replication", "1", "--scale-store",
                 "--out", str(alone)]) == EXIT_OK
    assert json.loads((alone / "summary.json").read_text())["outcomes"]["net_profit"] == stored
    assert main(["batch", str(spec), "--out", str(store), "--jobs", "1", "--resume"]) == EXIT_BAD_INPUT
    assert "'store_scaled_from' differs from the stored batch (2000 then, the scenario's own now)" in \
        capsys.readouterr().err
    bare = tmp_path / "bare.yaml"
    bare.write_text(SPEC.replace("customers: 100\n", ""))
    assert main(["batch", str(bare), "--out", str(tmp_path / "no"), "--jobs", "1", "--scale-store"]) == EXIT_BAD_INPUT
    assert "--scale-store scales the store to the runs' customers" in capsys.readouterr().err
    unscaled = tmp_path / "unscaled"
    assert main(["batch", str(spec), "--out", str(unscaled), "--jobs", "1"]) == EXIT_OK
    assert "runs with 100: its staff, fixed costs" in capsys.readouterr().err  # and it says so
    other = read_dataset(unscaled).runs
    assert other[(other.run_id == "p0000-r01-points") & (other.outcome == "net_profit")].value.item() < stored


def test_a_bad_spec_is_positioned_diagnostics_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + "desing: grid\n")
    assert main(["batch", str(spec), "--out", str(tmp_path / "store")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{spec}:8:" in err and "did you mean 'design'" in err and "Traceback" not in err


def test_batch_report_of_a_folder_that_is_no_store_exits_2(tmp_path, capsys):
    assert main(["batch-report", str(tmp_path)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith("lab batch-report: ")
