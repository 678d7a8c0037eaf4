"""Ingest: an SMPD release folder and the scraped tables -> bronze Delta tables + quarantine."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.ingest.bronze import (
    assemble_posts,
    check_alignment,
    dedupe_pids,
    read_release_files,
    shape_posts,
    split_users,
    union_quarantine,
)
from smp_spark.ingest.files import SECOND_IMAGE_LIST, find_release, require_folder
from smp_spark.ingest.fingerprint import Fingerprint, input_fingerprint, last_ingest, log_ingest
from smp_spark.ingest.images import image_quarantine, image_rows
from smp_spark.ingest.scraped import read_scraped, scraped_bronze
from smp_spark.lake import read_table, replace_table, sync_table
from smp_spark.session import concurrently

# table name under the lake -> its key columns
BRONZE_TABLES = {table.name: list(table.keys) for table in catalog.BRONZE}


@dataclass
class Bronze:
    """Every bronze table of one ingest, as DataFrames, plus the rows read per input file."""

    tables: dict[str, DataFrame]
    rows_read: dict[str, int]


def build_bronze(spark: SparkSession, config: Config, raw_dir: str, scraped_dir: str) -> Bronze:
    """Read, validate and join one release and its scraped tables (nothing is written)."""
    release = find_release(spark, raw_dir)
    require_folder(spark, scraped_dir, "scraped tables", "paths.scraped")
    files = read_release_files(spark, config, release)
    frames = {source: records.df for source, records in files.items()}
    counts = {source: records.count for source, records in files.items()}
    check_alignment(release, counts)
    rows_read = {release.files[s].name: n for s, n in counts.items()}

    good, quarantine = assemble_posts(frames, release.prefix)
    posts, duplicates = dedupe_pids(shape_posts(good, release.prefix), release.prefix, release.files["category"].name)
    posts, users = split_users(posts)
    posts, users = posts.localCheckpoint(), users.localCheckpoint()
    previous = config.table(catalog.IMAGES.name)  # the last ingest's rows: unchanged files are not read again
    previous = read_table(spark, previous) if DeltaTable.isDeltaTable(spark, previous) else None
    images = image_rows(posts, release.folder, config.ingest.max_image_pixels, previous).localCheckpoint()
    image_file = release.files.get(SECOND_IMAGE_LIST, release.files["img"]).name  # the list of local paths
    owners = posts.select("Pid", "Uid")

    scraped_files = read_scraped(spark, scraped_dir)
    rows_read.update(scraped_files.counts)
    scraped = scraped_bronze(scraped_files, posts, users, release.prefix)
    users = users.join(scraped.user_meta, "Uid", "left")
    return Bronze(
        tables={
            "bronze/posts": posts,
            "bronze/users": users,
            "bronze/groups": scraped.groups,
            "bronze/post_groups": scraped.post_groups,
            "bronze/scrape_status": scraped.scrape_status,
            "bronze/images": images,
            "quarantine/rows": union_quarantine(
                [
                    quarantine,
                    duplicates,
                    image_quarantine(images.join(owners, "Pid", "left"), release.prefix, image_file),
                    *scraped.quarantine,
                ]
            ),
        },
        rows_read=rows_read,
    )


def write_bronze(spark: SparkSession, config: Config, bronze: Bronze) -> dict[str, int]:
    """Sync every table into the lake (idempotent MERGE); returns the row count of each table.

    The tables are synced at once (:func:`concurrently`): each sync is a chain of small jobs and a
    Delta commit, which alone leave a core idle. Each table's commit is atomic on its own; a killed
    ingest leaves every table at its previous or its new version, and its rerun completes it."""

    def sync(name: str, keys: list[str]) -> int:
        sync_table(spark, _unique(bronze, name, keys), config.table(name), keys)
        return spark.read.format("delta").load(config.table(name)).count()

    return concurrently(spark, {name: partial(sync, name, keys) for name, keys in BRONZE_TABLES.items()})


def replace_bronze(config: Config, bronze: Bronze) -> None:
    """Overwrite every bronze table of ``config``'s lake with this ingest's rows: for a lake that
    holds one batch (the scoring lake), where a MERGE and a row count per table would be the
    batch's largest fixed cost. The tables end as :func:`write_bronze` would leave them; they are
    written at once, as there."""
    spark = next(iter(bronze.tables.values())).sparkSession
    work = {
        name: partial(replace_table, _unique(bronze, name, keys), config.table(name), keys)
        for name, keys in BRONZE_TABLES.items()
    }
    concurrently(spark, work)


def _unique(bronze: Bronze, name: str, keys: list[str]) -> DataFrame:
    """Table ``name`` of ``bronze``, unique on its keys (a record can be quarantined by several
    checks under one key; every other table is unique by construction)."""
    df = bronze.tables[name]
    return df.dropDuplicates(keys) if name == "quarantine/rows" else df


@dataclass
class IngestRun:
    """What :func:`ingest_release` did: the input's fingerprint, and either when the same input was
    ingested before (skipped) or the rows read per file and written per table."""

    fingerprint: Fingerprint
    skipped_since: str | None
    rows_read: dict[str, int]
    written: dict[str, int]


def ingest_release(
    spark: SparkSession, config: Config, raw_dir: str, scraped_dir: str, force: bool = False
) -> IngestRun:
    """Ingest a release and its scraped tables into the bronze tables, unless the same input (by
    checksum, see :mod:`smp_spark.ingest.fingerprint`) was the last one ingested and no bronze
    table has been written since; ``force`` ingests anyway. A completed ingest is logged in
    ``bronze/ingest_log``."""
    release = find_release(spark, raw_dir)
    require_folder(spark, scraped_dir, "scraped tables", "paths.scraped")
    fingerprint = input_fingerprint(spark, config, release, scraped_dir)
    since = None if force else last_ingest(spark, config, fingerprint)
    if since is not None:
        return IngestRun(fingerprint, since, {}, {})
    bronze = build_bronze(spark, config, raw_dir, scraped_dir)
    written = write_bronze(spark, config, bronze)
    log_ingest(spark, config, fingerprint)
    return IngestRun(fingerprint, None, bronze.rows_read, written)


def quarantine_summary(spark: SparkSession, config: Config) -> list[tuple[str, str, int]]:
    """(source file, reason, rows) from the quarantine table: a small aggregate for the report."""
    q = spark.read.format("delta").load(config.table("quarantine/rows"))
    reason = F.regexp_replace("reason", r"\d+", "N")  # "first seen at record 12" -> "... N"
    rows = q.groupBy("source_file", F.concat_ws(": ", "field", reason).alias("why")).count()
    return [(r["source_file"], r["why"], r["count"]) for r in rows.orderBy("source_file", "why").collect()]
