"""The report's figures drawn cheaply and on worker processes, without changing a byte: `png` writes what savefig
writes, a figure drawn in a worker is the one drawn here, and a policy's frames read by row group are the rows a
filter reads."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from lab.experiment.compare import FRAMES, CompareOptions, Comparison, compare
from lab.experiment.folder import Workspace
from lab.experiment.processes import worker_pool
from lab.report import write_report
from lab.report.drawing import DPI, ROBUST_NAMES, SLOWEST_FIRST, FigureDrawing, draw, png
from lab.report.figures import FIGURES
from lab.report.robust_figures import ROBUST_FIGURES
from lab.scenario.loader import load_scenario
from tests.conftest import day0_loaded

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"
POLICIES = ["none", "points", "credit", "performance"]  # every figure applies: points, credit, the cut runs


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory: pytest.TempPathFactory) -> Comparison:
    """A small comparison whose frames are in a workspace on disk, as `lab compare` keeps them."""
    work = Workspace(tmp_path_factory.mktemp("disk") / "cmp", {"test": "figures"}, resume=False)
    work.open()
    loaded = day0_loaded(load_scenario(CLASSROOM, policies=POLICIES))
    return compare(loaded, CompareOptions(replications=3, customers=200, days=90, jobs=1, seed=5), progress=False,
                   workspace=work)


def _savefig(comp: Comparison, name: str) -> bytes:
    fig = {s.name: s for s in FIGURES}[name].draw(comp)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


@pytest.mark.parametrize("name", [s.name for s in FIGURES])
def test_png_writes_the_bytes_savefig_writes(on_disk: Comparison, name: str) -> None:
    fig = {s.name: s for s in FIGURES}[name].draw(on_disk)
    assert png(fig) == _savefig(on_disk, name)


def test_the_revolving_doors_bars_are_the_pixels_ax_bar_draws(on_disk: Comparison,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Its hundreds of bars are one collection each way (a fraction of the cost): the PNG is byte for byte the
    one drawn with a patch per bar by `Axes.bar`."""
    import lab.report.figures as figures

    one = draw(on_disk, "revolving_door")

    def patches(ax, x, height, width, colour, alpha):  # the bars as Axes.bar draws them
        ax.bar(x, height, width=width, color=colour, alpha=alpha)

    monkeypatch.setattr(figures, "_bars", patches)
    assert draw(on_disk, "revolving_door") == one


@pytest.mark.parametrize("heights", [[3.0, 0.0, 7.5, 1.0], [-2.0, -0.5, 0.0, -4.0], [2.0, -1.0, 0.5, -3.0]],
                         ids=["all up", "all down", "both ways"])
def test_bars_drawn_as_one_collection_are_the_pixels_of_ax_bar(heights: list[float]) -> None:
    """Bars that all start at 0 get no margin below (or above) 0, as Axes.bar's do: the same PNG either way."""
    import numpy as np

    from lab.report.figures import _bars, new_figure

    x = np.array([3.5, 10.5, 17.5, 24.5])

    def drawn(collection: bool, x: np.ndarray, heights: np.ndarray, width: float) -> bytes:
        fig = new_figure(10.0, 4.0)
        ax = fig.subplots()
        if collection:
            _bars(ax, x, heights, width, "#1f77b4", 0.85)
        else:
            ax.bar(x, heights, width=width, color="#1f77b4", alpha=0.85)
        return png(fig)

    assert drawn(True, x, np.array(heights), 6.0) == drawn(False, x, np.array(heights), 6.0)
    # two years of weekly bars, as the revolving door draws them: each corner where Axes.bar puts its
    # rectangle's, to the bit (a right edge at x + w/2 instead of (x - w/2) + w moved pixels of a real figure)
    weeks = np.arange(1, 105) * 7.0 - 3.5
    many = np.random.default_rng(3).integers(0, 40, weeks.size) * np.sign(heights[0] + heights[-1] + 0.1)
    fig = new_figure(10.0, 4.0)
    ax, bx = fig.subplots(1, 2)
    _bars(ax, weeks, many.astype(float), 7 * 0.85, "#1f77b4", 0.85)
    corners = np.array([p.vertices[:4] for p in ax.collections[0].get_paths()])
    rects = bx.bar(weeks, many, width=7 * 0.85)
    want = np.array([[(b.x0, b.y0), (b.x0, b.y1), (b.x1, b.y1), (b.x1, b.y0)]
                     for b in (r.get_bbox() for r in rects)])
    assert corners.tobytes() == want.tobytes()


def test_the_drawing_order_names_every_figure_once() -> None:
    assert sorted(SLOWEST_FIRST) == sorted(s.name for s in FIGURES)
    assert sorted(ROBUST_NAMES) == sorted(s.name for s in ROBUST_FIGURES)


def test_figures_drawn_on_workers_are_the_ones_drawn_here(on_disk: Comparison, tmp_path: Path) -> None:
    here = {s.name: draw(on_disk, s.name) for s in FIGURES}
    assert all(v is not None for v in here.values())
    with worker_pool(2, "the test") as pool:
        assert pool is not None
        drawing = FigureDrawing(on_disk, pool)
        there = {name: drawing.get(name) for name in here}
        write_report(on_disk, tmp_path / "pool", FigureDrawing(on_disk, pool))
    assert there == here
    write_report(on_disk, tmp_path / "here")
    for name in here:
        assert (tmp_path / "pool" / f"fig_{name}.png").read_bytes() == (tmp_path / "here" / f"fig_{name}.png"
                                                                          ).read_bytes(), name
    assert (tmp_path / "pool" / "report.html").read_bytes() == (tmp_path / "here" / "report.html").read_bytes()


def test_a_figure_the_report_does_not_show_is_not_drawn(tmp_path: Path) -> None:
    loaded = day0_loaded(load_scenario(CLASSROOM, policies=["none", "credit"]))
    comp = compare(loaded, CompareOptions(replications=2, customers=100, days=60, jobs=1, flywheel_split=False),
                   progress=False)
    assert draw(comp, "points") is None and draw(comp, "flywheel_share") is None
    with pytest.raises(ValueError, match="does not show"):
        FigureDrawing(comp).get("points")


def test_a_worker_gets_the_comparison_without_its_caches(on_disk: Comparison) -> None:
    for name in FRAMES:
        on_disk.frame_file(name)
    on_disk.matrix("net_profit")
    on_disk.frames("timeseries", "points")
    copy = pickle.loads(pickle.dumps(on_disk))
    assert copy._cache and all(key[0] == "file" for key in copy._cache)
    assert {k: v for k, v in on_disk._cache.items() if k[0] == "file"} == copy._cache
    pd.testing.assert_frame_equal(copy.frames("timeseries", "credit"), on_disk.frames("timeseries", "credit"),
                                  check_exact=True)


@pytest.mark.parametrize("name", FRAMES)
def test_frames_read_by_row_group_are_the_rows_a_filter_reads(on_disk: Comparison, name: str) -> None:
    path = on_disk.frame_file(name)
    some = [c for c in pq.read_schema(path).names if c not in ("policy", "replication", "flywheel")][:2]
    for policy in on_disk.policies:
        for flywheel in (True, False):
            for columns in (None, [*some, "no such column"]):
                cols = None if columns is None else ["policy", "replication", "flywheel", *some]
                want = pq.read_table(path, columns=cols, filters=[("policy", "==", policy),
                                                                  ("flywheel", "==", flywheel)]).to_pandas()
                got = on_disk.frames(name, policy, flywheel, columns=columns)
                pd.testing.assert_frame_equal(got, want, check_exact=True)
                assert len(got) > 0


def test_a_file_whose_row_groups_mix_runs_is_read_through_a_filter(on_disk: Comparison, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.parquet"
    frame = pd.DataFrame({"policy": ["points", "none", "points"], "replication": [0, 0, 1],
                          "flywheel": [True, True, True], "value": [1.0, 2.0, 3.0]})
    frame.to_parquet(mixed, index=False)  # one row group holding two policies' rows
    comp = pickle.loads(pickle.dumps(on_disk))
    comp._cache[("file", "mixed", len(comp.results))] = mixed
    assert comp._row_groups("mixed")[2] is None
    got = comp.frames("mixed", "points", columns=["value"])
    assert got["value"].tolist() == [1.0, 3.0] and got["replication"].tolist() == [0, 1]


def test_a_quick_exit_runs_the_later_exit_handlers_and_flushes_what_was_printed() -> None:
    code = ("import atexit, sys\n"
            "from lab.experiment.processes import exit_quickly\n"
            "exit_quickly()\n"
            "atexit.register(print, 'handler', end='')\n"
            "print('printed', end='')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "printedhandler"
