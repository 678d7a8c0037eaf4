"""The scraper's Delta tables -> the CSV files ``smp_spark.ingest`` reads (docs/data.md §2).

- ``group_meta_flickr.csv``: ``imgid,group_id,title,member_count,pool_count``, a row per (photo, group);
- ``photo_status_flickr.csv``: ``imgid,status,scraped_at``, a row per scraped photo;
- ``user_meta_flickr.csv``: ``Uid,contacts_count,public_groups_count,scraped_at`` (owners scraped).

A photo is exported ``ok`` only when every one of its groups has its counts: if a group's info
failed or the group vanished, the photo is exported ``failed`` (never ``ok`` with fewer groups), so
"no group rows" keeps meaning "in no groups" for ``ok`` photos. Photos never scraped get no row.
Files are written with Python's csv module (the quoting ingest expects) to a temporary name and
renamed, so a reader never sees half a file. The folder must be local.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.errors import InputError
from smp_spark.scrape import store
from smp_spark.scrape.flickr import FAILED, OK

FILES = {
    "group_meta": "group_meta_flickr.csv",
    "photo_status": "photo_status_flickr.csv",
    "user_meta": "user_meta_flickr.csv",
}
HEADERS = {
    "group_meta": ["imgid", "group_id", "title", "member_count", "pool_count"],
    "photo_status": ["imgid", "status", "scraped_at"],
    "user_meta": ["Uid", "contacts_count", "public_groups_count", "scraped_at"],
}
ISO_UTC = "yyyy-MM-dd'T'HH:mm:ss'Z'"


def iso_utc(spark: SparkSession, column: str):
    """A timestamp column as ``2023-09-04T08:00:37Z`` whatever the session time zone."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    return F.date_format(F.to_utc_timestamp(F.col(column), zone), ISO_UTC)


def export_status(photos: DataFrame, groups: DataFrame) -> DataFrame:
    """Per scraped photo: ``imgid, status, scraped_at`` (timestamp), ``demoted``: ``ok`` turned
    ``failed`` because one of its groups has no ``ok`` info row."""
    ok_groups = groups.filter(F.col("status") == OK).select("group_id", F.lit(True).alias("_has_info"))
    incomplete = (
        photos.filter(F.col("status") == OK)
        .select("imgid", F.explode("group_ids").alias("group_id"))
        .join(ok_groups, "group_id", "left")
        .filter(F.col("_has_info").isNull())
        .select("imgid")
        .distinct()
        .withColumn("_incomplete", F.lit(True))
    )
    status = F.when(F.col("_incomplete"), F.lit(FAILED)).otherwise(F.col("status"))
    return photos.join(incomplete, "imgid", "left").select(
        "imgid", status.alias("status"), "scraped_at", F.col("_incomplete").isNotNull().alias("demoted")
    )


def export_group_meta(photos: DataFrame, groups: DataFrame, status: DataFrame) -> DataFrame:
    """A row per (photo exported ``ok``, group) with the group's title and counts."""
    ok_photos = status.filter(F.col("status") == OK).select("imgid")
    return (
        photos.join(ok_photos, "imgid")
        .select("imgid", F.posexplode("group_ids").alias("position", "group_id"))
        .join(groups.filter(F.col("status") == OK), "group_id")
        .select("imgid", "group_id", "title", "member_count", "pool_count", "position")
    )


def export_user_meta(photos: DataFrame, owners: DataFrame) -> DataFrame:
    """A row per SMPD Uid whose owner's stats were scraped ``ok`` (Uids come from bronze input)."""
    uids = photos.filter(F.col("Uid").isNotNull()).select("Uid", "owner").distinct()
    return uids.join(owners.filter(F.col("status") == OK), "owner").select(
        "Uid", "contacts_count", "public_groups_count", "scraped_at"
    )


@dataclass
class Export:
    folder: str
    rows: dict[str, int]  # file name -> data rows written
    demoted: int  # photos scraped ok but exported failed because a group's info is missing


def _check_folder(folder: Path) -> None:
    """Refuse a folder that already holds scraped tables from elsewhere: ingest would read both."""
    ours = set(FILES.values())
    foreign = sorted(
        p.name
        for stem in FILES
        for p in folder.glob(f"{stem}*.csv")
        if p.name not in ours and not p.name.endswith(".tmp")
    )
    if foreign:
        raise InputError(
            f"{folder} already holds scraped tables not written by the scraper ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}): ingest would read both; export to an empty folder "
            "with --out DIR or --set paths.scraped=DIR"
        )


def _write_csv(path: Path, header: list[str], rows) -> int:
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            n += 1
    os.replace(tmp, path)
    return n


def write_export(spark: SparkSession, config: Config, folder: str) -> Export:
    """Write the ingest CSVs for everything scraped so far into the local ``folder``.

    Rows stream to the driver (``toLocalIterator``), never as one collected list.
    ``user_meta_flickr.csv`` is written only when owners were scraped.
    """
    if "://" in folder:
        raise InputError(f"the scrape export needs a local folder, got {folder}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    _check_folder(out)
    photos = store.read(spark, config, store.PHOTOS)
    groups = store.read(spark, config, store.GROUPS)
    status = export_status(photos, groups).localCheckpoint()
    frames = {
        "photo_status": status.select("imgid", "status", iso_utc(spark, "scraped_at").alias("scraped_at")),
        "group_meta": export_group_meta(photos, groups, status),
    }
    order = {"photo_status": ["imgid"], "group_meta": ["imgid", "position"], "user_meta": ["Uid"]}
    if store.exists(spark, config, store.OWNERS):
        owners = store.read(spark, config, store.OWNERS)
        frames["user_meta"] = export_user_meta(photos, owners).withColumn("scraped_at", iso_utc(spark, "scraped_at"))
    rows = {}
    for stem, df in frames.items():
        # one sorted partition: a stable file in a single pass (no range-partitioning sample job)
        ordered = df.coalesce(1).sortWithinPartitions(*order[stem]).select(*HEADERS[stem])
        rows[FILES[stem]] = _write_csv(out / FILES[stem], HEADERS[stem], ordered.toLocalIterator())
    return Export(str(out), rows, status.filter("demoted").count())
