"""The photos to scrape: Flickr photo ids, owner NSIDs and SMPD Uids, from a release or bronze/posts.

The scraper runs in the driver (one API key means one shared rate limit, so the calls cannot be
spread over executors), so the id list is brought to the driver: 305,613 short strings for the
real SMPD training release, a few tens of MB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.errors import InputError
from smp_spark.ingest.files import RELEASE_FILES, FileInfo, list_files, require_folder
from smp_spark.ingest.records import RECORD_INDEX, read_json_list

# https://www.flickr.com/photos/<owner nsid or path alias>/<photo id>[/...]
PHOTO_URL = r"flickr\.com/photos/([^/?#\s]+)/([0-9]+)"
PHOTO_URL_RE = re.compile(PHOTO_URL)


@dataclass(frozen=True)
class Photo:
    imgid: str  # the Flickr photo id
    owner: str | None  # the owner's NSID (or path alias) from the URL
    uid: str | None = None  # the SMPD Uid, known only when read from bronze/posts


@dataclass
class PhotoInput:
    """Distinct photos in input order, where they came from and what could not be used."""

    photos: list[Photo]
    source: str
    rows: int  # input rows read
    not_flickr_urls: int  # rows without a Flickr photo URL (nothing to scrape for them)
    duplicates: int  # repeated photo ids (scraped once)


def _url_parts(df: DataFrame, column: str) -> DataFrame:
    url = F.col(column)
    return df.withColumn("_owner", F.regexp_extract(url, PHOTO_URL, 1)).withColumn(
        "_imgid", F.regexp_extract(url, PHOTO_URL, 2)
    )


def _collect(df: DataFrame, source: str, uid: str | None) -> PhotoInput:
    """Distinct photos of ``df`` (columns ``_imgid``, ``_owner``, ordered by ``_order``), in one job."""
    cols = [F.col("_imgid"), F.col("_owner"), F.col(uid) if uid else F.lit(None).cast("string")]
    rows = df.orderBy("_order").select(*cols).collect()
    photos: dict[str, Photo] = {}
    usable = 0
    for imgid, owner, user in rows:
        if imgid:
            usable += 1
            photos.setdefault(imgid, Photo(imgid, owner or None, user))
    return PhotoInput(list(photos.values()), source, len(rows), len(rows) - usable, usable - len(photos))


def _no_urls(source: str) -> InputError:
    return InputError(
        f"{source} holds no Flickr photo URLs (https://www.flickr.com/photos/<owner>/<photo id>): "
        "the 2023 release's local image paths (train/<Uid>/<Pid>.jpg) carry no photo id; "
        "use the 2019 release's train_img_filepath.txt"
    )


def photos_from_file(spark: SparkSession, info: FileInfo, category: FileInfo | None = None) -> PhotoInput:
    """Photos of an SMPD image file (one URL per line, quotes allowed), in file order.

    With ``category`` (the release's ``*_category.json``) each photo also gets its post's SMPD
    Uid, matched by row position as ingest aligns the release files.
    """
    # textFile's splits follow the file's byte order, so a line's position in the result is its row
    lines = spark.sparkContext.textFile(info.path).collect()
    uids: dict[int, str] = {}
    if category is not None:
        uids = dict(read_json_list(spark, category, ["Uid"]).df.select(RECORD_INDEX, "Uid").collect())
    photos: dict[str, Photo] = {}
    usable = 0
    for row, line in enumerate(lines):
        url = PHOTO_URL_RE.search(line.strip().strip('"'))
        if url:
            usable += 1
            photos.setdefault(url.group(2), Photo(url.group(2), url.group(1), uids.get(row)))
    if not photos:
        raise _no_urls(info.path)
    return PhotoInput(list(photos.values()), info.path, len(lines), len(lines) - usable, usable - len(photos))


def release_files(spark: SparkSession, folder: str) -> tuple[FileInfo, FileInfo | None]:
    """The image-URL file of the SMPD release in ``folder`` (train_ or test_, either name variant)
    and its category file (None if absent)."""
    require_folder(spark, folder, "SMPD release", "paths.raw")
    for prefix in ("train", "test"):
        for pattern in RELEASE_FILES["img"]:
            hits = list_files(spark, folder, pattern.format(p=prefix))
            if hits:
                category = list_files(spark, folder, RELEASE_FILES["category"][0].format(p=prefix))
                return hits[0], (category[0] if category else None)
    names = " or ".join(p.format(p="train") for p in RELEASE_FILES["img"])
    raise InputError(f"{folder}: no {names} (point paths.raw at an SMPD release folder, or pass --input FILE)")


def input_file(spark: SparkSession, path: str) -> FileInfo:
    """``path`` as a :class:`FileInfo`, or an InputError naming it."""
    folder, _, name = path.rstrip("/").rpartition("/")
    hits = list_files(spark, folder or ".", name)
    if not hits:
        raise InputError(f"input file not found: {path}")
    return hits[0]


def photos_from_bronze(spark: SparkSession, config: Config) -> PhotoInput:
    """Photos of ``<lake>/bronze/posts`` in (release, record) order, with each post's SMPD Uid."""
    path = config.table("bronze/posts")
    if not DeltaTable.isDeltaTable(spark, path):
        raise InputError(f"no bronze/posts table at {path}: run `make ingest` first, or scrape from the files")
    posts = spark.read.format("delta").load(path)
    df = _url_parts(posts, "img_url").withColumn("_order", F.struct("release", "record_index"))
    found = _collect(df, path, "Uid")
    if not found.photos:
        raise _no_urls(path)
    return found
