"""The scraper's Delta tables: progress committed batch by batch, so a rerun resumes.

- ``<lake>/scraped/photo_groups``: one row per photo: ``imgid, owner, Uid, status`` (ok,
  not_found, failed), ``group_ids`` (the photo's pools; empty for ``ok`` in no pool, null
  otherwise), ``calls`` (HTTP attempts), ``error``, ``scraped_at``;
- ``<lake>/scraped/groups``: one row per group: ``group_id, status, title, member_count,
  pool_count, calls, error, scraped_at``;
- ``<lake>/scraped/owners``: one row per owner NSID: ``owner, status, contacts_count,
  public_groups_count, calls, error, scraped_at`` (only with ``scrape.users``).

Each batch is one Delta commit per table: an append when all its keys are new, a MERGE on the key
when it re-scrapes stored items (a ``failed`` photo retried), so no rerun or kill duplicates a key,
and a killed run loses at most the batch it was in (Delta commits are atomic). One scraper per
lake at a time: the driver tracks which keys are stored.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Iterable

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smp_spark.config import Config
from smp_spark.scrape.flickr import NOT_FOUND, OK, GroupResult, OwnerResult, PhotoResult

PHOTOS, GROUPS, OWNERS = "scraped/photo_groups", "scraped/groups", "scraped/owners"
KEYS = {PHOTOS: "imgid", GROUPS: "group_id", OWNERS: "owner"}
FINAL = (OK, NOT_FOUND)  # states a rerun skips; ``failed`` items are tried again

_TAIL = [
    T.StructField("calls", T.IntegerType()),
    T.StructField("error", T.StringType()),
    T.StructField("scraped_at", T.TimestampType()),
]
SCHEMAS = {
    PHOTOS: T.StructType(
        [
            T.StructField("imgid", T.StringType(), False),
            T.StructField("owner", T.StringType()),
            T.StructField("Uid", T.StringType()),
            T.StructField("status", T.StringType()),
            T.StructField("group_ids", T.ArrayType(T.StringType())),
            *_TAIL,
        ]
    ),
    GROUPS: T.StructType(
        [
            T.StructField("group_id", T.StringType(), False),
            T.StructField("status", T.StringType()),
            T.StructField("title", T.StringType()),
            T.StructField("member_count", T.LongType()),
            T.StructField("pool_count", T.LongType()),
            *_TAIL,
        ]
    ),
    OWNERS: T.StructType(
        [
            T.StructField("owner", T.StringType(), False),
            T.StructField("status", T.StringType()),
            T.StructField("contacts_count", T.LongType()),
            T.StructField("public_groups_count", T.LongType()),
            *_TAIL,
        ]
    ),
}


def exists(spark: SparkSession, config: Config, table: str) -> bool:
    return DeltaTable.isDeltaTable(spark, config.table(table))


def read(spark: SparkSession, config: Config, table: str):
    """The table, or an empty frame of its schema when nothing was committed yet."""
    if exists(spark, config, table):
        return spark.read.format("delta").load(config.table(table))
    return spark.createDataFrame([], SCHEMAS[table])


def states(spark: SparkSession, config: Config, table: str) -> dict[str, str]:
    """Every key stored in ``table`` with its status (ids and a word each: a few MB for the real
    SMPD). Keys whose status is in :data:`FINAL` are done; a rerun fetches the others again."""
    if not exists(spark, config, table):
        return {}
    key = KEYS[table]
    return {k: status for k, status in read(spark, config, table).select(key, "status").collect()}


def unfetched_groups(spark: SparkSession, config: Config) -> list[str]:
    """Groups named by ``ok`` photos whose info is not final yet (failed, or the run stopped
    between the photo commit and the group commit), sorted."""
    if not exists(spark, config, PHOTOS):
        return []
    named = (
        read(spark, config, PHOTOS)
        .filter(F.col("status") == OK)
        .select(F.explode("group_ids").alias("group_id"))
        .distinct()
    )
    final = read(spark, config, GROUPS).filter(F.col("status").isin(*FINAL)).select("group_id")
    return sorted(row[0] for row in named.join(final, "group_id", "left_anti").collect())


def _photo_row(r: PhotoResult, uid: str | None) -> dict:
    row = asdict(r)
    row["Uid"] = uid
    row["group_ids"] = r.group_ids if r.status == OK else None
    return row


def commit(
    spark: SparkSession,
    config: Config,
    table: str,
    results: Iterable[PhotoResult | GroupResult | OwnerResult],
    stored: set[str],
    uids: dict[str, str | None] | None = None,
) -> int:
    """Write one batch of results into ``table`` as one Delta commit; returns the rows written.

    ``stored`` holds the keys already in the table (updated here). A batch of new keys only is
    appended; one that re-scrapes stored keys (a ``failed`` item retried) is upserted with a MERGE
    on the key, so a key never has two rows. ``uids`` maps photo ids to SMPD Uids (photos only).
    """
    if table == PHOTOS:
        rows = [_photo_row(r, (uids or {}).get(r.imgid)) for r in results]
    else:
        rows = [asdict(r) for r in results]
    if not rows:
        return 0
    schema = SCHEMAS[table]
    path, key = config.table(table), KEYS[table]
    df = spark.createDataFrame([tuple(row[f.name] for f in schema.fields) for row in rows], schema)
    keys = {row[key] for row in rows}
    if stored.isdisjoint(keys) or not DeltaTable.isDeltaTable(spark, path):
        df.write.format("delta").mode("append").save(path)  # creates the table, over a killed first write too
    else:
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(df.alias("s"), f"t.`{key}` = s.`{key}`")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )
    stored.update(keys)
    return len(rows)
