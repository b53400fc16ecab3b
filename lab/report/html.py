"""The comparison report: one self-contained HTML page a strategist can forward, plus every figure as PNG.

The page opens offline (figures embedded as base64 PNG, CSS inline, no external resources) and
reads top-down: what was run, the verdict in plain words, the numbers, the pictures with what to
look for, then how the numbers were made and how to reproduce them. Every piece of text that came
from a user's file (scenario and policy names, descriptions, paths) is escaped.
"""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from lab.experiment.manifest import file_hash, versions
from lab.metrics.outcomes import REGISTRY
from lab.report.selection import selection_html
from lab.report.drawing import FigureDrawing
from lab.report.figures import FIGURES, FigureSpec, policy_colours
from lab.scenario.scale import size_note
from lab.report.text import (
    LEVEL_WORDS,
    fmt_bounds,
    fmt_seconds,
    fmt_value,
    interval_decimals,
    is_good,
    outcome_name,
    replication_count,
    span_words,
    unit_label,
    verdict_sentences,
)

if TYPE_CHECKING:
    from lab.experiment.compare import Comparison

_CSS = """
:root { --ink: #1d1d1f; --muted: #5a5a5f; --rule: #d8d8dc; --good: #0b6b3a; --good-bg: #e3f4ea;
        --bad: #9b1c1c; --bad-bg: #fbe5e5; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--rule); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p.lede { font-size: 17px; color: var(--muted); margin: 0 0 14px; }
ul.facts { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 6px 22px;
           color: var(--muted); }
ul.facts b { color: var(--ink); }
section.verdict { background: #f4f8fc; border-left: 5px solid var(--accent); padding: 6px 20px 10px; margin-top: 22px; }
section.verdict h2 { border: 0; margin-top: 10px; }
section.verdict li { margin: 6px 0; font-size: 16px; }
table { border-collapse: collapse; margin: 8px 0 6px; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--rule); padding: 5px 10px; text-align: right; vertical-align: top; }
th { background: #f6f6f8; font-weight: 600; }
th.name, td.name { text-align: left; }
td.name small, td small { color: var(--muted); display: block; font-size: 11.5px; max-width: 330px;
                         white-space: normal; }
td:not(.name) { white-space: nowrap; }
td.sig { font-weight: 700; }
td.good { background: var(--good-bg); color: var(--good); }
td.bad { background: var(--bad-bg); color: var(--bad); }
td.na { color: var(--muted); }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px;
          vertical-align: -1px; }
.wide { overflow-x: auto; }
p.note { color: var(--muted); font-size: 13px; margin: 4px 0 14px; }
figure { margin: 26px 0; page-break-inside: avoid; break-inside: avoid; }
figure img { width: 100%; height: auto; border: 1px solid var(--rule); }
figcaption { font-size: 14px; margin-top: 6px; }
p.skipped { color: var(--muted); font-style: italic; }
code { font: 12.5px/1.4 ui-monospace, Menlo, Consolas, monospace; background: #f3f3f5; padding: 1px 4px; }
td code { word-break: break-all; }
.method li { margin: 6px 0; }
@media print { main { padding: 0; max-width: none; } section.verdict { background: none; }
               h2 { page-break-after: avoid; }
               td.good, td.bad { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{escape(colour)}"></span>'


def _head(comp: Comparison) -> str:
    sc = comp.loaded.scenario
    n = replication_count(comp)
    opts = comp.options
    facts = [
        ("replications", f"{n:,}" + (f" (sequential, target ±{opts.precision:.0%})" if opts.precision else "")),
        ("customers", f"{comp.customers:,} at the start"),
        ("days", f"{comp.days:,} (periods of {sc.period_days} days)"),
        ("policies", f"{len(comp.policies)}"),
        ("seed", f"{comp.seed}"),
        ("run time", fmt_seconds(comp.seconds)),
    ]
    items = "".join(f"<li>{escape(k)}: <b>{escape(v)}</b></li>" for k, v in facts)
    desc = f'<p class="lede">{escape(sc.description)}</p>' if sc.description else ""
    size = size_note(sc, comp.options.customers)
    warn = f'<p class="note size"><b>Size.</b> {escape(size)}</p>' if size else ""
    return (f"<h1>Loyalty Lab: {escape(sc.name)}</h1>\n{desc}\n<ul class=\"facts\">{items}</ul>{warn}")


def _verdict(comp: Comparison) -> str:
    items = "".join(f"<li>{escape(s)}</li>" for s in verdict_sentences(comp))
    n = replication_count(comp)
    note = ("" if n >= 2 else
            "<p class=\"note\">Only one replication was run, so no interval can be given; run at least two.</p>")
    return f'<section class="verdict" id="verdict"><h2>Verdict</h2><ul>{items}</ul>{note}</section>'


def _how_sure(comp: Comparison, out_dir: Path, drawing: FigureDrawing) -> str:
    """The robust study's section (summary.json's ``robustness``): each verdict across plausible worlds, where it
    reverses (the PRIM box), the numbers behind them as the terminal prints them, and its figures
    (lab.report.robust_figures, numbered first)."""
    section = comp.robustness
    if section is None:
        return ""
    from lab.report.robust import format_robust
    from lab.report.robust_figures import ROBUST_FIGURES

    items = []
    for name, v in section["verdict"].items():
        mark = "robust" if v.get("robust") else "fragile"
        found = section.get("discovery", {}).get(name)
        where = (f"<br><small>Where it reverses: {escape(found['text'])}.</small>"
                 if found is not None and found.get("reversals") else "")
        items.append(f"<li><b>{escape(outcome_name(name).capitalize())} ({mark}).</b> {escape(v['text'])}.{where}"
                     "</li>")
    figures, number = [], 0
    for spec in ROBUST_FIGURES:
        figures.append(_figure(comp, spec, out_dir, number + 1, drawing))
        if not spec.applies or spec.applies(comp):
            number += 1
    return (f'<section class="verdict" id="how-sure"><h2>How sure?</h2><ul>{"".join(items)}</ul>'
            f'<pre class="note">{escape(format_robust(section, ("net_profit", "retention_12m", "revenue")))}</pre>'
            + "\n".join(figures) + "</section>")


def _robust_figure_count(comp: Comparison) -> int:
    """How many figures the How sure? section numbers (the report's other figures are numbered after them)."""
    if comp.robustness is None:
        return 0
    from lab.report.robust_figures import ROBUST_FIGURES

    return sum(1 for spec in ROBUST_FIGURES if not spec.applies or spec.applies(comp))


def _policies(comp: Comparison) -> str:
    colours = policy_colours(comp)
    rows = []
    for p in comp.policies:
        pol = comp.loaded.policies[p].policy
        role = " (baseline)" if p == comp.baseline else ""
        rows.append(f'<tr><td class="name">{_swatch(colours[p])}<b>{escape(p)}</b>{escape(role)}</td>'
                    f'<td class="name">{escape(pol.description) or "&nbsp;"}</td></tr>')
    return ('<h2 id="policies">The policies</h2><table><tr><th class="name">policy</th>'
            f'<th class="name">what it does</th></tr>{"".join(rows)}</table>')


def _outcome_head(comp: Comparison, policies: list[str]) -> str:
    colours = policy_colours(comp)
    cells = "".join(f"<th>{_swatch(colours[p])}{escape(p)}</th>" for p in policies)
    return f'<tr><th class="name">outcome</th>{cells}</tr>'


def _outcome_label(o: str) -> str:
    unit, hib, desc = REGISTRY[o].unit, REGISTRY[o].higher_is_better, REGISTRY[o].description
    direction = " · higher is better" if hib is True else " · lower is better" if hib is False else ""
    return (f'<td class="name"><b>{escape(outcome_name(o))}</b> ({escape(unit_label(unit))})'
            f"<small>{escape(desc)}{escape(direction)}</small></td>")


def _tables(comp: Comparison) -> str:
    n = replication_count(comp)
    base = comp.baseline
    rows = []
    for o in REGISTRY:
        unit = REGISTRY[o].unit
        cells = []
        for p in comp.policies:
            iv = comp.interval(p, o)
            if not math.isfinite(iv.mean):
                cells.append('<td class="na">n/a</td>')
                continue
            d = interval_decimals(iv, unit)
            mean = fmt_value(iv.mean, unit, decimals=d)
            hw = (f"± {fmt_value(iv.half_width, unit, difference=True, decimals=d)}"
                  if math.isfinite(iv.half_width) and iv.half_width > 0 else "")
            cells.append(f"<td>{escape(mean)}<small>{escape(hw) or '&nbsp;'}</small></td>")
        rows.append(f"<tr>{_outcome_label(o)}{''.join(cells)}</tr>")
    t1 = (f'<h2 id="outcomes">All outcomes</h2><p class="note">Mean over {n} replications ± the half-width of its '
          f"{LEVEL_WORDS} (Student t). Totals cover {span_words(comp)}; "
          f"n/a: not measurable in this run (e.g. no points, or a run shorter than a year).</p>"
          f'<div class="wide"><table>{_outcome_head(comp, comp.policies)}{"".join(rows)}</table></div>')
    others = [p for p in comp.policies if p != base]
    rows = []
    for o in REGISTRY:
        unit = REGISTRY[o].unit
        share = unit == "share"
        cells = []
        for p in others:
            diff = comp.difference(p, o)
            if not math.isfinite(diff.mean):
                cells.append('<td class="na">n/a</td>')
                continue
            if diff.mean == 0 and diff.half_width == 0:
                cells.append('<td class="na">0<small>same in every replication</small></td>')
                continue
            text = fmt_value(diff.mean, unit, signed=True, difference=share,
                             decimals=None if not math.isfinite(diff.half_width) else interval_decimals(diff, unit))
            bounds = fmt_bounds(diff, unit, difference=share)
            cls = []
            if diff.excludes_zero:
                cls.append("sig")
                good = is_good(o, diff.mean)
                cls.append("good" if good is True else "bad" if good is False else "")
            klass = f' class="{" ".join(c for c in cls if c)}"' if cls else ""
            mark = " *" if diff.excludes_zero else ""
            cells.append(f"<td{klass}>{escape(text)}{mark}<small>{escape(bounds)}</small></td>")
        rows.append(f"<tr>{_outcome_label(o)}{''.join(cells)}</tr>")
    econ = _economics(comp, others)
    t2 = (f'<h3 id="differences">Differences vs {escape(base)}, paired by replication</h3>'
          f'<p class="note">Each cell: mean paired difference (policy − {escape(base)}) '
          f'and below it its {LEVEL_WORDS}. '
          "<b>Bold with *</b>: the interval excludes zero (a clear difference); "
          '<span style="color:var(--good)">green</span> = better for the retailer, '
          '<span style="color:var(--bad)">red</span> = worse, bold black = a clear change in an outcome with no good '
          "direction. Shares are in percentage points (pp).</p>"
          f'<div class="wide"><table>{_outcome_head(comp, others)}{"".join(rows)}</table></div>')
    return t1 + t2 + econ


def _economics(comp: Comparison, others: list[str]) -> str:
    if not others:
        return ""
    roi_cells, share_cells = [], []
    reasons: list[str] = []
    for p in others:
        roi = comp.programme_return(p)
        roi_cells.append(f"<td>{escape(fmt_value(roi.mean, '$', signed=True, decimals=2))}"
                         f"<small>{escape(fmt_bounds(roi, '$'))}</small></td>" if math.isfinite(roi.mean)
                         else '<td class="na">n/a</td>')
        verdict = comp.flywheel_share_verdict(p)
        share = verdict.interval
        if share is None or not math.isfinite(share.mean):
            why = verdict.reason or "the share is not finite"
            reasons.append(f"{p}: {why}")
            share_cells.append(f'<td class="na" title="{escape(why)}">not meaningful<small>see below</small></td>')
        else:
            b = (f"{share.ci_low:.0%} to {share.ci_high:.0%}" if math.isfinite(share.half_width) else "n/a")
            share_cells.append(f"<td>{share.mean:.0%}<small>{escape(b)}</small></td>")
    return (f'<h3 id="economics">The programme\'s economics</h3><p class="note">Return: the paired gain in net profit '
            f"per $1 of programme cost (discounts, free items and trials, offers, running costs), per replication. "
            f"Flywheel share: the part of the net-profit effect that travels round the loop (see the method notes); "
            "it is shown only when the effect itself is clearly different from zero. "
            f"Below each value: its {LEVEL_WORDS}.</p>"
            f'<div class="wide"><table>{_outcome_head(comp, others)}'
            '<tr><td class="name"><b>return on the programme</b> ($ net profit per $1 cost)</td>'
            f'{"".join(roi_cells)}</tr>'
            f'<tr><td class="name"><b>flywheel share</b> of the net-profit effect</td>{"".join(share_cells)}</tr>'
            "</table></div>"
            + ("".join(f'<p class="note">Flywheel share not meaningful for {escape(r)}.</p>' for r in reasons)))


def _figures(comp: Comparison, out_dir: Path, drawing: FigureDrawing) -> str:
    parts = ['<h2 id="figures">Figures</h2><p class="note">Lines are means over replications; shaded bands are '
             f"pointwise {LEVEL_WORDS}s. Each policy keeps its colour throughout; the baseline is dark grey.</p>"]
    number = _robust_figure_count(comp)
    for spec in FIGURES:
        parts.append(_figure(comp, spec, out_dir, number + 1, drawing))
        if not spec.applies or spec.applies(comp):
            number += 1
    return "\n".join(parts)


def _figure(comp: Comparison, spec: FigureSpec, out_dir: Path, number: int, drawing: FigureDrawing) -> str:
    if spec.applies is not None and not spec.applies(comp):
        return f'<p class="skipped">{escape(spec.title)}: {escape(spec.skipped)}</p>'
    width, data = drawing.get(spec.name)
    detail = "" if spec.detail is None else " " + escape(spec.detail(comp))
    width_px = int(width * 100)  # natural size on screen; never wider than the page
    (out_dir / f"fig_{spec.name}.png").write_bytes(data)
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure id="fig-{escape(spec.name)}"><img alt="{escape(spec.title)}" '
            f'style="max-width:{width_px}px" src="data:image/png;base64,{b64}">'
            f'<figcaption><b>Figure {number}. {escape(spec.title)}.</b> '
            f"{escape(spec.caption)}{detail}</figcaption></figure>")


def _method(comp: Comparison) -> str:
    n = replication_count(comp)
    opts = comp.options
    seq = (f"<li><b>How many replications.</b> Replications were added in waves until every headline outcome's "
           f"95% interval was within ±{opts.precision:.0%} of its mean, up to {opts.max_replications} "
           "(Law &amp; Kelton's sequential procedure, sec. 9.4.1).</li>" if opts.precision else "")
    items = [
        f"<li><b>Replications and common random numbers.</b> Each policy was run {n} times. Replication <i>k</i> of "
        "every policy uses the same random streams (same customers, same shopping trips before the policy acts), so "
        "the difference between two policies in one replication is mostly the policy's doing, not chance.</li>",
        "<li><b>Intervals.</b> Every outcome is a mean over replications with a 95% Student-t confidence interval, "
        "mean ± t<sub>n−1, 0.975</sub>·s/√n. Differences against the baseline are paired replication by replication "
        "and get a paired-t interval, which needs no equal-variance assumption and is narrower than comparing two "
        "separate intervals (A. M. Law and W. D. Kelton, <i>Simulation Modeling and Analysis</i>, 3rd ed., 2000, "
        "sec. 4.5, 9.4 and 10.2.1). A difference is called clear when its interval excludes zero; with several "
        "policies and outcomes, some intervals will exclude zero by chance, so weigh a single marginal one "
        "lightly.</li>",
        seq,
        "<li><b>Bands in the figures</b> are the same 95% intervals computed period by period (pointwise, not "
        "simultaneous). The cumulative extra net profit is differenced within each replication before averaging.</li>",
        "<li><b>The flywheel share.</b> Every policy is also run with the flywheel cut (service quality frozen, so "
        "nothing travels round the loop). The share of a policy's effect on net profit that travels round the loop is "
        "<i>1 − effect with the loop cut / effect with the loop whole</i>, each effect measured against the baseline "
        "run the same way; its interval treats the whole effect as fixed, and it is meaningless when the whole effect "
        "is close to zero.</li>",
        "<li><b>Return on the programme</b> is (net profit − baseline net profit) / programme cost, computed per "
        "replication and then averaged with its interval.</li>",
        f"<li><b>Totals</b> cover {span_words(comp)}{_warm_up(comp)}; 12-month retention is "
        f"{_retention_words(comp)}.</li>",
    ]
    return f'<h2 id="method">Method notes</h2><ul class="method">{"".join(items)}</ul>'


def _warm_up(comp: Comparison) -> str:
    start = comp.measured_from
    if not start:
        return ""
    first = "the first day" if start == 1 else f"the first {start:,} days"
    return f" ({first}, before the launch, run under no programme, the same under every policy, and are left out)"


def _retention_words(comp: Comparison) -> str:
    if comp.launched:
        return ("the share of the customers present at the launch or acquired after it, at least 365 days before "
                "the end, who were still active 365 days after the later of the launch and their acquisition")
    return ("the share of customers acquired at least 365 days before the end who were still active 365 days after "
            "acquisition")


def _manifest(comp: Comparison) -> str:
    inputs = {"scenario": comp.loaded.path, **{f"policy {k}": v for k, v in comp.loaded.policy_files.items()}}
    rows = []
    for k, path in inputs.items():
        try:
            digest = file_hash(path)
        except OSError:
            digest = "file not found when the report was written"
        rows.append(f'<tr><td class="name">{escape(k)}</td><td class="name"><code>{escape(str(path))}</code></td>'
                    f'<td class="name"><code>{escape(digest)}</code></td></tr>')
    opts = comp.options
    sequential = ({"precision": f"±{opts.precision:.0%} (sequential)", "max replications": opts.max_replications}
                  if opts.precision else {"precision": "none asked (a fixed number of replications)"})
    settings = {
        "seed": comp.seed, "replications": replication_count(comp), **sequential,
        "customers": comp.customers, "days": comp.days,
        "jobs": opts.jobs, "flywheel split": opts.flywheel_split, "run time": fmt_seconds(comp.seconds),
    }
    srows = "".join(f'<tr><td class="name">{escape(k)}</td><td class="name">{escape(str(v))}</td></tr>'
                    for k, v in settings.items())
    vrows = "".join(f'<tr><td class="name">{escape(k)}</td><td class="name">{escape(v)}</td></tr>'
                    for k, v in versions().items())
    return ('<h2 id="manifest">Reproducing this report</h2><p class="note">The same inputs (by hash), seed and '
            "settings reproduce every number above.</p>"
            f'<h3>Inputs</h3><div class="wide"><table><tr><th class="name">input</th><th class="name">path</th>'
            f'<th class="name">sha256</th></tr>{"".join(rows)}</table></div>'
            f'<h3>Settings</h3><table>{srows}</table><h3>Software</h3><table>{vrows}</table>')


def render_html(comp: Comparison, out_dir: Path, drawing: FigureDrawing | None = None) -> str:
    """The report page as a string; figure PNGs are written into out_dir as a side effect.

    The figures come from `drawing` (drawn on worker processes while the page's tables are written) or, without
    one, are drawn here one by one."""
    sc = comp.loaded.scenario
    drawing = drawing if drawing is not None else FigureDrawing(comp)
    # the text first, while the workers draw; then the figures, which wait for them
    head = [_head(comp), _verdict(comp)]
    middle = [selection_html(comp), _policies(comp), _tables(comp)]
    tail = [_method(comp), _manifest(comp)]
    body = "\n".join([*head, _how_sure(comp, out_dir, drawing), *middle, _figures(comp, out_dir, drawing), *tail])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Loyalty Lab report: {escape(sc.name)}</title><style>{_CSS}</style></head>\n"
            f"<body><main>\n{body}\n</main></body></html>\n")


def write_report(comp: Comparison, out_dir: str | Path, drawing: FigureDrawing | None = None) -> Path:
    """Write `report.html` (self-contained, opens offline) and every figure as `fig_<name>.png` into out_dir.

    `drawing` has the figures drawn (lab.report.drawing: on worker processes); without it they are drawn here.
    Returns the path of report.html.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = render_html(comp, out, drawing)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
