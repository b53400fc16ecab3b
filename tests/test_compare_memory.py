"""A comparison holds one number per outcome per run, not every run's frames (issue 14: "Bound what is held in
memory"): with a workspace its per-period frames stay on disk, are stacked there run by run, and the files, the
figures and the statistics are those of the comparison held in memory, bit for bit."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd

from lab.experiment.compare import FRAMES, CompareOptions, compare, write_comparison
from lab.experiment.folder import Workspace
from lab.report import write_report
from lab.scenario.loader import load_scenario
from tests.conftest import day0_loaded

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"


def _tiny(reps: int) -> CompareOptions:
    return CompareOptions(replications=reps, customers=30, days=28, jobs=1, seed=3)


def _on_disk(tmp: Path, reps: int, name: str = "cmp"):
    loaded = day0_loaded(load_scenario(CLASSROOM, ["points"]))
    work = Workspace(tmp / name, {"test": reps}, resume=False)
    work.open()
    return compare(loaded, _tiny(reps), progress=False, workspace=work)


def test_the_files_and_figures_from_disk_are_those_held_in_memory(tmp_path):
    loaded = day0_loaded(load_scenario(CLASSROOM, ["points"]))
    held = compare(loaded, _tiny(3), progress=False)
    disk = _on_disk(tmp_path, 3)
    assert all(r.timeseries is None and r.retention is None and r.lorenz is None for r in disk.results)
    assert all(r.timeseries is not None for r in held.results)
    a, b = tmp_path / "held", tmp_path / "disk"
    write_comparison(held, a)
    write_comparison(disk, b)
    write_report(held, a)
    write_report(disk, b)
    assert (a / "summary.json").read_text() == (b / "summary.json").read_text()
    for name in ("replications", *FRAMES):
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet"),
                                      check_exact=True)
        pd.testing.assert_frame_equal(getattr(held, name), getattr(disk, name), check_exact=True)
    for png in sorted(a.glob("fig_*.png")):
        assert png.read_bytes() == (b / png.name).read_bytes(), png.name


def _held_bytes(tmp: Path, reps: int, disk: bool) -> int:
    """Bytes of what the returned Comparison holds for its runs, measured as the pickled size of its results
    (deterministic, unlike a process-wide allocation count that caches elsewhere in the process disturb)."""
    comp = (_on_disk(tmp, reps, f"cmp{reps}") if disk
            else compare(day0_loaded(load_scenario(CLASSROOM, ["points"])), _tiny(reps), progress=False))
    assert len(comp.results) == reps * 4  # two policies, each with its flywheel-cut twin
    return len(pickle.dumps(comp.results))


def test_memory_held_per_run_is_its_outcomes_not_its_frames(tmp_path):
    # Held in memory, each extra run adds its outcomes and its three frames; on disk, its outcomes only. The
    # growth per run on disk must be well under the growth in memory: under half of it (the frames, with pandas'
    # blocks and indexes, outweigh a dict of a few dozen numbers many times over; measured on 30 extra
    # replications of this tiny run, pickled: about 8.6 KB a run in memory, 0.34 KB with a workspace).
    more = 30
    grow = {}
    for d in (False, True):
        small = _held_bytes(tmp_path / str(d), 2, d)
        large = _held_bytes(tmp_path / str(d), 2 + more, d)
        grow[d] = (large - small) / (more * 4)
    assert grow[True] < grow[False] / 2, grow
