"""Run a job with each Spark action of its driver timed, and the smp_spark / jobs lines that called
it: where a stage's time goes, action by action (docs/benchmarks.md, session 30).

    .venv/bin/python benchmarks/spark_actions.py jobs/embed_images.py [--set key=value ...]

Prints ``[action] <seconds since start> <seconds> <method> @ <file:line> < <caller> ...`` to stderr
for every action of at least ``SPARK_ACTIONS_MIN_SECONDS`` (default 0.5). An action nested in
another (``first`` calls ``head``) is printed at each level. Lazy work runs inside the action that
forces it, so a line's seconds include everything planned before it.
"""

from __future__ import annotations

import functools
import os
import runpy
import sys
import time
import traceback

from delta.tables import DeltaMergeBuilder
from pyspark.sql import DataFrame
from pyspark.sql.readwriter import DataFrameWriter

START = time.time()
MIN_SECONDS = float(os.environ.get("SPARK_ACTIONS_MIN_SECONDS", "0.5"))


def _timed(cls: type, name: str) -> None:
    original = getattr(cls, name)

    @functools.wraps(original)
    def run(*args, **kwargs):
        began = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            took = time.time() - began
            if took >= MIN_SECONDS:
                stack = traceback.extract_stack()[:-1]
                ours = [f for f in stack if "smp_spark" in f.filename or "/jobs/" in f.filename]
                where = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(ours[-3:]))
                print(
                    f"[action] {time.time() - START:7.1f} {took:7.1f}s {cls.__name__}.{name} @ {where}",
                    file=sys.stderr,
                    flush=True,
                )

    setattr(cls, name, run)


for action in ("localCheckpoint", "checkpoint", "count", "isEmpty", "collect", "toPandas", "first", "take", "head"):
    _timed(DataFrame, action)
for action in ("save", "saveAsTable", "parquet"):
    _timed(DataFrameWriter, action)
_timed(DeltaMergeBuilder, "execute")

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
