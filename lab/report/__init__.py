"""Reports of a comparison: the self-contained HTML page with its figures, and the terminal table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lab.report.terminal import format_table

if TYPE_CHECKING:
    from lab.experiment.compare import Comparison
    from lab.report.drawing import FigureDrawing


def write_report(comp: Comparison, out_dir: str | Path, drawing: FigureDrawing | None = None) -> Path:
    """Write report.html and every figure as PNG into out_dir; returns the report's path.

    matplotlib is imported only here, so printing the table stays quick. `drawing`
    (lab.report.drawing.FigureDrawing) has the figures drawn on worker processes; without it they are drawn
    here, one after another.
    """
    from lab.report.html import write_report as _write

    return _write(comp, Path(out_dir), drawing)


__all__ = ["format_table", "write_report"]
