"""Bounds across a segment's fields (issue 14, "absurd scenario values that validate"): a mean purchase rate,
a purchase-rate scale, a Pareto/NBD dropout rate or a Gamma-Gamma mean spend no store of this world can have is
refused where it is written, with the reason; the shipped scenarios and `lab fit`'s own scenarios load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lab.cli import main
from lab.errors import LabError
from lab.fit.pipeline import FitOptions, fit_log
from lab.fit.scenario_writer import write_scenario
from lab.scenario.loader import load_scenario
from lab.scenario.model import MAX_DROPOUT_PER_DAY, MAX_MEAN_SPEND, MAX_PURCHASES_PER_DAY

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CLASSROOM = (ROOT / "scenarios" / "classroom.yaml").read_text()
REGULARS = "{bgnbd: {r: 1.2, alpha: 8.0, a: 0.8, b: 12.0, time_unit: weeks}}"


def _line_col(text: str, needle: str) -> tuple[int, int]:
    at = text.index(needle)
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


@pytest.mark.parametrize("new, key, words", [
    ("{bgnbd: {r: 1.2, alpha: 1.0e-300, a: 0.8, b: 12.0, time_unit: weeks}}", "alpha: 1.0e-300", "r / alpha"),
    ("{bgnbd: {r: 1.2, alpha: 0.1, a: 0.8, b: 12.0, time_unit: days}}", "alpha: 0.1", "r / alpha"),  # 12 a day
    ("{bgnbd: {r: 0.01, alpha: 0.001, a: 0.8, b: 12.0, time_unit: weeks}}", "alpha: 0.001", "1 / alpha"),
    ("{paretonbd: {r: 1.2, alpha: 8.0, s: 0.5, beta: 1.0e-6, time_unit: weeks}}", "beta: 1.0e-6", "s / beta"),
])
def test_absurd_purchase_rates_are_refused_where_they_are_written(tmp_path, capsys, new, key, words):
    text = CLASSROOM.replace(REGULARS, new, 1)
    assert text != CLASSROOM
    path = tmp_path / "absurd.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    row, col = _line_col(text, key)
    assert line.startswith(f"{path}:{row}:{col + len(key.split(':')[0]) + 2}: {words}")
    with pytest.raises(LabError) as err:
        load_scenario(path)
    assert [d.code for d in err.value.diagnostics] == ["range"]


def test_a_mean_spend_past_the_bound_is_refused_at_q(tmp_path):
    text = CLASSROOM.replace("spend: {p: 6.25, q: 3.74, gamma: 15.44}",
                             "spend: {p: 6.25, q: 1.0000001, gamma: 15.44}", 1)
    path = tmp_path / "spend.yaml"
    path.write_text(text)
    with pytest.raises(LabError) as err:
        load_scenario(path)
    (d,) = err.value.diagnostics
    assert d.code == "range" and d.path[-2:] == ("spend", "q") and "p x gamma / (q - 1)" in d.message
    assert (d.line, d.col) == (_line_col(text, "q: 1.0000001")[0], _line_col(text, "1.0000001")[1])
    assert "q 1.0000001" in d.message  # the value as written, not rounded to 1


def test_values_at_the_bounds_load(tmp_path):
    # 10 purchases a day for the mean customer, scale 10 a day, a mean spend of exactly the bound: all accepted
    at = "{paretonbd: {r: 1.0, alpha: 0.1, s: 1.0, beta: 1.0, time_unit: days}}"
    assert MAX_PURCHASES_PER_DAY == 10 and MAX_DROPOUT_PER_DAY == 1 and MAX_MEAN_SPEND == 1e6
    text = CLASSROOM.replace(REGULARS, at, 1).replace("spend: {p: 6.25, q: 3.74, gamma: 15.44}",
                                                       "spend: {p: 100, q: 1.01, gamma: 100}", 1)
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    load_scenario(path)


@pytest.mark.parametrize("path", sorted([*(ROOT / "scenarios").glob("*.yaml"), *DATA.glob("*scenario*.yaml")]),
                         ids=lambda p: p.name)
def test_every_shipped_and_test_scenario_is_within_the_bounds(path):
    load_scenario(path)


@pytest.fixture(scope="module")
def fitted():
    return fit_log(DATA / "fit_example.csv", FitOptions(until="2025-06-30", columns={"segment": "segment"}))


def test_the_fit_writer_writes_a_scenario_its_loader_accepts(fitted, tmp_path):
    load_scenario(write_scenario(fitted, tmp_path, "fitted"))


def test_the_fit_writer_raises_absurd_fits_to_the_bounds(fitted, tmp_path):
    # a degenerate fit (a tiny alpha; q just above 1 with a large gamma) is written at the bounds, with a note to
    # review, and loads
    segments = {}
    for name, g in fitted.segments.items():
        purchase = {m: dataclasses.replace(f, params={**f.params, "alpha": 1e-9}) for m, f in g.models.items()}
        spend = dataclasses.replace(g.spend, params={**g.spend.params, "q": 1.0 + 1e-12, "gamma": 1e5})
        segments[name] = dataclasses.replace(g, models=purchase, spend=spend)
    res = dataclasses.replace(fitted, segments=segments)
    path = write_scenario(res, tmp_path, "absurd")
    text = path.read_text()
    assert text.count("gives more than 10 purchases a day; raised to the bound") == len(segments)
    assert text.count("gives a mean spend above 1e+06 dollars; raised to the bound") == len(segments)
    load_scenario(path)
