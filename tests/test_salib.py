"""SALib, the real package the `sensitivity` extra installs (issue 13, item 10): both of its result layouts
(`delta` up to 1.5, `delta_raw` from 1.6) and a sample too small for its bins, through `lab batch-report`."""

from __future__ import annotations

import importlib.metadata
import os

import numpy as np
import pytest

pytest.importorskip("SALib")

from lab.batch.driver import run_batch  # noqa: E402
from lab.metrics.sensitivity import salib_indices  # noqa: E402
from tests.test_batch import LONG, main_batch_report, write_spec  # noqa: E402


def test_the_installed_salib_is_a_version_the_extra_allows() -> None:
    major, minor = (int(x) for x in importlib.metadata.version("SALib").split(".")[:2])
    assert (major, minor) >= (1, 4)


def test_real_salib_ranks_a_driving_factor_above_an_idle_one() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (300, 2))
    y = 10 * X[:, 0] + rng.normal(0, 0.1, 300)
    out = salib_indices(X, y, ["drive", "idle"], [(0, 1), (0, 1)], seed=1).set_index("factor")
    assert list(out.columns[:4]) == ["delta", "delta_conf", "s1", "s1_conf"]
    assert np.isfinite(out["delta"]).all() and np.isfinite(out["s1"]).all()
    assert out.loc["drive", "delta"] > 0.3 > out.loc["idle", "delta"]
    assert out.loc["drive", "s1"] > 0.8 and out.loc["idle", "s1"] < 0.2
    assert "salib_note" not in out.columns


def test_a_sample_too_small_for_salibs_bins_gives_nan_and_says_why(capsys) -> None:
    import warnings

    X = np.random.default_rng(0).uniform(0, 1, (12, 2))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = salib_indices(X, X[:, 0], ["a", "b"], [(0, 1), (0, 1)])
    assert not seen  # SALib's notices become the note below, not warnings
    assert out["delta"].isna().all() and out["s1"].isna().all()
    assert all("raise the design's n" in note for note in out["salib_note"])
    printed = capsys.readouterr()
    assert "Dataset" not in printed.out + printed.err  # SALib's own console noise is kept out


def test_batch_report_of_a_small_lhs_store_works_with_real_salib(tmp_path, capsys) -> None:
    out = tmp_path / "store"
    with open(os.devnull, "w") as sink:
        res = run_batch(write_spec(tmp_path, LONG), out, jobs=1, stream=sink)
    assert res.failed == 0
    assert main_batch_report([str(out), "--bootstrap", "50"]) == 0
    text = (out / "report.html").read_text()
    assert "SALib" in text and "raise the design" in text
