"""The report's figures as PNG bytes: drawn in this process, or on the comparison's worker processes.

The figures are most of what writing a comparison's report costs: each is built and rendered by matplotlib
(0.2 to 1.3 s apiece on one core for the classroom's four policies over 730 days). Given a pool of worker
processes (`lab compare` hands over the one its runs used, its workers idle once the runs are done),
:class:`FigureDrawing` draws every figure the report shows there, in parallel and the slowest first, while
this process writes the comparison's files and the page's tables; :meth:`FigureDrawing.get` then hands each
PNG to the page. A figure drawn in a worker is the one drawn here, byte for byte: the same comparison
(pickled), the same matplotlib, and each figure on its own `Figure` with no state shared between figures.

This module imports matplotlib only inside its functions, so a parent process that has its figures drawn on
workers can start them before it has imported matplotlib itself.
"""

from __future__ import annotations

import io
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lab.experiment.compare import Comparison
    from lab.report.figures import FigureSpec

__all__ = ["DPI", "ROBUST_NAMES", "SLOWEST_FIRST", "FigureDrawing", "draw", "figure_specs", "png", "warm_up"]

DPI = 130

#: Every figure of the report by name, in the order they are handed to the workers: the slowest first (build
#: and render, measured on the classroom's comparison of four policies: the flywheel's nine panels 1.3 s, the
#: revolving door's 800 bars 1.0 s, customers and revenue 0.7 s, the forest plot 0.4 s, every other figure 0.2
#: to 0.3 s; the "How sure?" figures, drawn from summary numbers, last), so the last figure to finish is a short
#: one. Named here, not read from the figure lists, so that the figures are under way before this process has
#: imported matplotlib; tests/test_figures_png.py holds it to FIGURES and ROBUST_FIGURES.
SLOWEST_FIRST = ("flywheel", "revolving_door", "customers_revenue", "forest", "retention", "lorenz",
                 "flywheel_share", "credit", "points", "incremental_profit")
ROBUST_NAMES = ("robust_prim", "robust_differences", "robust_drivers", "robust_p_best")


def png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes: what ``fig.savefig(buf, format="png", dpi=dpi)`` writes, drawn once.

    savefig draws a figure with a layout engine (every report figure is constrained) twice: a dry draw,
    which runs the layout on the way, then the real draw with the layout switched off. Here the layout is
    run on its own, at the saving resolution, then switched off and the figure drawn once: the same
    layout, hence the same pixels and bytes (tests/test_figures_png.py compares them for every figure),
    without the dry draw's pass over every artist. The figure is left at `dpi`, its layout fixed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        fig.set_layout_engine("none")
    buf = io.BytesIO()
    canvas.print_png(buf)
    return buf.getvalue()


def figure_specs(comp: Comparison) -> list[FigureSpec]:
    """Every figure the report of `comp` can show, in page order: the "How sure?" figures first (only with a
    robust study: they import what its figures need), then the comparison's."""
    from lab.report.figures import FIGURES

    if comp.robustness is None:
        return list(FIGURES)
    from lab.report.robust_figures import ROBUST_FIGURES

    return [*ROBUST_FIGURES, *FIGURES]


def _shown(comp: Comparison, spec: FigureSpec) -> bool:
    return spec.applies is None or spec.applies(comp)


def draw(comp: Comparison, name: str) -> tuple[float, bytes] | None:
    """The report's figure `name` of `comp`: its width in inches (the page shows it at its natural size) and its
    PNG; None when the report does not show it (its `applies` is false). Module-level, so that a worker process
    can be asked for it."""
    spec = {s.name: s for s in figure_specs(comp)}[name]
    if not _shown(comp, spec):
        return None
    fig = spec.draw(comp)
    return fig.get_figwidth(), png(fig)


def warm_up() -> None:
    """Import what drawing a figure takes (matplotlib, the figure functions, the comparison that is unpickled
    for them) and load the font and fill matplotlib's caches with one small figure, so that a worker's first
    figure is not slower than the rest. Sent to each worker while the parent process has other work."""
    import lab.experiment.compare  # noqa: F401  (what a figure's comparison is unpickled as)
    from lab.report.figures import new_figure

    fig = new_figure(2.0, 1.5)
    ax = fig.subplots()
    ax.plot([0.0, 1.0], [0.0, 1.0], label="warm-up")
    ax.set_title("warm-up")
    ax.set_xlabel("day")
    fig.legend(loc="outside lower center")
    png(fig)


class FigureDrawing:
    """The figures of one comparison's report, drawn once each: on `pool`'s workers (submitted at once, the
    slowest first), or without a pool here, one at a time as the page asks for them.

    Construct it when the comparison is final (its runs done, its robust study added): on a workspace its
    stacked frame files are written here first, so the workers only read them."""

    def __init__(self, comp: Comparison, pool: Executor | None = None) -> None:
        self.comp = comp
        self._futures: dict[str, Future[tuple[float, bytes] | None]] = {}
        self._warm: list[Future[None]] = []
        if pool is None:
            return
        # one warm-up per worker, started while the frame files are stacked here (a warm worker's is quick)
        self._warm = [pool.submit(warm_up) for _ in range(max(1, comp.options.jobs))]
        if comp.store is not None:
            from lab.experiment.compare import FRAMES

            for name in FRAMES:
                comp.frame_file(name)
        # a figure the report does not show comes back None at once; one not named in the lists is drawn here
        for name in (*SLOWEST_FIRST, *(ROBUST_NAMES if comp.robustness is not None else ())):
            self._futures[name] = pool.submit(draw, comp, name)

    def get(self, name: str) -> tuple[float, bytes]:
        """Figure `name`'s width in inches and PNG (waiting for its worker, or drawing it here), for a figure
        the report shows."""
        future = self._futures.pop(name, None)
        drawn = future.result() if future is not None else draw(self.comp, name)
        if drawn is None:
            raise ValueError(f"the report does not show the figure {name!r} for this comparison")
        return drawn

    def cancel(self) -> None:
        """Drop the figures not yet started (the report is not being written after all)."""
        for future in self._warm:
            future.cancel()
        for drawn in self._futures.values():
            drawn.cancel()
        self._futures.clear()
