"""`lab fit` end to end, through lab.fit.command.main: the lab's own logs fitted back, and the files it writes.

tests/data/fit_example.csv was written by the lab (tests/data/make_fit_example.py: the scenario
tests/data/fit_example_scenario.yaml under `none` with behaviour off, `lab run --transactions`), so
fitting each segment must give back that scenario's parameters within 3 standard errors. A
Pareto/NBD store is simulated here the same way. The fitted scenario must load and run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.errors import LabError
from lab.experiment.run import run_policy
from lab.fit.command import add_arguments, main
from lab.scenario.loader import load_scenario
from lab.scenario.model import GammaGamma, ParetoNBD, Segment

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
Z = 3.0


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lab fit")
    add_arguments(p)
    return main(p.parse_args(argv))


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "out"
    assert _run([str(DATA / "fit_example.csv"), "--until", "2025-06-30", "--holdout-until", "2025-12-30",
                 "--segment", "segment", "--out", str(out)]) == 0
    return out


def _within(fitted: dict, se: dict, truth: dict) -> None:
    for k, v in truth.items():
        assert abs(fitted[k] - v) <= Z * se[k], f"{k}: {fitted[k]:.4g} vs true {v} (se {se[k]:.3g})"


def test_fit_json_is_the_contract(example) -> None:
    doc = json.loads((example / "fit.json").read_text())
    assert set(doc) == {"data", "models", "chosen", "spend", "holdout", "segments"}
    assert set(doc["data"]) == {"sha256", "customers", "transactions", "calibration_end", "holdout_end", "time_unit"}
    assert doc["data"]["calibration_end"] == "2025-06-30" and doc["data"]["holdout_end"] == "2025-12-30"
    assert doc["data"]["customers"] == 2000 and doc["data"]["time_unit"] == "weeks"
    import hashlib
    assert doc["data"]["sha256"] == hashlib.sha256((DATA / "fit_example.csv").read_bytes()).hexdigest()
    assert set(doc["models"]) == {"bgnbd", "paretonbd"}
    for m, names in (("bgnbd", {"r", "alpha", "a", "b"}), ("paretonbd", {"r", "alpha", "s", "beta"})):
        assert set(doc["models"][m]) == {"params", "se", "log_likelihood", "bic", "converged"}
        assert set(doc["models"][m]["params"]) == names == set(doc["models"][m]["se"])
    assert doc["chosen"] in ("bgnbd", "paretonbd")
    assert (set(doc["spend"]) == {"params", "se", "log_likelihood"}
            and set(doc["spend"]["params"]) == {"p", "q", "gamma"})
    assert set(doc["holdout"]) == {"actual_repeat_transactions", "predicted_repeat_transactions"}
    assert set(doc["segments"]) == {"regulars", "occasionals"}


def test_the_labs_own_log_is_fitted_back_per_segment(example) -> None:
    truth = yaml.safe_load((DATA / "fit_example_scenario.yaml").read_text())["population"]["segments"]
    doc = json.loads((example / "fit.json").read_text())
    for name, seg in doc["segments"].items():
        bg = seg["models"]["bgnbd"]
        t = dict(truth[name]["purchases"]["bgnbd"])
        t.pop("time_unit")
        _within(bg["params"], bg["se"], t)
        _within(seg["spend"]["params"], seg["spend"]["se"], truth[name]["spend"])


def test_holdout_counts_are_the_logs(example) -> None:
    import pandas as pd
    doc = json.loads((example / "fit.json").read_text())
    log = pd.read_csv(DATA / "fit_example.csv")
    log = log.drop_duplicates(["customer_id", "date"])
    hold = log[(log["date"] > "2025-06-30") & (log["date"] <= "2025-12-30")]
    assert doc["holdout"]["actual_repeat_transactions"] == len(hold)  # everyone's first purchase is on day 0
    assert doc["holdout"]["predicted_repeat_transactions"] > 0


def test_scenario_carries_the_fit_and_runs(example, tmp_path) -> None:
    text = (example / "scenario.yaml").read_text()
    doc = json.loads((example / "fit.json").read_text())
    assert doc["data"]["sha256"] in text and "2025-06-30" in text and "log-likelihood" in text and "se " in text
    assert "count as one transaction" in text
    not_fitted = ("margin:", "staff:", "fixed_cost_per_year:", "marketing:", "spend_per_year:", "days:",
                  "reward_sensitivity:", "satisfaction:", "referral_propensity:", "category_concentration:",
                  "policies:")
    checked = 0
    for line in text.splitlines():
        if not line.lstrip().startswith("#") and any(k in line for k in not_fitted):
            assert "DEFAULT: review" in line, line
            checked += 1
    assert checked >= 3 + 7 + 2 * 4  # three categories' margins, seven store lines, four per segment
    ls = load_scenario(example / "scenario.yaml")
    segs = ls.scenario.population.segments
    assert set(segs) == {"regulars", "occasionals"}
    reg = doc["segments"]["regulars"]
    purchases = segs["regulars"].purchases
    assert purchases.r == pytest.approx(reg["models"][reg["chosen"]]["params"]["r"], rel=1e-5)
    assert ls.scenario.population.customers == 2000
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "lab", "run", str(example / "scenario.yaml"), "--policy", "none",
                           "--customers", "300", "--days", "60", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "summary.json").is_file()


def test_report_is_self_contained(example) -> None:
    page = (example / "fit.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "http://" not in page and "https://" not in page
    assert "count as one" in page and "95% interval" in page


def test_output_says_same_day_purchases_merge(tmp_path, capsys) -> None:
    _run([str(DATA / "fit_example.csv"), "--model", "bgnbd", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "several purchases by one customer on one day count as one transaction" in out
    assert set(json.loads((tmp_path / "fit.json").read_text())["models"]) == {"bgnbd"}


def test_bad_input_is_a_lab_error(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,date,amount\n1,2024-01-01,ten\n")
    with pytest.raises(LabError, match=r"bad\.csv:2:3: cannot read 'ten'"):
        _run([str(bad), "--out", str(tmp_path / "o")])


def test_pareto_store_run_by_the_lab_is_fitted_back(small_scenario, classroom, tmp_path) -> None:
    truth = dict(r=0.9, alpha=6.0, s=0.8, beta=30.0)
    seg = Segment(share=1.0, purchases=ParetoNBD(**truth, time_unit="weeks"),
                  spend=GammaGamma(p=6.25, q=3.74, gamma=15.44), referral_propensity=0.0)
    sc = small_scenario(population__customers=3000, population__segments={"p": seg}, days=546,
                        behaviour__enabled=False, store__marketing__budget_per_year=0.0,
                        store__seasonality=0.0, market__competitor_pull=0.0)
    res = run_policy(sc, classroom.policies["none"], 1987, transactions=True)
    assert res.transactions is not None
    log = tmp_path / "pareto.parquet"
    res.transactions[["customer_id", "time", "amount", "category"]].to_parquet(log)
    out = tmp_path / "out"
    assert _run([str(log), "--model", "paretonbd", "--until", "545", "--out", str(out)]) == 0
    doc = json.loads((out / "fit.json").read_text())
    m = doc["models"]["paretonbd"]
    assert m["converged"]
    _within(m["params"], m["se"], truth)
    assert load_scenario(out / "scenario.yaml").scenario.population.segments["fitted"].purchases.tag == "paretonbd"


def test_log_without_category_in_days_gives_a_runnable_scenario(tmp_path) -> None:
    import pandas as pd
    log = pd.read_csv(DATA / "fit_example.csv")[["customer_id", "date", "amount"]]
    log = log.rename(columns={"customer_id": "client", "date": "purchased_on", "amount": "total"})
    log["total"] = log["total"].map(lambda v: f"${v:,.2f}")
    path = tmp_path / "plain.csv"
    log.to_csv(path, index=False)
    out = tmp_path / "out"
    assert _run([str(path), "--customer", "client", "--time", "purchased_on", "--amount", "total",
                 "--time-unit", "days", "--model", "bgnbd", "--out", str(out)]) == 0
    doc = json.loads((out / "fit.json").read_text())
    assert doc["data"]["time_unit"] == "days" and doc["holdout"]["actual_repeat_transactions"] is None
    sc = load_scenario(out / "scenario.yaml").scenario
    assert list(sc.store.categories) == ["all"]
    fitted = sc.population.segments["fitted"].purchases
    assert fitted.time_unit == "days" and fitted.alpha == pytest.approx(doc["models"]["bgnbd"]["params"]["alpha"],
                                                                        rel=1e-5)
    # the time unit only rescales alpha (and its standard error) by 7
    assert _run([str(path), "--customer", "client", "--time", "purchased_on", "--amount", "total",
                 "--model", "bgnbd", "--out", str(tmp_path / "weeks")]) == 0
    wk = json.loads((tmp_path / "weeks" / "fit.json").read_text())["models"]["bgnbd"]
    dy = doc["models"]["bgnbd"]
    for k in ("r", "a", "b"):
        assert dy["params"][k] == pytest.approx(wk["params"][k], rel=1e-4)
    assert dy["params"]["alpha"] == pytest.approx(7 * wk["params"]["alpha"], rel=1e-4)
    assert dy["se"]["alpha"] == pytest.approx(7 * wk["se"]["alpha"], rel=1e-2)


def test_header_only_log_is_an_error(tmp_path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("customer_id,date,amount\n")
    with pytest.raises(LabError, match=r"empty\.csv:1:1: the transaction log has a header but no rows"):
        _run([str(path), "--out", str(tmp_path / "o")])


def test_segment_column_is_used_only_when_named(tmp_path) -> None:
    assert _run([str(DATA / "fit_example.csv"), "--model", "bgnbd", "--out", str(tmp_path)]) == 0
    assert "segments" not in json.loads((tmp_path / "fit.json").read_text())
    assert list(load_scenario(tmp_path / "scenario.yaml").scenario.population.segments) == ["fitted"]


def test_a_log_without_repeat_purchases_is_told_what_would_help(tmp_path) -> None:
    """A later --until helps only when the log goes on past the calibration's end."""
    once = tmp_path / "once.csv"
    once.write_text("customer_id,date,amount\n" + "".join(f"{i},2024-01-01,10\n" for i in range(20)))
    with pytest.raises(LabError) as info:
        _run([str(once), "--until", "2030-01-01", "--out", str(tmp_path / "o")])
    said = str(info.value)
    assert "each bought on one day only, up to the log's last date, 2024-01-01" in said
    assert "give a log covering a longer period" in said and "--until" not in said
    later = tmp_path / "later.csv"
    later.write_text(once.read_text() + "".join(f"{i},2024-03-01,10\n" for i in range(20)))
    with pytest.raises(LabError) as info:
        _run([str(later), "--until", "2024-02-01", "--out", str(tmp_path / "o2")])
    assert "in the calibration period (to 2024-02-01)" in str(info.value)
    assert "give a later --until (the log runs to 2024-03-01)" in str(info.value)
