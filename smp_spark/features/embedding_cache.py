"""A content-keyed cache of model outputs in a Delta table: the shared half of the text and image
embedding stages.

A stage names, per post, a content hash (of the cleaned text, of the image bytes) and the payload
the model needs (the text, the image's location). :func:`update_cache` encodes only contents whose
hash is in no row of the table yet (identical contents once, in Spark tasks through a
``mapInPandas`` encoder), copies the values of known hashes to new posts, and syncs the table to
one row per wanted post with one Delta MERGE. A rerun on unchanged input reads only the key
columns and encodes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.lake import sync_table

Encoder = Callable[[pd.DataFrame], pd.DataFrame]  # key + payload columns -> key + value columns


@dataclass(frozen=True)
class CachedStage:
    """What a stage stores: its table path, its hash column and its value columns (Spark DDL)."""

    table: str
    key: str  # the content hash column, e.g. "text_hash", "image_hash"
    values: str  # e.g. "embedding array<float>"

    @property
    def value_columns(self) -> list[str]:
        return [part.strip().split()[0] for part in self.values.split(",")]


def update_cache(
    spark: SparkSession, stage: CachedStage, wanted: DataFrame, encode: Encoder, rows_per_task: int
) -> dict[str, int]:
    """Bring ``stage.table`` up to date with ``wanted`` (``Pid``, the key, the payload columns).

    Output table: ``Pid``, the key and the value columns, one row per wanted post whose values the
    encoder could produce (a row whose first value is null is left out and counted in
    ``failed``). Returns the post count, how many distinct contents were encoded now, and failed.
    """
    key = stage.key
    wanted = wanted.localCheckpoint()
    keys = wanted.select("Pid", key)
    if not DeltaTable.isDeltaTable(spark, stage.table):  # created empty: "nothing to embed" is a state too
        empty = spark.createDataFrame([], f"Pid long, {key} long, {stage.values}")
        sync_table(spark, empty, stage.table, ["Pid"])
    existing = spark.read.format("delta").load(stage.table)
    missing = keys.join(existing.select("Pid", key), ["Pid", key], "left_anti").localCheckpoint()
    stale = existing.select("Pid", key).join(keys, ["Pid", key], "left_anti").limit(1).count()
    posts, new_posts = keys.count(), missing.count()
    if not new_posts and not stale:
        return {"posts": posts, "encoded": 0, "failed": 0}

    needed = missing.select(key).distinct()
    known = existing.join(needed, key, "left_semi").select(key, *stage.value_columns).dropDuplicates([key])
    todo = wanted.join(needed, key, "left_semi").join(known.select(key), key, "left_anti").drop("Pid")
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
    kept = existing.join(keys, ["Pid", key], "left_semi")
    current = kept.select("Pid", key, *stage.value_columns).unionByName(
        missing.join(values, key).select("Pid", key, *stage.value_columns)
    )
    sync_table(spark, current, stage.table, ["Pid"])  # the encoded values are checkpointed: no re-encoding
    return {"posts": posts, "encoded": count, "failed": failed}
