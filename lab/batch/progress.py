"""Progress of a batch on the terminal: done/total, rate, ETA and failures.

A tqdm bar when the stream is a terminal, a plain line every `interval`
seconds otherwise (a log file, a CI job). Distinct from a comparison's
progress (`lab.experiment.compare.Progress`), which counts the runs of a
growing number of replications and no failures.
"""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["BatchProgress", "duration"]


class BatchProgress:
    """done/total, rate, ETA and failures: a tqdm bar on a terminal, a plain line every `interval` seconds otherwise."""

    def __init__(self, total: int, done: int, failed: int, stream: TextIO, interval: float = 10.0) -> None:
        self.total, self.done, self.failed = total, done, failed
        self.start_done = done
        self.stream = stream
        self.interval = interval
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if _isatty(stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="run", file=stream, dynamic_ncols=True, smoothing=0.05)
            self.bar.set_postfix(failed=failed)

    def update(self, runs: int, failed: int) -> None:
        self.done += runs
        self.failed += failed
        if self.bar is not None:
            self.bar.update(runs)
            if failed:
                self.bar.set_postfix(failed=self.failed)
        self.tick()

    def rate(self) -> float:
        """Runs per minute in this session."""
        elapsed = time.monotonic() - self.t0
        return (self.done - self.start_done) / elapsed * 60 if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        left = self.total - self.done
        eta = duration(left / rate * 60) if rate > 0 else "?"
        pct = 100 * self.done / self.total if self.total else 100
        return (f"lab batch: {self.done}/{self.total} runs ({pct:.0f}%), {rate:.1f} runs/min, ETA {eta}, "
                f"{self.failed} failed")

    def tick(self) -> None:
        now = time.monotonic()
        if self.bar is None and now - self.last >= self.interval:
            print(self.line(), file=self.stream, flush=True)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"

