"""A content-keyed cache of model outputs in a Delta table: the shared half of the text and image
embedding stages.

A stage names, per post, a content hash (of the cleaned text, of the image bytes) and the payload
the model needs (the text, the image's location). :func:`update_cache` encodes only contents whose
hash is in no row of the table yet (identical contents once, in Spark tasks through a
``mapInPandas`` encoder), copies the values of known hashes to new posts, and brings the table to
one row per wanted post with one Delta MERGE of the changed rows alone. A rerun on unchanged input
reads only the key columns and encodes nothing.

Each row also names its ``encoder`` (the model and what changes its output: precision,
resolution): a value is reused only for the same content *and* the same encoder, so a run with
another precision or resolution encodes again instead of keeping vectors that the configuration
no longer describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.lake import sync_table, upsert_rows, with_row_hash
from smp_spark.session import no_broadcast_joins

Encoder = Callable[[pd.DataFrame], pd.DataFrame]  # key + payload columns -> key + value columns
ENCODER = "encoder"


@dataclass(frozen=True)
class CachedStage:
    """What a stage stores: its table path, its hash column and its value columns (Spark DDL)."""

    table: str
    key: str  # the content hash column, e.g. "text_hash", "image_hash"
    values: str  # e.g. "embedding array<float>"
    encoder: str  # what makes the values, e.g. "all-MiniLM-L6-v2 int8": stored in each row

    @property
    def value_columns(self) -> list[str]:
        return [part.strip().split()[0] for part in self.values.split(",")]


def update_cache(
    spark: SparkSession, stage: CachedStage, wanted: DataFrame, encode: Encoder, rows_per_task: int
) -> dict[str, int]:
    """Bring ``stage.table`` up to date with ``wanted`` (``Pid``, the key, the payload columns).

    Output table: ``Pid``, the key, ``encoder`` and the value columns, one row per wanted post
    whose values the encoder could produce (a row whose first value is null is left out and
    counted in ``failed``). Returns the post count, how many distinct contents were encoded now, and failed.
    """
    key = stage.key
    row_keys = ["Pid", key, ENCODER]
    wanted = wanted.withColumn(ENCODER, F.lit(stage.encoder)).localCheckpoint()
    keys = wanted.select(*row_keys)
    _create_or_replace(spark, stage)
    existing = spark.read.format("delta").load(stage.table)
    missing = keys.join(existing.select(*row_keys), row_keys, "left_anti").localCheckpoint()
    stale = existing.select(*row_keys).join(keys, row_keys, "left_anti")  # rows no post wants as they are
    posts, new_posts = keys.count(), missing.count()
    if not new_posts and not stale.limit(1).count():
        return {"posts": posts, "encoded": 0, "failed": 0}

    needed = missing.select(key).distinct()
    known = (
        existing.filter(F.col(ENCODER) == stage.encoder)
        .join(needed, key, "left_semi")
        .select(key, *stage.value_columns)
        .dropDuplicates([key])
    )
    todo = wanted.join(needed, key, "left_semi").join(known.select(key), key, "left_anti").drop("Pid", ENCODER)
    todo = todo.dropDuplicates([key]).localCheckpoint()
    count = todo.count()
    values = known
    failed = 0
    if count:

        def batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for frame in frames:
                yield encode(frame)

        # small tasks: the progress bar moves, and a lost task redoes little
        tasks = max(2, count // rows_per_task + 1)
        encoded = todo.repartition(tasks, key).mapInPandas(batches, f"{key} long, {stage.values}")
        encoded = encoded.localCheckpoint()
        first = stage.value_columns[0]
        failed = encoded.filter(F.col(first).isNull()).count()
        values = known.unionByName(encoded.filter(F.col(first).isNotNull()))
    # only what changed is written: the new posts' rows, and the stale rows no new row replaces
    # (a post gone, or whose new content failed to encode) deleted; the kept rows are not read again
    new_rows = missing.join(values, key).select(*row_keys, *stage.value_columns)
    gone = stale.select("Pid").join(new_rows.select("Pid"), "Pid", "left_anti")
    with no_broadcast_joins(spark):  # the encoded values' size is unknown to the planner
        upsert_rows(spark, stage.table, new_rows, gone, ["Pid"])  # the encoded values are checkpointed
    return {"posts": posts, "encoded": count, "failed": failed}


def _create_or_replace(spark: SparkSession, stage: CachedStage) -> None:
    """Create the table empty ("nothing to embed" is a state too), or empty a table written before
    rows named their encoder: what made its values is unknown, so none of them can be reused."""
    empty = spark.createDataFrame([], f"Pid long, {stage.key} long, {ENCODER} string, {stage.values}")
    if not DeltaTable.isDeltaTable(spark, stage.table):
        sync_table(spark, empty, stage.table, ["Pid"])
    elif ENCODER not in spark.read.format("delta").load(stage.table).columns:
        print(f"{stage.table}: written before its rows named their encoder: encoding every content again")
        replaced = with_row_hash(empty, ["Pid"]).write.format("delta").mode("overwrite")
        replaced.option("overwriteSchema", "true").save(stage.table)
