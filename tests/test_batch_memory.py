"""`lab batch` refuses, before any run, a batch whose runs held at once cannot fit in the machine's memory."""

from __future__ import annotations

from pathlib import Path

from lab.cli import main
from lab.experiment import memory
from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = CLASSROOM_DAY0  # a day-0 cohort: the specs run a few weeks, the shipped store launches on day 365


def write_spec(folder: Path, customers: int, replications: int = 2) -> Path:
    path = folder / "spec.yaml"
    path.write_text(f"name: mem_batch\nscenario: {CLASSROOM}\ncustomers: {customers}\ndays: 30\n"
                    f"policies: [none, points]\nreplications: {replications}\nseed: 3\n")
    return path


def test_a_batch_that_cannot_fit_is_refused_before_any_run(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "machine_memory", lambda: 2**30)
    out = tmp_path / "store"
    spec = write_spec(tmp_path, 3_000_000)
    assert main(["batch", str(spec), "--out", str(out), "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert "need at least" in err and "this machine has 1.0 GB" in err and "x 2 runs at once" in err, err
    assert "fewer --jobs" in err and "internal error" not in err
    assert not out.exists()  # nothing was run, nothing written


def test_the_jobs_multiply_what_is_held(capsys, monkeypatch, tmp_path):
    per = max(memory.bytes_per_customer(*args) for args in _base(tmp_path))
    customers = 2_000
    # room for two runs at once, not three
    monkeypatch.setattr(memory, "machine_memory", lambda: per * customers * 2 + per)
    spec = write_spec(tmp_path, customers, replications=3)
    assert main(["batch", str(spec), "--out", str(tmp_path / "three"), "--jobs", "3"]) == 2
    assert "x 3 runs at once" in capsys.readouterr().err
    assert not (tmp_path / "three").exists()
    assert main(["batch", str(spec), "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    assert (tmp_path / "two" / "runs").is_dir()
    # no more runs are held at once than there are tasks: three jobs for one task hold one
    assert main(["batch", str(write_spec(tmp_path, customers, replications=1)), "--out", str(tmp_path / "few"),
                 "--jobs", "3"]) == 0


def test_a_customers_factor_is_counted_at_its_largest(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "machine_memory", lambda: 2**30)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: mem_factor\nscenario: {CLASSROOM}\ndays: 30\npolicies: [none, points]\nreplications: 1\n"
                    "seed: 3\ndesign: grid\nfactors:\n  size:\n    path: population.customers\n"
                    "    levels: [500, 3000000]\n")
    assert main(["batch", str(spec), "--out", str(tmp_path / "store"), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert "3,000,000 customers need at least" in err, err
    assert not (tmp_path / "store").exists()


def _base(tmp_path: Path):
    from lab.scenario.loader import load_scenario

    loaded = load_scenario(CLASSROOM, ["none", "points"])
    return [(loaded.scenario, p) for p in loaded.policies.values()]
