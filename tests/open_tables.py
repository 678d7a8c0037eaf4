"""Open a Delta table the project wrote with another engine (delta-rs: the ``deltalake`` package,
no Spark, no JVM) and check that it holds what Spark reads."""

from __future__ import annotations

import datetime
import math

import pyarrow as pa


def read_elsewhere(path: str) -> pa.Table:
    """The latest version of the Delta table at ``path``, read by delta-rs.

    Fails (``Unsupported Delta table type: 'udt'``) when a column holds a Spark ML vector."""
    from deltalake import DeltaTable

    return DeltaTable(path).to_pyarrow_table()


def same_value(a, b) -> bool:
    """Equal as Spark and delta-rs return them: NaN equals NaN, lists element by element,
    timestamps by instant (Spark gives naive local datetimes, delta-rs aware UTC ones)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        return a.timestamp() == b.timestamp()
    return a == b


def assert_opens_elsewhere(spark, path: str, keys, sample: int | None = 200) -> pa.Table:
    """Read the Delta table at ``path`` with delta-rs and compare it with Spark's reading: the same
    columns in the same order, the same number of rows, and equal values in every column of the
    first ``sample`` rows by ``keys`` (None: every row). ``keys`` must be unique per row.

    Returns the delta-rs table for further checks."""
    from pyspark.sql import functions as F

    keys = list(keys)
    table = read_elsewhere(path)
    frame = spark.read.format("delta").load(path)
    assert table.column_names == frame.columns, path
    assert table.num_rows == frame.count(), path
    ordered = frame.orderBy(*[F.col(k).asc_nulls_last() for k in keys])
    theirs = table.sort_by([(k, "ascending") for k in keys])  # nulls last, like the Spark order above
    if sample is not None:
        ordered, theirs = ordered.limit(sample), theirs.slice(0, sample)
    ours = [row.asDict(recursive=True) for row in ordered.collect()]
    rows = theirs.to_pylist()
    assert len(rows) == len(ours)
    for spark_row, arrow_row in zip(ours, rows):
        differing = [c for c in frame.columns if not same_value(spark_row[c], arrow_row[c])]
        assert not differing, f"{path}: {[(c, spark_row[c], arrow_row[c]) for c in differing[:3]]}"
    return table
