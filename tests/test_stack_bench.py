"""benchmarks/bench_engine.py --stack runs end to end on a tiny problem: K runs alone against one stack of K."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CLASSROOM, CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]


def test_the_stack_benchmark_compares_runs_alone_with_one_stack() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--stack", "3",
                           "--stack-sizes", "200", "--days", "20", "--repeats", "1",
                           "--scenario", str(CLASSROOM_DAY0)],  # a day-0 cohort: 20 days end before the launch
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    rows = dict(re.findall(r"^\| (alone x3|stacked x3) \| 200 \| [\d.]+ \| [\d.]+ \| ([\d,]+) \|", out, re.M))
    assert set(rows) == {"alone x3", "stacked x3"}
    assert rows["alone x3"] == rows["stacked x3"]  # the same purchases: each world is its run alone
    assert int(rows["alone x3"].replace(",", "")) > 3 * 200  # every customer buys at least once
    assert re.search(r"200 customers: the stack of 3 takes [\d.]+ s against [\d.]+ s alone, [\d.]+x", out)
    assert "a bug" not in out


def test_the_stack_shape_benchmark_prints_a_row_per_shape() -> None:
    """benchmarks/bench_stacks.py times policy_runs per shape (policies x worlds) and says so in a table."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_stacks.py"), str(CLASSROOM_DAY0),
                           "--shape", "none:2", "--shape", "none,points:1", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^\| ([a-z,]+) \| (\d+) \| (\d+) \| ([\d.]+) \|", done.stdout, re.M)
    assert [r[:3] for r in rows] == [("none", "2", "2"), ("none,points", "1", "2")]
    assert all(float(r[3]) > 0 for r in rows)
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_stacks.py"), str(CLASSROOM_DAY0),
                          "--shape", "none"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "expected POLICIES:WORLDS" in bad.stderr


def test_the_stack_shape_benchmark_counts_the_shared_warm_up_once(tmp_path: Path) -> None:
    """The purchases of a shape of two policies are the first's every day and the second's from the launch (the
    days before it simulated once, for both), as their runs alone have them; the time per purchase is the median
    over them; with one policy, the candidates a purchase are the run's candidate counters over its purchases."""
    from lab.engine.options import RunOptions
    from lab.engine.simulate import Simulation
    from lab.scenario.loader import load_scenario

    text = CLASSROOM.read_text()
    for key, value in (("days", 60), ("launch_day", 30), ("  customers", 300), ("  arrival_days", 30)):
        text, n = re.subn(rf"^{key}: *\d+", f"{key}: {value}", text, count=1, flags=re.M)
        assert n == 1, key
    store = tmp_path / "launched.yaml"
    store.write_text(text)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_stacks.py"), str(store),
                           "--shape", "none,points:1", "--shape", "points:1", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = {m[0]: [c.strip() for c in m[1].split("|")]
            for m in re.findall(r"^\| (none,points|points) \| 1 \| (.*) \|$", done.stdout, re.M)}
    assert set(rows) == {"none,points", "points"}, done.stdout
    loaded = load_scenario(store, policies=["none", "points"])
    sc = loaded.scenario
    alone = {p: Simulation(sc, loaded.policies[p], RunOptions(seed=sc.seed, address=(0,))).run()
             for p in ("none", "points")}
    bought = {p: r.daily["purchases"] for p, r in alone.items()}
    assert int(bought["points"][:sc.launch_day].sum()) > 0  # (a warm-up with purchases, or the test shows nothing)
    for shape, wanted in (("none,points", int(bought["none"].sum()) + int(bought["points"][sc.launch_day:].sum())),
                          ("points", int(bought["points"].sum()))):
        _, seconds, _, _, _, purchases, per, cand = rows[shape]
        assert int(purchases.replace(",", "")) == wanted
        # both printed rounded: the seconds to 0.0005, the microseconds to 0.005
        assert float(per) == pytest.approx(float(seconds) / wanted * 1e6, abs=0.0005 / wanted * 1e6 + 0.005)
    assert rows["none,points"][-1] == "-"
    bound = Simulation(sc, loaded.policies["none"], RunOptions(seed=sc.seed, address=(0,))).m_bound
    assert f"thinning bound M = {bound:.2f}" in done.stdout and bound > 1
    drawn = int(alone["points"].customers.cand_n.sum())
    assert drawn > int(bought["points"].sum())  # (some candidates are thinned away)
    assert float(rows["points"][-1]) == pytest.approx(drawn / int(bought["points"].sum()), abs=0.005)
