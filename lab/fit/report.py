"""DIR/fit.html: a self-contained report of a fit, with the standard diagnostics of the literature.

Fitted parameters with approximate 95% intervals (symmetric in the log of the parameter, so they
stay positive: theta * exp(+-1.96 se / theta)); the tracking plot of cumulative and weekly repeat
transactions, actual against the model, through calibration and holdout; the conditional
expectation of holdout transactions by calibration frequency; the distributions of P(alive) and of
the expected spend over the next 52 weeks; and the revenue Lorenz curve of the data against one
draw of the fitted model (same customers, same observation lengths, seeded by the data's sha256).
Figures are PNGs drawn with matplotlib's Agg backend and embedded as base64.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lab.fit.holdout import tracking  # noqa: E402
from lab.fit.pipeline import BaseFit, FitResult  # noqa: E402
from lab.fit.predict import MODELS, conditional_expected, conditional_spend, p_alive  # noqa: E402
from lab.fit.simulate import purchases_sample, revenue_sample  # noqa: E402

__all__ = ["write_report", "lorenz", "expected_value", "CLV_WEEKS"]

#: Horizon of the expected-value distribution, in weeks.
CLV_WEEKS = 52


def lorenz(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Lorenz curve: cumulative share of customers (poorest first) against cumulative share of the total."""
    v = np.sort(np.asarray(values, dtype=float))
    total = v.sum()
    y = np.r_[0.0, np.cumsum(v) / total] if total > 0 else np.linspace(0, 1, v.size + 1)
    return np.linspace(0.0, 1.0, v.size + 1), y


def expected_value(g: BaseFit, unit_days: float) -> np.ndarray:
    """Each customer's expected spend over the next CLV_WEEKS weeks: E[transactions] x E[spend | history]."""
    c = g.customers
    t = CLV_WEEKS * 7.0 / unit_days
    n = conditional_expected(g.chosen, g.purchase.params, t, c["x"].to_numpy(), c["t_x"].to_numpy(), c["T"].to_numpy())
    sp = dict(g.spend.params)
    sp["q"] = max(sp["q"], 1.01)
    m = conditional_spend(sp, c["x"].to_numpy(), c["mean_repeat_spend"].to_numpy())
    return np.asarray(n * m, dtype=float)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _params_table(g: BaseFit) -> str:
    rows = []
    for f, names in [(g.models[m], MODELS[m]) for m in g.models] + [(g.spend, ("p", "q", "gamma"))]:
        label = {"bgnbd": "BG/NBD", "paretonbd": "Pareto/NBD", "gamma_gamma": "Gamma-Gamma"}[f.model]
        if f.model == g.chosen:
            label += " (chosen)"
        for k in names:
            se = f.se.get(k)
            iv = f.interval(k)
            rows.append(f"<tr><td>{label}</td><td>{k}</td><td>{f.params[k]:.4g}</td>"
                        f"<td>{'unknown' if se is None else f'{se:.3g}'}</td>"
                        f"<td>{'unknown' if iv is None else f'{iv[0]:.4g} to {iv[1]:.4g}'}</td>"
                        f"<td>{f.log_likelihood:,.2f}</td><td>{f.bic:,.1f}</td>"
                        f"<td>{'yes' if f.converged else 'NO'}</td></tr>")
            label = ""
    return ("<table><tr><th>model</th><th>parameter</th><th>estimate</th><th>se</th><th>95% interval</th>"
            "<th>log-likelihood</th><th>BIC</th><th>converged</th></tr>" + "".join(rows) + "</table>")


def _figures(res: FitResult) -> list[tuple[str, str, str]]:
    s = res.summary
    g = res.base
    out: list[tuple[str, str, str]] = []
    tr = tracking(s, g.chosen, g.purchase.params)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (a, m, title) in zip(axes, [("actual_cumulative", "model_cumulative", "cumulative repeat transactions"),
                                        ("actual", "model", "weekly repeat transactions")]):
        days = tr["day"].to_numpy() - s.start_day
        full = np.ones(days.size, dtype=bool) if a.endswith("cumulative") else np.diff(np.r_[-1, days]) == 7
        # a short last period is left off the weekly panel
        ax.plot(days[full], tr[a][full], label="actual", color="black")
        ax.plot(days[full], tr[m][full], label=f"{g.chosen} model", color="tab:blue", linestyle="--")
        ax.axvline(s.calibration_end_day - s.start_day, color="grey", linewidth=0.8)
        ax.set_xlabel(f"days since {s.day_label(s.start_day)} (line: end of calibration)")
        ax.set_title(title)
        ax.legend()
    out.append(("Tracking", _png(fig), "Repeat transactions of the whole base, actual against the model's expectation "
                "sum of E[X(d - first day)] over customers; right of the line is the holdout."))
    if g.holdout is not None:
        t = g.holdout.by_frequency
        fig, ax = plt.subplots(figsize=(6, 3.8))
        ax.plot(t["x"], t["actual_mean"], "o-", color="black", label="actual")
        ax.plot(t["x"], t["predicted_mean"], "s--", color="tab:blue", label=f"{g.chosen} E[X | x, t_x, T]")
        ax.set_xlabel("repeat transactions in calibration")
        ax.set_ylabel("mean transactions in holdout")
        ax.legend()
        out.append(("Conditional expectation", _png(fig),
                    f"Holdout transactions ({g.holdout.length:.4g} {s.time_unit}) by "
                    "calibration frequency, actual mean against the model's conditional expectation."))
    c = g.customers
    pa = p_alive(g.chosen, g.purchase.params, c["x"].to_numpy(), c["t_x"].to_numpy(), c["T"].to_numpy())
    ev = expected_value(g, s.unit_days)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].hist(np.asarray(pa), bins=40, color="tab:blue")
    axes[0].set_xlabel("P(alive) at the end of calibration")
    axes[0].set_ylabel("customers")
    axes[1].hist(ev, bins=50, color="tab:green")
    axes[1].set_xlabel(f"expected spend over the next {CLV_WEEKS} weeks ($, undiscounted, before costs)")
    out.append(("P(alive) and expected value", _png(fig), f"Mean P(alive) {float(np.mean(pa)):.3f}; mean expected "
                f"{CLV_WEEKS}-week spend ${float(np.mean(ev)):,.2f}, total ${float(np.sum(ev)):,.0f}."))
    rng = np.random.default_rng(int(s.sha256[:12], 16))
    x_sim = purchases_sample(g.chosen, g.purchase.params, c["T"].to_numpy(), rng)
    sp = dict(g.spend.params)
    sp["q"] = max(sp["q"], 1.01)
    rev_sim = revenue_sample(x_sim + 1, sp, rng)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for vals, lab, style in [(c["revenue"].to_numpy(), "data", "-"), (rev_sim, "fitted model", "--")]:
        lx, ly = lorenz(vals)
        top = 1.0 - float(np.interp(0.8, lx, ly))
        ax.plot(lx, ly, style, label=f"{lab} (top 20%: {top:.0%} of revenue)")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.6)
    ax.set_xlabel("share of customers (lowest revenue first)")
    ax.set_ylabel("share of calibration revenue")
    ax.legend()
    out.append(("Revenue Lorenz curve", _png(fig),
                "Calibration revenue per customer (all transactions, first included), "
                "the data against one draw of the fitted purchase and spend models for the same customers."))
    return out


def write_report(res: FitResult, out: Path) -> Path:
    """Write DIR/fit.html and return its path."""
    s = res.summary
    g = res.base
    warn = "".join(f"<li>{html.escape(str(w))}</li>" for w in res.warnings) or "<li>none</li>"
    hold = ""
    if g.holdout is not None:
        hold = (f"<p>Holdout ({s.day_label(s.calibration_end_day)} to {s.day_label(s.holdout_end_day)}): "
                f"{g.holdout.actual:,.0f} repeat transactions, predicted {g.holdout.predicted:,.1f} "
                f"({(g.holdout.predicted / g.holdout.actual - 1) * 100 if g.holdout.actual else float('nan'):+.1f}%)"
                ".</p>")
    segs = ""
    if res.segments:
        segs = "<h2>Segments</h2>" + "".join(f"<h3>{html.escape(n)} ({len(sg.customers):,} customers)</h3>"
                                             f"<p>{html.escape(sg.reason)}</p>"
                                             + _params_table(sg) for n, sg in res.segments.items())
    figs = "".join(f"<h2>{html.escape(t)}</h2>{_img(b, t)}<p>{html.escape(cap)}</p>" for t, b, cap in _figures(res))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lab fit: {html.escape(Path(s.file).name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Fit of {html.escape(Path(s.file).name)}</h1>
<p>sha256 <code>{s.sha256}</code>. Calibration {s.day_label(s.start_day)} to {s.day_label(s.calibration_end_day)}:
{len(s.customers):,} customers, {s.transactions:,} transactions. Several purchases by one customer on one day count as one
transaction ({s.merged_rows:,} of {s.rows:,} rows merged). Parameters are in {s.time_unit}.</p>
<p>Chosen purchase model: <b>{g.chosen}</b> ({html.escape(g.reason)}).</p>
{hold}
<h2>Parameters</h2>{_params_table(g)}
<p>Intervals: theta x exp(&plusmn;1.96 se/theta), from the inverse of the observed information.</p>
<h2>Warnings</h2><ul>{warn}</ul>
{figs}{segs}
</body></html>
"""  # noqa: E501 (a line of the page: breaking it would change fit.html)
    path = out / "fit.html"
    path.write_text(page, encoding="utf-8")
    return path
