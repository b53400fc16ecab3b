"""Reports of a comparison: the HTML report with its figures, and the terminal table."""

from lab.report.terminal import format_table


def write_report(comp, out_dir):  # noqa: ANN001, ANN201 - typed in lab.report.html; imported lazily
    """Write report.html and the PNG figures of a comparison into out_dir; returns the report's path."""
    from lab.report.html import write_report as _write

    return _write(comp, out_dir)


__all__ = ["format_table", "write_report"]
