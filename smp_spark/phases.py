"""Wall time per named phase of a job, so its output says where the time went.

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
