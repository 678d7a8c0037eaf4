"""What an ingest read, as one digest: a rerun on the same input is skipped, and says so.

Input: a release folder, its scraped tables' folder and the ``ingest`` settings. Output: a
:class:`Fingerprint`, logged in ``bronze/ingest_log`` with the version each bronze table was left
at. Window: none (files, not posts).

- The release's files and the scraped CSV files are hashed whole (SHA-256), streamed by the
  driver's JVM through Hadoop's FileSystem, so any path ingest can read (local, HDFS, S3) works.
  Single node: about 1.3 GB at 680K posts, a few seconds.
- The image files a release lists (hundreds of thousands) are not read again: their size and
  modification time, taken in Spark tasks, go into the digest, with the list file's own checksum.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.ingest.files import SECOND_IMAGE_LIST, Release, hadoop_path, list_files
from smp_spark.ingest.images import resolve, size_and_time
from smp_spark.lake import read_table, table_version


@dataclass(frozen=True)
class Fingerprint:
    digest: str
    files: int  # release and scraped files hashed whole
    bytes: int  # their size
    images: int  # image files listed and found (by size and modification time)

    def describe(self) -> str:
        return (
            f"{self.files} files ({self.bytes / 1e6:,.1f} MB) by SHA-256 and {self.images:,} image files by "
            f"size and modification time"
        )


def file_checksum(spark: SparkSession, path: str) -> str:
    """SHA-256 of one file, computed in the driver's JVM (commons-codec, on Spark's classpath)."""
    fs, hpath = hadoop_path(spark, path)
    stream = fs.open(hpath)
    try:
        return spark.sparkContext._jvm.org.apache.commons.codec.digest.DigestUtils.sha256Hex(stream)
    finally:
        stream.close()


def _stat_partition(folder: str):
    """``mapInPandas``: an image list's lines -> ``value, size, mtime``."""

    def rows(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            stats = [size_and_time(resolve(folder, line)[0]) for line in frame["value"]]
            yield frame.assign(size=[s for s, _ in stats], mtime=[t for _, t in stats])

    return rows


def _image_digest(spark: SparkSession, release: Release) -> tuple[str, int]:
    """One digest of every listed image file's size and time, and how many were found; the
    files are statted in Spark tasks, never through the driver."""
    listing = release.files.get(SECOND_IMAGE_LIST, release.files["img"])
    lines = spark.read.text(listing.path).repartition(max(2, spark.sparkContext.defaultParallelism))
    stats = lines.mapInPandas(_stat_partition(release.folder), "value string, size long, mtime long")
    # each listed path once: a path listed twice would otherwise cancel itself out of the XOR
    row = (
        stats.dropDuplicates(["value"])
        .agg(
            F.expr("bit_xor(xxhash64(value, size, mtime))").alias("digest"),
            F.sum(F.when(F.col("size") >= 0, 1).otherwise(0)).alias("found"),
        )
        .first()
    )
    return str(row["digest"]), int(row["found"] or 0)


def input_fingerprint(spark: SparkSession, config: Config, release: Release, scraped_dir: str) -> Fingerprint:
    """The digest of everything one ingest reads (see the module docstring) and its settings."""
    files = sorted(release.files.values(), key=lambda f: f.name) + list_files(spark, scraped_dir, "*.csv")
    digest = hashlib.sha256()
    digest.update(json.dumps({"raw": release.folder, "scraped": scraped_dir, "ingest": asdict(config.ingest)}).encode())
    for info in files:
        digest.update(f"{info.name}:{info.size}:{file_checksum(spark, info.path)}\n".encode())
    images, found = _image_digest(spark, release)
    digest.update(f"images:{images}:{found}".encode())
    return Fingerprint(digest.hexdigest(), len(files), sum(f.size for f in files), found)


def last_ingest(spark: SparkSession, config: Config, fingerprint: Fingerprint) -> str | None:
    """When an ingest of exactly this input last completed, if no bronze table has been written
    since (each is at the version that ingest left it at); else None. A crash between two bronze
    tables never logs, so a half-written lake is never taken for current."""
    log = config.table(catalog.INGEST_LOG.name)
    if not DeltaTable.isDeltaTable(spark, log):
        return None
    last = read_table(spark, log).orderBy(F.col("ingested_at").desc()).first()
    if last is None or last["fingerprint"] != fingerprint.digest:
        return None
    versions = json.loads(last["table_versions"])
    for table in catalog.BRONZE:
        path = config.table(table.name)
        if not DeltaTable.isDeltaTable(spark, path) or table_version(spark, path) != versions.get(table.name):
            return None
    return str(last["ingested_at"])


def log_ingest(spark: SparkSession, config: Config, fingerprint: Fingerprint) -> None:
    """Append the completed ingest to ``bronze/ingest_log``: its fingerprint and the version it
    left each bronze table at."""
    versions = {t.name: table_version(spark, config.table(t.name)) for t in catalog.BRONZE}
    row = spark.createDataFrame(
        [(fingerprint.digest, fingerprint.files, fingerprint.bytes, fingerprint.images, json.dumps(versions))],
        "fingerprint string, files int, bytes long, images long, table_versions string",
    ).withColumn("ingested_at", F.current_timestamp())
    row.write.format("delta").mode("append").save(config.table(catalog.INGEST_LOG.name))
