"""The shipped scenarios: they load and run under every policy they list, the 80/20 rule emerges
from gamma mixing, and docs/OUTPUTS.md documents every outcome and every column the lab writes."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.experiment.compare import CompareOptions, compare, write_comparison
from lab.experiment.run import run_policy, write_run
from lab.metrics.outcomes import OUTCOMES
from lab.scenario.loader import load_scenario
from tests.conftest import day0, day0_loaded

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))  # not scenarios/batches/
OUTPUTS_MD = ROOT / "docs" / "OUTPUTS.md"
SCHEMA_LINE = "# yaml-language-server: $schema=../docs/scenario.schema.json"
SHIPPED_POLICIES = {p.stem for p in (ROOT / "policies").glob("*.yaml")}
APPAREL = ROOT / "scenarios" / "apparel.yaml"


def _cases() -> list[tuple[Path, str]]:
    """Every shipped scenario under every shipped policy, listed in it or not."""
    return [(path, name) for path in SCENARIOS for name in sorted(SHIPPED_POLICIES)]


def test_the_shipped_scenarios_are_there():
    assert {"apparel", "grocer", "cafe", "classroom"} <= {p.stem for p in SCENARIOS}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_file_names_its_schema_and_matches_it(path):
    text = path.read_text()
    assert text.splitlines()[0] == SCHEMA_LINE
    schema = json.loads((ROOT / "docs" / "scenario.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(text), schema)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_lists_only_shipped_policies_with_the_baseline(path):
    listed = yaml.safe_load(path.read_text())["policies"]
    assert "none" in listed
    assert set(listed) <= SHIPPED_POLICIES, set(listed) - SHIPPED_POLICIES
    assert len(listed) >= 2, "a scenario should compare at least one programme with the baseline"


@pytest.mark.parametrize("path,policy", _cases(), ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_scenario_runs_under_every_shipped_policy(path, policy):
    loaded = load_scenario(path, [policy])
    # the shipped warm-up (if any), then 120 days under the policy
    res = run_policy(loaded.scenario, loaded.policies[policy], loaded.scenario.seed, customers=300,
                     days=loaded.scenario.launch_day + 120)
    revenue = res.summary["revenue"]
    assert math.isfinite(revenue) and revenue > 0
    assert math.isfinite(res.summary["net_profit"])
    # every shipped store launches on a store in being, the classroom too (docs/MODEL.md, 16)
    assert res.launch_day == loaded.scenario.launch_day > 0
    assert (res.customers["purchases"] >= 1).all()  # every customer makes a first purchase on arrival


# --------------------------------------------------------------------------- the 80/20 rule
# Why the top-20% revenue share must land in [0.5, 0.9] for the apparel store under 'none':
# a customer's expected revenue is (purchase rate) x (mean basket), with rates lambda ~ Gamma(r)
# and basket scales p/nu, nu ~ Gamma(q). The top-20% share of a Gamma(k) quantity is
# 1 - P(Gamma(k+1) <= F_k^-1(0.8)): 0.46 for the regulars' k = 1.5, 0.65 for the bargain
# hunters' 0.5, 0.80 for CDNOW's 0.243; mixing the three segments (whose mean rates differ by a
# factor of five) gives about 0.76 for expected yearly revenue. Realised revenue adds Poisson
# and per-basket noise and dropout (more concentration) and a first purchase for everyone (less).
# Without any mixing -- everyone with the same rate and basket scale -- the share would be about
# 0.32, so a share above 0.5 shows the heterogeneity at work; above 0.9 would need shapes far
# below CDNOW's. The published 80/20 (text 000) sits inside.
LOW, HIGH = 0.5, 0.9


def _top20(seed: int, customers: int) -> float:
    loaded = load_scenario(APPAREL, ["none"])
    # the day-0 cohort over one year: the argument below is about a cohort's own customers
    sc = dataclasses.replace(loaded.scenario, launch_day=0,
                             population=dataclasses.replace(loaded.scenario.population, arrival_days=0))
    res = run_policy(sc, loaded.policies["none"], seed, customers=customers, days=365)
    return res.summary["top20_revenue_share"]


def test_the_80_20_rule_emerges_in_the_apparel_store():
    share = _top20(seed=20261123, customers=5000)
    assert LOW < share < HIGH, share


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_the_80_20_rule_holds_whatever_the_seed(seed):
    # 2000 customers: the sampling error of the share is about 0.01, far inside the bounds' slack
    assert LOW < _top20(seed=seed, customers=2000) < HIGH


# --------------------------------------------------------------------------- docs/OUTPUTS.md
def _documented() -> tuple[str, list[re.Pattern[str]]]:
    """The text of OUTPUTS.md and every `name` in backticks or "key" in the JSON contracts, as full-match patterns.

    A placeholder in angle brackets (`points_<ledger>`) matches any text."""
    text = OUTPUTS_MD.read_text()
    names = set(re.findall(r"`([A-Za-z0-9_.<>-]+)`", text)) | set(re.findall(r'"([A-Za-z0-9_<>-]+)":', text))
    # a bare placeholder ("<outcome>") would match anything: only names with literal text count
    names = {n for n in names if re.sub(r"<[^>]+>", "", n)}
    patterns = [re.compile(re.sub(r"<[^>]+>", ".+", re.escape(n).replace(r"\<", "<").replace(r"\>", ">")))
                for n in names]
    return text, patterns


def _is_documented(name: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(p.fullmatch(name) for p in patterns)


def test_outputs_doc_defines_every_outcome_with_its_description():
    text, patterns = _documented()
    for name, (_unit, _better, description) in OUTCOMES.items():
        assert f"`{name}`" in text, name
        assert description in text, f"OUTPUTS.md does not carry the definition of {name} from OUTCOMES"


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    """The files of small runs whose policies between them have points, tiers and a credit line."""
    out = tmp_path_factory.mktemp("runs")
    files: dict[str, list[Path]] = {}
    for policy in ("tiered_points", "credit"):
        loaded = load_scenario(ROOT / "scenarios" / "classroom.yaml", [policy])
        res = run_policy(day0(loaded.scenario), loaded.policies[policy], 7, customers=200, days=90, transactions=True)
        files[policy] = write_run(res, out / policy)
    return files


def test_outputs_doc_names_every_column_of_the_run_files(run_files):
    _, patterns = _documented()
    seen = set()
    for paths in run_files.values():
        names = {p.name for p in paths}
        assert {"summary.json", "timeseries.parquet", "customers.parquet", "transactions.parquet"} == names
        for p in paths:
            if p.suffix == ".parquet":
                seen |= set(pd.read_parquet(p).columns)
            else:
                data = json.loads(p.read_text())
                seen |= set(data) | set(data["outcomes"])
                for rule in data["rules"].values():
                    seen |= set(rule)
    # the dynamic columns are among them, so the patterns are exercised
    assert {"tier", "points_points", "credit_owed_store_card", "credit_written_off_store_card"} <= seen
    missing = sorted(c for c in seen if not _is_documented(c, patterns))
    assert not missing, f"columns or keys not in docs/OUTPUTS.md: {missing}"


def test_outputs_doc_names_every_column_of_the_compare_files(tmp_path):
    _, patterns = _documented()
    loaded = day0_loaded(load_scenario(ROOT / "scenarios" / "classroom.yaml"))  # 40 days: the day-0 cohort
    comp = compare(loaded, CompareOptions(replications=2, customers=100, days=40), progress=False)
    files = write_comparison(comp, tmp_path)
    seen = set()
    for path in files.values():
        if path.suffix == ".parquet":
            seen |= set(pd.read_parquet(path).columns)
    summary = json.loads(files["summary"].read_text())
    seen |= set(summary)
    for entry in summary["policies"].values():
        seen |= set(entry)
    seen |= set(json.loads(files["manifest"].read_text()))
    missing = sorted(c for c in seen if not _is_documented(c, patterns))
    assert not missing, f"columns or keys not in docs/OUTPUTS.md: {missing}"


def test_a_policy_path_outside_the_scenarios_folder_is_said_to_be_outside(tmp_path: Path) -> None:
    """The file exists, so 'not found' would mislead: the message says it is outside the scenario's folder and
    how to use it; a path inside the folder that does not exist is still not found."""
    from lab.errors import LabError, printable

    (tmp_path / "p.yaml").write_text((ROOT / "policies" / "points.yaml").read_text())
    folder = tmp_path / "store"
    folder.mkdir()
    text = (ROOT / "scenarios" / "classroom.yaml").read_text()
    for ref in ("../p.yaml", str(tmp_path / "p.yaml")):
        (folder / "s.yaml").write_text(text.replace("policies: [none, points, credit, performance]",
                                                    f"policies: [none, '{ref}']"))
        with pytest.raises(LabError) as info:
            load_scenario(folder / "s.yaml")
        assert [d.message for d in info.value.diagnostics] == [
            f"policy '{printable(ref)}' is outside the scenario's folder: a path in a scenario is relative to its "
            "folder and stays inside it; copy the file beside the scenario, or pass the path with --policy/--policies"]
    (folder / "s.yaml").write_text(text.replace("policies: [none, points, credit, performance]",
                                                "policies: [none, ./q.yaml]"))
    with pytest.raises(LabError) as info:
        load_scenario(folder / "s.yaml")
    assert info.value.diagnostics[0].message.startswith("policy './q.yaml' not found; a path in a scenario")
    (folder / "s.yaml").write_text(text.replace("policies: [none, points, credit, performance]",
                                                f"policies: [none, ./{'q' * 5000}.yaml]"))
    with pytest.raises(LabError) as info:  # (a name too long for the file system is no crash)
        load_scenario(folder / "s.yaml")
    assert "not found" in info.value.diagnostics[0].message


def test_an_unknown_policy_is_offered_the_policies_not_the_scenarios_beside_it() -> None:
    """The shipped scenarios' folder holds scenarios and batch specs: names a policy reference could not use."""
    from lab.errors import LabError

    with pytest.raises(LabError) as info:
        load_scenario(ROOT / "scenarios" / "classroom.yaml", ["bogus"])
    message = info.value.diagnostics[0].message
    offered = message.split("expected one of: ")[1].split(", ")
    assert {"none", "points", "credit", "performance"} <= set(offered)
    assert not {"apparel", "cafe", "classroom", "grocer"} & set(offered)
