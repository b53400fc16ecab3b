"""The fitted scenario: DIR/scenario.yaml, a scenario the lab runs, carrying the fitted parameters.

Segments carry the fitted purchase model (in the fit's time unit) and spend model, their share of
customers and their category mix; the store's categories carry the fitted mean price per row and
share of rows. Comments give the data's sha256, the period, the log-likelihoods and standard errors.
Everything a transaction log cannot tell (margins, staff, costs, the market, marketing, the
horizon, how customers respond to a programme) is the lab's default or a stated guess and is
marked ``DEFAULT: review`` on its line. The scenario starts every fitted customer on day 0 as a
new cohort unless its commented ``from_fit: .`` line is switched on; :func:`write_base` writes the
customers' histories that line launches on (DIR/customers.parquet, docs/FIT.md).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from lab.fit.pipeline import BaseFit, FitResult
from lab.fit.predict import MODELS
from lab.population.existing import BASE_FILE
from lab.scenario.model import MAX_DROPOUT_PER_DAY, MAX_MEAN_SPEND, MAX_PURCHASES_PER_DAY, TIME_UNIT_DAYS

__all__ = ["scenario_yaml", "write_scenario", "write_base", "REVIEW", "DEFAULT_MARGIN", "POLICIES"]

REVIEW = "DEFAULT: review"
#: Gross margin given to every category (a log of amounts has no costs).
DEFAULT_MARGIN = 0.5
#: The shipped policies the fitted scenario compares.
POLICIES = ("none", "points", "credit", "performance")
#: Smallest q written (the engine needs q > 1 for a finite mean spend).
MIN_Q = 1.01


def _g(v: float) -> str:
    return f"{v:.6g}"


#: Written values raised to a bound keep this margin above it, so that the 6 digits written still load.
_MARGIN = 1.001


def _within_bounds(model: str, params: dict[str, float], unit: str) -> tuple[dict[str, float], list[str]]:
    """The purchase parameters to write, raised where the fit breaks a bound of lab.scenario.model (the loader
    would refuse them), with a note for each change."""
    days = TIME_UNIT_DAYS[unit]
    out, notes = dict(params), []
    least = _MARGIN * max(out["r"], 1.0) / (MAX_PURCHASES_PER_DAY * days)  # r / alpha and 1 / alpha at most the bound
    if out["alpha"] < least:
        notes.append(f"fitted alpha = {_g(params['alpha'])} gives more than {MAX_PURCHASES_PER_DAY:g} purchases a day; "
                     f"raised to the bound: {REVIEW}")
        out["alpha"] = least
    if model == "paretonbd" and out["beta"] < (least_b := _MARGIN * out["s"] / (MAX_DROPOUT_PER_DAY * days)):
        notes.append(f"fitted beta = {_g(params['beta'])} gives more than {MAX_DROPOUT_PER_DAY:g} dropouts a day; "
                     f"raised to the bound: {REVIEW}")
        out["beta"] = least_b
    return out, notes


def _key(name: str) -> str:
    """A YAML mapping key: plain when safe, else a JSON (hence YAML) quoted string."""
    ok = (name and name.replace("_", "a").isalnum() and name[0].isalpha()
          and name.lower() not in ("yes", "no", "true", "false", "null", "on", "off"))
    return name if ok else json.dumps(name)


def _se_text(f, names) -> str:
    parts = []
    for k in names:
        se = f.se.get(k)
        parts.append(f"{k} = {_g(f.params[k])} (se {_g(se) if se is not None else 'unknown'})")
    return ", ".join(parts)


def _segment_lines(name: str, g: BaseFit, share: float, unit: str, categories: list[str]) -> list[str]:
    pf = g.purchase
    names = MODELS[g.chosen]
    lines = [f"    {_key(name)}:",
             f"      share: {_g(share)}                # fitted: share of the customers ({len(g.customers):,})",
             f"      # {g.chosen}: {_se_text(pf, names)}; log-likelihood {pf.log_likelihood:,.2f}, BIC {pf.bic:,.1f};",
             f"      # chosen because {g.reason}" if len(g.models) > 1 else f"      # {g.reason}"]
    for m, f in g.models.items():
        if m != g.chosen:
            lines.append(f"      # not chosen: {m}: {_se_text(f, MODELS[m])}; log-likelihood {f.log_likelihood:,.2f}")
    written, notes = _within_bounds(g.chosen, {k: float(pf.params[k]) for k in names}, unit)
    lines += [f"      # {n}" for n in notes]
    params = ", ".join(f"{k}: {_g(written[k])}" for k in names)
    lines.append(f"      purchases: {{{g.chosen}: {{{params}, time_unit: {unit}}}}}")
    sp = g.spend
    lines.append(f"      # Gamma-Gamma spend per transaction ({g.spend_customers:,} customers with repeat "
                 "transactions): "
                 f"{_se_text(sp, ('p', 'q', 'gamma'))}; log-likelihood {sp.log_likelihood:,.2f}")
    q = sp.params["q"]
    qv = q if q > MIN_Q else MIN_Q
    least_q = 1.0 + _MARGIN * sp.params["p"] * sp.params["gamma"] / MAX_MEAN_SPEND  # mean spend at most the bound
    note = "" if q > MIN_Q else f"   # fitted q = {_g(q)} is too close to or below 1 (infinite mean spend): {REVIEW}"
    if qv < least_q:
        qv = least_q
        note = (f"   # fitted q = {_g(q)} gives a mean spend above {MAX_MEAN_SPEND:g} dollars; "
                f"raised to the bound: {REVIEW}")
    lines.append(f"      spend: {{p: {_g(sp.params['p'])}, q: {_g(qv)}, gamma: {_g(sp.params['gamma'])}}}" + note)
    if categories:
        counts = [float(g.customers[f"n_{c}"].sum()) for c in categories]
        total = sum(counts) or 1.0
        mix = ", ".join(f"{_key(c)}: {_g(max(n / total, 1e-6))}" for c, n in zip(categories, counts))
        lines.append(f"      categories: {{{mix}}}   # fitted: this segment's share of rows in each category")
        lines.append(f"      category_concentration: 2.0   # {REVIEW} (how much customers differ in their mix)")
    lines += [f"      reward_sensitivity: 1.0   # {REVIEW}",
              f"      referral_propensity: 0.0  # {REVIEW} (0: no referrals, as in the data's closed cohort)",
              f"      satisfaction: 0.7         # {REVIEW}"]
    return lines


def scenario_yaml(res: FitResult, name: str) -> str:
    """The text of the fitted scenario."""
    s = res.summary
    unit = s.time_unit
    start, end, hend = s.day_label(s.start_day), s.day_label(s.calibration_end_day), s.day_label(s.holdout_end_day)
    n = len(s.customers)
    cats = list(s.categories["category"]) if len(s.categories) else []
    years = max((s.calibration_end_day - s.start_day + 1) / 365.25, 1.0 / 365.25)
    revenue_per_year = float(s.customers["revenue"].sum()) / years
    lines = [
        f"# Fitted by `lab fit` from {Path(s.file).name}",
        f"#   data sha256: {s.sha256}",
        f"#   calibration: {start} to {end}" + (f"; holdout to {hend}" if hend else "; no holdout"),
        f"#   {n:,} customers, {s.transactions:,} transactions in calibration ({s.rows:,} rows read; several purchases",
        f"#   by one customer on one day count as one transaction: {s.merged_rows:,} rows merged)",
        f"#   time unit of the purchase parameters: {unit}",
    ]
    if res.base.holdout is not None:
        h = res.base.holdout
        lines.append(f"#   holdout repeat transactions: actual {h.actual:,.0f}, predicted {h.predicted:,.1f}")
    lines += [
        f"# Every value marked '{REVIEW}' was not fitted: it is the lab's default or a stated guess.",
        "# A transaction log says nothing about margins, costs, staff, the market or how customers respond",
        "# to a programme; set those for your store before trusting profits. Every fitted customer starts",
        "# on day 0 as a new cohort here, unless population.from_fit is set (below).",
        f"name: {_key(name)}",
        f"description: {json.dumps('Fitted to ' + Path(s.file).name + ' (' + str(start) + ' to ' + str(end) + ')')}",
        f"days: 365                         # {REVIEW}: the horizon to simulate",
        f"period_days: 7                   # {REVIEW}: days per period of the time series",
        f"policies: [{', '.join(POLICIES)}]   # {REVIEW}: the shipped policies to compare",
        "store:",
        "  categories:                     # price: fitted mean amount per row; share: fitted share of rows",
    ]
    if cats:
        for _, row in s.categories.iterrows():
            price = max(float(row["mean_price"]), 0.01)
            lines.append(f"    {_key(str(row['category']))}: {{price: {_g(price)}, margin: {DEFAULT_MARGIN}, "
                         f"share: {_g(max(float(row['share']), 1e-6))}}}"
                         f"   # margin {REVIEW}")
    else:
        sp = res.base.spend.params
        mean = sp["p"] * sp["gamma"] / (sp["q"] - 1.0) if sp["q"] > 1 else float(s.customers["first_amount"].mean())
        lines.append(f"    all: {{price: {_g(max(mean, 0.01))}, margin: {DEFAULT_MARGIN}, share: 1}}   "
                     f"# no category column: one category at the fitted mean spend; margin {REVIEW}")
    staff = max(1, math.ceil(n / 365.0 / 20.0))
    lines += [
        f"  staff: {{count: {staff}, wage_per_year: 30000, contacts_per_day: 20}}   # {REVIEW} "
        "(enough for one contact per customer a year)",
        f"  fixed_cost_per_year: 0          # {REVIEW}",
        f"  marketing: {{budget_per_year: 0}}   # {REVIEW} (0: no new customers, like the fitted cohort)",
        "market:",
        f"  spend_per_year: {_g(max(revenue_per_year * 20.0, 1.0))}   # {REVIEW}: "
        "20 x the log's revenue per year (a 5% share)",
        "population:",
        f"  customers: {n}                   # fitted: the customers in the calibration period",
        "  # from_fit: .                   # uncomment to launch on these very customers at the calibration end, "
        "each drawn",
        "                                  # from their own posterior given their history "
        "(docs/FIT.md, 'Launch on your customers')",
        "  segments:",
    ]
    groups = res.segments or {"fitted": res.base}
    for seg_name, g in groups.items():
        lines += _segment_lines(seg_name, g, len(g.customers) / n, unit, cats)
    return "\n".join(lines) + "\n"


def write_base(res: FitResult, out: Path) -> Path:
    """Write DIR/customers.parquet, the fitted customers' histories, for `population.from_fit` (docs/FIT.md):
    customer, first_day, x, t_x, T (in the fit's time unit), first_amount, revenue, mean_repeat_spend,
    x_holdout, segment (with --segment) and n_<category> counts."""
    path = out / BASE_FILE
    frame = res.summary.customers.copy()
    frame["customer"] = frame["customer"].astype(str)
    frame.to_parquet(path, index=False)
    return path


def write_scenario(res: FitResult, out: Path, name: str) -> Path:
    """Write DIR/scenario.yaml and return its path."""
    path = out / "scenario.yaml"
    path.write_text(scenario_yaml(res, name), encoding="utf-8")
    return path
