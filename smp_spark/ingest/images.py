"""Post images -> ``bronze/images`` (one row per post) and quarantine rows for the bad ones.

The image path file lists, per post, either a local file relative to the release folder (the 2023
release: ``train/<Uid>/<Pid>.jpg``) or a Flickr URL (the 2019 release: no local image, status
``url``, every image feature null). Local files are read and checked inside Spark tasks
(``mapInPandas`` over the posts, never through the driver): the bytes' hash, the format, the size
as displayed (after the EXIF orientation), and a full decode at reduced size (JPEG DCT scaling), so
a truncated file is found here and not in the embedding stage. A missing, empty, undecodable,
truncated or oversized file (a decompression bomb: more pixels than ``ingest.max_image_pixels``,
checked from the header before any decode) gets a status and a quarantine row naming the post, the
file and the reason; the post itself keeps its row in ``bronze/posts``.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from typing import Iterator, Literal

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

Status = Literal["ok", "url", "missing", "empty", "not_image", "truncated", "too_large", "bad_path"]
OK: Status = "ok"
IMAGE_COLUMNS = (
    "Pid long, record_index long, path string, location string, status string, reason string, "
    "image_hash long, format string, width int, height int, orientation int, file_size long, file_mtime long"
)
STAT_COLUMNS = "Pid long, record_index long, path string, location string, file_size long, file_mtime long"
# statuses that depend on the file's bytes alone (a truncated or too large file is checked again,
# since ingest.max_image_pixels decides between the two)
REUSABLE: tuple[Status, ...] = ("ok", "not_image", "empty")
ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height on display
ORIENTATION_TAG = 0x0112


def resolve(folder: str, path: str) -> tuple[str | None, Status | None]:
    """Where a listed image lives: (location, None), or (None, ``url``/``bad_path``).

    Relative paths are under the release folder and may not leave it (``../`` is refused)."""
    path = (path or "").strip()
    if path.startswith(("http://", "https://")):
        return None, "url"
    if not path or path.startswith("/") or ".." in posixpath.normpath(path).split("/"):
        return None, "bad_path"
    root = folder[len("file:") :] if folder.startswith("file:") and not folder.startswith("file://") else folder
    return posixpath.join(root.rstrip("/"), posixpath.normpath(path)), None


def read_bytes(location: str) -> bytes:
    """A file's bytes: a local path, or any URL fsspec knows (file://, hdfs://, s3://, ...)."""
    if "://" in location:
        import fsspec

        with fsspec.open(location, "rb") as f:
            return f.read()
    with open(location, "rb") as f:
        return f.read()


def size_and_time(location: str | None) -> tuple[int, int]:
    """A file's size and modification time in ns; (-1, -1) when there is none (missing, a URL or a
    refused path) or when its store gives no time."""
    try:
        if location and "://" in location:  # hdfs://, s3://, ...: through fsspec, as ingest reads them
            import fsspec

            info = fsspec.open(location).fs.info(location)
            return int(info.get("size", -1)), int(float(info.get("mtime", -1)) * 1e9)
        if location:
            found = os.stat(location)
            return found.st_size, found.st_mtime_ns
    except (OSError, ValueError):
        pass
    return -1, -1


def content_hash(data: bytes) -> int:
    """64-bit BLAKE2b of the bytes as a signed long: the embedding cache's key."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def inspect(data: bytes, max_pixels: int) -> dict:
    """Check one image file's bytes. Returns the ``bronze/images`` fields (``status`` and ``reason``
    say what is wrong, if anything): format, displayed width and height, EXIF orientation."""
    from PIL import Image, UnidentifiedImageError

    out = {"file_size": len(data), "image_hash": content_hash(data) if data else None}
    if not data:
        return {**out, "status": "empty", "reason": "empty file (0 bytes)"}
    Image.MAX_IMAGE_PIXELS = None  # our own limit below, checked before any pixel is decoded
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        return {**out, "status": "not_image", "reason": f"not an image (starts with {data[:12]!r})"}
    except Exception as exc:  # noqa: BLE001 - a corrupt header can raise anything
        return {**out, "status": "not_image", "reason": f"unreadable image header: {exc}"}
    width, height = image.size
    fmt = (image.format or "").lower()
    out.update(format=fmt, file_size=len(data))
    if width * height > max_pixels:
        reason = f"{width} x {height} = {width * height:,} pixels, over ingest.max_image_pixels={max_pixels:,}"
        return {**out, "status": "too_large", "reason": f"decompression bomb: {reason}"}
    try:
        orientation = int(image.getexif().get(ORIENTATION_TAG, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block: display as stored
        orientation = 1
    try:
        image.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # JPEG: decode at 1/8 scale
        image.load()
    except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError...
        return {**out, "status": "truncated", "reason": f"cannot decode the {fmt or 'image'} data: {exc}"}
    if orientation in ROTATED:
        width, height = height, width
    return {**out, "status": OK, "reason": None, "width": width, "height": height, "orientation": orientation}


def inspect_partition(folder: str, max_pixels: int) -> callable:
    """The ``mapInPandas`` function: ``Pid, record_index, path`` -> the ``bronze/images`` rows."""

    def rows(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            out = []
            for pid, index, path in zip(frame["Pid"], frame["record_index"], frame["path"]):
                location, status = resolve(folder, path)
                row = {"Pid": pid, "record_index": index, "path": path, "location": location}
                if status == "url":
                    row.update(status="url", reason=None)
                elif status == "bad_path":
                    row.update(status="bad_path", reason="an image path must be relative and stay in the release")
                else:
                    try:
                        row["file_mtime"] = size_and_time(location)[1]  # before the read: a later change shows
                        row.update(inspect(read_bytes(location), max_pixels))
                    except FileNotFoundError:
                        row.update(status="missing", reason="file not found")
                    except (IsADirectoryError, PermissionError, OSError) as exc:
                        row.update(status="missing", reason=f"cannot read the file: {exc}")
                out.append(row)
            # object columns: a None beside 64-bit hashes would otherwise make a float64 column and round them
            yield pd.DataFrame(out, columns=[c.split()[0] for c in IMAGE_COLUMNS.split(", ")], dtype=object)

    return rows


def stat_partition(folder: str) -> callable:
    """The ``mapInPandas`` function: ``Pid, record_index, path`` -> where each file is, its size
    and its modification time (``STAT_COLUMNS``; -1 for no file)."""

    def rows(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            locations = [resolve(folder, path)[0] for path in frame["path"]]
            stats = [size_and_time(location) for location in locations]
            yield frame.assign(location=locations, file_size=[s for s, _ in stats], file_mtime=[t for _, t in stats])

    return rows


def image_rows(
    posts: DataFrame, folder: str, max_pixels: int, previous: DataFrame | None = None, rows_per_task: int = 20_000
) -> DataFrame:
    """``bronze/images``: one row per post of ``posts`` (``Pid``, ``record_index``, ``img_path``).

    Input: bronze posts, the release folder and, when the lake has one, the ``bronze/images`` of
    the last ingest (``previous``). Output: ``Pid, record_index, path, location, status, reason,
    image_hash, format, width, height`` (as displayed), ``orientation, file_size, file_mtime``;
    every field but the first five null unless the file could be read. Window: the post itself.

    With ``previous``, a post whose file has the same path, size and modification time as at the
    last ingest keeps that ingest's row (the checks below depend on the bytes alone), so a release
    that grew by a day's posts reads only the new files; every other file is read and checked.
    Read in tasks of about ``rows_per_task`` posts, so progress shows per task."""
    selected = posts.select("Pid", "record_index", F.col("img_path").alias("path"))
    tasks = max(2, int(selected.count() // rows_per_task) + 1)
    inspect_all = inspect_partition(folder, max_pixels)
    if previous is None or "file_mtime" not in previous.columns:
        return selected.repartition(tasks, "Pid").mapInPandas(inspect_all, IMAGE_COLUMNS)
    # materialised: both the reuse join and the files left to read need it (one stat per file)
    stats = selected.repartition(tasks, "Pid").mapInPandas(stat_partition(folder), STAT_COLUMNS).localCheckpoint()
    keys = ["Pid", "path", "location", "file_size", "file_mtime"]
    known = previous.drop("record_index").filter(
        (F.col("file_mtime") >= 0)
        & F.col("status").isin(*REUSABLE)
        & (F.col("width").isNull() | (F.col("width").cast("long") * F.col("height") <= max_pixels))
    )
    names = [c.split()[0] for c in IMAGE_COLUMNS.split(", ")]
    reused = stats.join(known, keys, "inner").select(*names)
    fresh = stats.join(known.select(*keys), keys, "left_anti").select("Pid", "record_index", "path")
    return reused.unionByName(fresh.mapInPandas(inspect_all, IMAGE_COLUMNS))


def image_quarantine(images: DataFrame, release: str, source_file: str) -> DataFrame:
    """A quarantine row per post whose listed local image is unusable: the file, the reason and
    the post (Pid) in ``reason``; the path as ``value``; the user when ``images`` has ``Uid``."""
    bad = images.filter(~F.col("status").isin(OK, "url"))
    file = F.coalesce(F.col("location"), F.col("path"))
    uid = F.col("Uid") if "Uid" in images.columns else F.lit(None).cast("string")
    return bad.select(
        F.lit(release).alias("release"),
        F.lit(source_file).alias("source_file"),
        F.col("record_index"),
        F.col("Pid"),
        uid.alias("Uid"),
        F.lit("image").alias("field"),
        F.concat(
            F.lit("post "),
            F.col("Pid").cast("string"),
            F.lit(": "),
            F.col("status"),
            F.lit(": "),
            F.col("reason"),
            F.lit(" ("),
            file,
            F.lit(")"),
        ).alias("reason"),
        F.col("path").alias("value"),
    )
