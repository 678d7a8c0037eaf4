"""What a job prints: plain-text tables, and the wall time of its named phases so its output says
where the time went.

Spark is lazy: a phase's time is that of the Spark jobs its actions ran (a training fit reads
and assembles its input rows inside the fit; the predictions of every post are computed where
they are first materialised).
"""

from __future__ import annotations

import contextlib
import time


class Phases:
    """``with phases("fit"): ...`` records the block's wall time; :meth:`rows` lists them in order."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - started

    def rows(self) -> list[tuple[str, str]]:
        """(phase, seconds) in the order the phases first ran, then the total."""
        total = sum(self._seconds.values())
        return [(name, f"{s:,.1f}") for name, s in self._seconds.items()] + [("total", f"{total:,.1f}")]

    def as_dict(self) -> dict[str, float]:
        return {name: round(s, 2) for name, s in self._seconds.items()}


def format_table(header: list[str], rows: list[tuple]) -> str:
    """A plain-text table for job summaries."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
