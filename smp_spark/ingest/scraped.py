"""Scraped social-network tables (group memberships, photo scrape status, user stats) -> bronze.

Input files in ``paths.scraped`` (see docs/data.md):
- ``group_meta*.csv``: ``imgid,group_id,title,member_count,pool_count``, a row per photo and group;
- ``photo_status*.csv``: ``imgid,status,scraped_at``, a row per scraped photo (ok|not_found|failed);
- ``user_meta*.csv``: ``Uid,contacts_count,public_groups_count,scraped_at``, optional.

``imgid`` is the Flickr photo id, joined to posts through the last segment of their image URL.
Rows naming photos or users that no ingested post has are quarantined. Later rows win over earlier
ones (files are read in name order, rows in file order), since re-scrapes are appended later.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial, reduce

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from smp_spark.ingest.files import FileInfo, list_files
from smp_spark.ingest.records import CORRUPT, RECORD_INDEX, SOURCE_FILE, Records, read_csv
from smp_spark.ingest.validate import (
    ERRORS,
    Field,
    add_error,
    good_rows,
    no_errors,
    parse_fields,
    quarantine_rows,
)
from smp_spark.session import concurrently

GROUP_RULES = [
    Field("imgid", required=True),
    Field("group_id", required=True),
    Field("title"),
    Field("member_count", "int", required=True, low=0),
    Field("pool_count", "int", required=True, low=0),
]
STATUS_RULES = [Field("imgid", required=True), Field("status", required=True), Field("scraped_at")]
USER_META_RULES = [
    Field("Uid", required=True),
    Field("contacts_count", "int", low=0),
    Field("public_groups_count", "int", low=0),
    Field("scraped_at"),
]
PHOTO_STATUSES = ("ok", "not_found", "failed")
SCHEMAS = {
    "group_meta": "imgid string, group_id string, title string, member_count long, pool_count long",
    "photo_status": "imgid string, status string, scraped_at string",
    "user_meta": "Uid string, contacts_count long, public_groups_count long, scraped_at string",
}


@dataclass
class ScrapedFiles:
    """Each scraped table parsed from all of its files (rows keep ``_errors``), and row counts."""

    groups: DataFrame
    status: DataFrame
    user_meta: DataFrame
    counts: dict[str, int]
    status_files: int


def _read_file(spark: SparkSession, info: FileInfo, rules: list[Field]) -> Records:
    """One scraped CSV file, parsed with ``rules`` and materialised, and its row count."""
    records = read_csv(spark, info, [f.name for f in rules if f.required])
    df = parse_fields(records.df, rules)
    df = add_error(
        df,
        F.col(CORRUPT).isNotNull(),
        "row",
        "malformed CSV row (wrong number of fields or bad quoting)",
        F.col(CORRUPT),
    )
    return Records(
        df.select(*[f.name for f in rules], SOURCE_FILE, RECORD_INDEX, ERRORS).localCheckpoint(), records.count
    )


def _union(spark: SparkSession, stem: str, parts: list[Records]) -> DataFrame:
    if not parts:
        empty = spark.createDataFrame([], SCHEMAS[stem] + f", {SOURCE_FILE} string, {RECORD_INDEX} long")
        return empty.withColumn(ERRORS, no_errors())
    return reduce(DataFrame.unionByName, [part.df for part in parts])


def read_scraped(spark: SparkSession, folder: str) -> ScrapedFiles:
    """Every scraped file of ``folder``, each parsed once; the files are read at once
    (:func:`concurrently`: a multiLine CSV file is a single task)."""
    rules = {"group_meta": GROUP_RULES, "photo_status": STATUS_RULES, "user_meta": USER_META_RULES}
    files = {stem: list_files(spark, folder, f"{stem}*.csv") for stem in rules}
    work = {(stem, info): partial(_read_file, spark, info, rules[stem]) for stem in rules for info in files[stem]}
    read = concurrently(spark, work)
    counts = {info.name: records.count for (_, info), records in read.items()}
    parts = {stem: [read[stem, info] for info in files[stem]] for stem in rules}
    status = add_error(
        _union(spark, "photo_status", parts["photo_status"]),
        F.col("status").isNotNull() & ~F.col("status").isin(*PHOTO_STATUSES),
        "status",
        f"unknown status (expected one of {', '.join(PHOTO_STATUSES)})",
        F.col("status"),
    )
    groups, users = _union(spark, "group_meta", parts["group_meta"]), _union(spark, "user_meta", parts["user_meta"])
    return ScrapedFiles(groups, status, users, counts, len(files["photo_status"]))


def _latest(df: DataFrame, key: str) -> DataFrame:
    """The last row per key in (file name, row) order."""
    order = Window.partitionBy(key).orderBy(F.col(SOURCE_FILE).desc(), F.col(RECORD_INDEX).desc())
    return df.withColumn("_rank", F.row_number().over(order)).filter("_rank = 1").drop("_rank")


def _unknown(df: DataFrame, known: DataFrame, key: str, field: str, reason: str) -> DataFrame:
    """Rows of ``df`` whose ``key`` is not in ``known``, flagged with an error."""
    flagged = df.join(known.select(key).distinct().withColumn("_known", F.lit(True)), key, "left")
    return add_error(flagged, F.col("_known").isNull(), field, reason, F.col(key)).drop("_known")


@dataclass
class ScrapedBronze:
    groups: DataFrame
    post_groups: DataFrame
    scrape_status: DataFrame
    user_meta: DataFrame
    quarantine: list[DataFrame]


def scraped_bronze(files: ScrapedFiles, posts: DataFrame, users: DataFrame, release_name: str) -> ScrapedBronze:
    """Bronze tables from the scraped files, joined to the ingested posts and users.

    - ``groups``: one row per group_id (the latest observation) with how often it was seen;
    - ``post_groups``: one row per (Pid, group_id);
    - ``scrape_status``: one row per Pid whose photo was scraped. Without photo_status files the
      status is inferred as ``ok`` for photos with group rows; other posts stay "not scraped";
    - ``user_meta``: one row per Uid.
    """
    photos = posts.select("Pid", F.col("flickr_photo_id").alias("imgid"))
    quarantine = []

    group_rows = _unknown(files.groups, photos, "imgid", "imgid", "imgid matches no ingested post's photo id")
    quarantine.append(quarantine_rows(group_rows.join(photos, "imgid", "left"), release_name))
    good_groups = good_rows(group_rows)
    post_groups = (
        good_groups.join(photos, "imgid")
        .select("Pid", F.col("imgid").alias("flickr_photo_id"), "group_id")
        .dropDuplicates(["Pid", "group_id"])
    )
    seen = good_groups.groupBy("group_id").agg(F.count(F.lit(1)).alias("observations"))
    groups = (
        _latest(good_groups, "group_id")
        .join(seen, "group_id")
        .select("group_id", "title", "member_count", "pool_count", "observations")
    )

    if files.status_files:
        status_rows = _unknown(files.status, photos, "imgid", "imgid", "imgid matches no ingested post's photo id")
        quarantine.append(quarantine_rows(status_rows.join(photos, "imgid", "left"), release_name))
        status = (
            _latest(good_rows(status_rows), "imgid")
            .join(photos, "imgid")
            .select(
                "Pid",
                F.col("imgid").alias("flickr_photo_id"),
                "status",
                "scraped_at",
                F.lit("photo_status file").alias("status_source"),
            )
        )
    else:
        status = (
            post_groups.select("Pid", "flickr_photo_id")
            .distinct()
            .select(
                "Pid",
                "flickr_photo_id",
                F.lit("ok").alias("status"),
                F.lit(None).cast("string").alias("scraped_at"),
                F.lit("inferred from group rows").alias("status_source"),
            )
        )

    meta_rows = _unknown(files.user_meta, users, "Uid", "Uid", "Uid matches no ingested post's user")
    quarantine.append(quarantine_rows(meta_rows, release_name))
    user_meta = _latest(good_rows(meta_rows), "Uid").select(
        "Uid", "contacts_count", "public_groups_count", F.col("scraped_at").alias("user_scraped_at")
    )
    return ScrapedBronze(groups, post_groups, status, user_meta, quarantine)
