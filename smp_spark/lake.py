"""Delta Lake helpers: idempotent table sync and version lookup."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.errors import InputError

ROW_HASH = "_row_hash"


def with_row_hash(df: DataFrame, keys: list[str]) -> DataFrame:
    """Adds ``_row_hash``: a hash of every non-key column, so a MERGE can skip unchanged rows."""
    payload = [c for c in df.columns if c not in keys and c != ROW_HASH]
    return df.withColumn(ROW_HASH, F.xxhash64(*[F.col(c) for c in payload]))


def sync_table(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    keys: list[str],
    scope: dict[str, str | list[str]] | None = None,
) -> None:
    """Make the Delta table at ``path`` hold exactly the rows of ``df`` (within ``scope``).

    Without a scope, one MERGE on ``keys``: new keys are inserted, rows whose content changed are
    updated, rows no longer in ``df`` are deleted, and the files of unchanged rows are left as they
    are (a rerun of ingest on the same input rewrites nothing). With a scope (e.g.
    ``{"model": ["lightgbm", "xgboost"]}`` for rows of either), one overwrite of the rows in that
    scope (Delta's ``replaceWhere``): rows outside it stay, and a row of ``df`` outside it fails the
    write. Such a table's rows are replaced whole on every run (new predictions, a new manifest),
    where a MERGE's outer join over the whole table would cost several times the Spark jobs for
    the same result. Either way a rerun on the same input leaves the same rows, never twice as
    many. ``df`` must be unique on ``keys``. The first run creates the table.
    """
    source = with_row_hash(df, keys)
    if not DeltaTable.isDeltaTable(spark, path):
        source.write.format("delta").mode("overwrite").save(path)
        return
    if scope:
        condition = " AND ".join(_in_scope(c, v) for c, v in scope.items())
        (
            source.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", condition)
            .option("mergeSchema", "true")  # a column added in a later release joins old tables
            .save(path)
        )
        return
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(source.alias("s"), on)
        .withSchemaEvolution()  # a column added in a later release (e.g. quarantine Pid) joins old tables
        .whenMatchedUpdateAll(condition=f"t.{ROW_HASH} <> s.{ROW_HASH}")
        .whenNotMatchedInsertAll()
        .whenNotMatchedBySourceDelete()
        .execute()
    )


def _in_scope(column: str, value: str | list[str]) -> str:
    values = [value] if isinstance(value, str) else value
    return f"`{column}` IN ({', '.join(repr(str(v)) for v in values)})"


def replace_table(df: DataFrame, path: str, keys: list[str]) -> None:
    """Make the Delta table at ``path`` hold exactly the rows of ``df``, by overwriting it: what
    :func:`sync_table` does without a scope, in one write instead of a MERGE (for a table that
    holds one batch and nothing else, such as the scoring lake's bronze tables). The row hash
    column is kept, so both kinds of table have the same columns."""
    with_row_hash(df, keys).write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)


def require_table(spark: SparkSession, path: str, producer: str) -> None:
    """Fail with one clear message, naming the job that writes it, when ``path`` holds no Delta
    table (a stage not run yet, or ``paths.lake`` pointing at the wrong folder)."""
    if not DeltaTable.isDeltaTable(spark, path):
        raise InputError(f"no Delta table at {path}: run {producer} first, or set paths.lake to the lake that has it")


def read_table(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def table_version(spark: SparkSession, path: str) -> int:
    """The latest committed version of a Delta table."""
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
