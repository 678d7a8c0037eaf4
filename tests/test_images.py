"""Images: ingest into bronze/images with quarantine, and the image feature family."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from smp_spark.features.image import FORMATS, image_metadata
from smp_spark.ingest import build_bronze, ingest_release
from smp_spark.ingest.images import inspect, resolve
from tests.image_fixture import jpeg, png, png_bomb, write
from tests.smpd_fixture import make_post, write_release, write_status

BAD = {  # post index -> (file content, the status ingest must give it)
    2: (None, "missing"),
    3: ("truncated", "truncated"),
    4: (b"<html><body>404 Not Found</body></html>", "not_image"),
    5: (b"", "empty"),
    6: (png_bomb(), "too_large"),
}


def test_inspect_reads_the_size_as_displayed():
    stored_landscape = jpeg(120, 80, orientation=6)  # a portrait photo stored rotated
    found = inspect(stored_landscape, 10**8)
    assert (found["status"], found["width"], found["height"], found["orientation"]) == ("ok", 80, 120, 6)
    plain = inspect(jpeg(120, 80), 10**8)
    assert (plain["width"], plain["height"], plain["orientation"], plain["format"]) == (120, 80, 1, "jpeg")
    assert inspect(png(50, 40), 10**8)["format"] == "png"
    assert found["file_size"] == len(stored_landscape) and found["image_hash"] != plain["image_hash"]


def test_inspect_names_what_is_wrong():
    whole = jpeg(120, 80)
    assert inspect(whole[: len(whole) // 2], 10**8)["status"] == "truncated"
    bomb = inspect(png_bomb(), 10**8)
    assert bomb["status"] == "too_large" and "30000 x 30000" in bomb["reason"]
    assert inspect(png_bomb(200, 200), 30_000)["status"] == "too_large"  # the limit is the setting's
    assert inspect(b"GIF89a-not-really", 10**8)["status"] == "not_image"
    assert inspect(b"", 10**8) == {
        "file_size": 0,
        "image_hash": None,
        "status": "empty",
        "reason": "empty file (0 bytes)",
    }


def test_resolve_keeps_paths_inside_the_release():
    assert resolve("/data/train", "train/1@N0/5.jpg") == ("/data/train/train/1@N0/5.jpg", None)
    assert resolve("file:/data/train/", "a.jpg") == ("/data/train/a.jpg", None)
    assert resolve("/d", "https://www.flickr.com/photos/x/1") == (None, "url")
    assert resolve("/d", "../../etc/passwd") == (None, "bad_path")
    assert resolve("/d", "/etc/passwd") == (None, "bad_path")


@pytest.fixture
def image_release(lake_config):
    """Eight posts with local images: a landscape JPEG, a portrait stored rotated (EXIF 6), then a
    missing, truncated, not-an-image, empty and decompression-bomb file, and a PNG."""
    raw = Path(lake_config.path("raw"))
    posts = [make_post(i) for i in range(8)]
    good = {0: jpeg(300, 200), 1: jpeg(300, 200, orientation=6), 7: png(64, 96)}
    for i, post in enumerate(posts):
        relative = f"train/{post['Uid']}/{post['Pid']}.{'png' if i == 7 else 'jpg'}"
        content = good.get(i, BAD.get(i, (None,))[0])
        if content == "truncated":
            content = jpeg(300, 200)[:900]
        if content is not None:
            write(raw, relative, content)
        post["url"] = relative
    write_release(raw, posts)
    write_status(Path(lake_config.path("scraped")), [])
    return lake_config, posts


def test_ingest_images_quarantines_bad_files_and_keeps_their_posts(spark, image_release):
    from smp_spark.ingest.files import find_release
    from smp_spark.ingest.fingerprint import input_fingerprint

    cfg, posts = image_release
    raw = Path(cfg.path("raw"))
    for force in (False, True):  # a forced rerun changes nothing and duplicates nothing
        run = ingest_release(spark, cfg, cfg.path("raw"), cfg.path("scraped"), force=force)
        assert run.skipped_since is None
        images = {r.Pid: r for r in spark.read.format("delta").load(cfg.table("bronze/images")).collect()}
        quarantine = spark.read.format("delta").load(cfg.table("quarantine/rows")).filter(F.col("field") == "image")
        assert spark.read.format("delta").load(cfg.table("bronze/posts")).count() == 8
        assert len(images) == 8
        assert quarantine.count() == len(BAD)
    # the fingerprint counts the listed image files that exist; a rerun is skipped until one changes
    assert run.fingerprint.images == sum((raw / p["url"]).exists() for p in posts)
    assert ingest_release(spark, cfg, cfg.path("raw"), cfg.path("scraped")).skipped_since is not None
    write(raw, posts[0]["url"], jpeg(300, 200, colour=(10, 20, 30)))
    changed = input_fingerprint(spark, cfg, find_release(spark, cfg.path("raw")), cfg.path("scraped"))
    assert changed.digest != run.fingerprint.digest and changed.images == run.fingerprint.images
    statuses = {i: images[1000 + i].status for i in range(8)}
    assert statuses == {0: "ok", 1: "ok", 7: "ok", **{i: status for i, (_, status) in BAD.items()}}
    assert (images[1000].width, images[1000].height) == (300, 200)
    assert (images[1001].width, images[1001].height, images[1001].orientation) == (200, 300, 6)
    assert (images[1007].format, images[1007].width, images[1007].height) == ("png", 64, 96)
    assert images[1002].image_hash is None and images[1006].width is None
    for row in quarantine.collect():
        pid = 1000 + row.record_index
        assert row.source_file == "train_img_filepath.txt" and row.value == posts[row.record_index]["url"]
        assert row.reason.startswith(f"post {pid}: {BAD[row.record_index][1]}: ")
        assert row.reason.endswith(f"{Path(cfg.path('raw')) / posts[row.record_index]['url']})")

    # the next ingest reads again only the files whose size or time changed: post 0's (rewritten
    # above); post 7's bytes change too, but with its size and time put back it keeps its last row
    png_file = raw / posts[7]["url"]
    before, original = png_file.stat(), png_file.read_bytes()
    data = bytearray(original)
    data[-20] ^= 0xFF
    png_file.write_bytes(bytes(data))
    os.utime(png_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ingest_release(spark, cfg, cfg.path("raw"), cfg.path("scraped")).skipped_since is None
    again = {r.Pid: r for r in spark.read.format("delta").load(cfg.table("bronze/images")).collect()}
    rewritten = raw / posts[0]["url"]
    assert again[1000].image_hash == _blake2b(rewritten.read_bytes()) != images[1000].image_hash
    assert again[1000].file_mtime == rewritten.stat().st_mtime_ns
    assert again[1007].image_hash == images[1007].image_hash == _blake2b(original) != _blake2b(bytes(data))
    assert {pid: row.status for pid, row in again.items()} == {pid: row.status for pid, row in images.items()}


def _blake2b(data: bytes) -> int:
    """The 64-bit content hash, as bronze/images stores it (a signed long)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def test_image_metadata_keeps_not_available_apart_from_broken(spark):
    rows = spark.createDataFrame([(1,), (2,), (3,), (4,)], "Pid long")
    images = spark.createDataFrame(
        [
            (1, "ok", "jpeg", 300, 200, 4095),
            (2, "ok", "webp", 100, 400, 0),
            (3, "truncated", "jpeg", None, None, 900),
            (4, "url", None, None, None, None),
        ],
        "Pid long, status string, format string, width int, height int, file_size long",
    )
    got = {r.Pid: r for r in image_metadata(rows, images).collect()}
    assert (got[1].has_image, got[1].image_width, got[1].image_height, got[1].image_format) == (1, 300, 200, 0)
    assert got[1].image_aspect_ratio == pytest.approx(1.5)
    assert got[1].image_pixels_log == pytest.approx(11.0021, abs=1e-4)  # log1p(60,000)
    assert got[1].image_file_size_log == pytest.approx(8.3178, abs=1e-4)  # log1p(4,095)
    assert (got[2].image_format, got[2].image_aspect_ratio) == (FORMATS.index("webp"), 0.25)
    assert (got[3].has_image, got[3].image_width, got[3].image_file_size_log) == (0, None, None)
    assert (got[4].has_image, got[4].image_width, got[4].image_format) == (None, None, None)


def test_the_image_stage_encodes_each_content_once_and_nothing_on_a_rerun(spark, lake_config, tmp_path):
    from dataclasses import replace

    from smp_spark.features.image_embeddings import update_image_embeddings
    from smp_spark.features.image_model import encode_images
    from smp_spark.ingest.images import content_hash

    files = {1: jpeg(300, 200), 2: jpeg(300, 200), 3: jpeg(200, 300, colour=(30, 160, 60)), 4: b""}
    for pid, data in files.items():
        write(tmp_path, f"img/{pid}.jpg", data)

    def images(contents: dict[int, bytes]):
        rows = [
            (pid, "ok" if data else "empty", content_hash(data) if data else None, str(tmp_path / f"img/{pid}.jpg"))
            for pid, data in contents.items()
        ]
        return spark.createDataFrame(rows, "Pid long, status string, image_hash long, location string")

    cfg = replace(lake_config, features=replace(lake_config.features, image_resolution=96, image_precision="float32"))
    table = cfg.table("gold/image_embeddings")
    first = update_image_embeddings(spark, images(files), table, cfg)
    assert first == {"posts": 3, "encoded": 2, "failed": 0}  # posts 1 and 2 share their bytes; 4 is empty
    stored = {r.Pid: r for r in spark.read.format("delta").load(table).collect()}
    assert sorted(stored) == [1, 2, 3] and len(stored[1].class_scores) == 1000
    assert stored[1].class_scores == stored[2].class_scores != stored[3].class_scores
    direct, _ = encode_images([files[3]], 96, "float32", 8)  # the stored row holds the model's float32 scores
    assert np.allclose(stored[3].class_scores, direct[0], rtol=1e-5, atol=1e-6)
    assert update_image_embeddings(spark, images(files), table, cfg) == {"posts": 3, "encoded": 0, "failed": 0}
    files[3] = jpeg(200, 300, colour=(200, 200, 30))  # a changed image: only it is encoded again
    write(tmp_path, "img/3.jpg", files[3])
    assert update_image_embeddings(spark, images(files), table, cfg)["encoded"] == 1
    assert spark.read.format("delta").load(table).count() == 3
    # another resolution gives other scores: every image again, and the rows say which
    smaller = replace(cfg, features=replace(cfg.features, image_resolution=64))
    assert update_image_embeddings(spark, images(files), table, smaller) == {"posts": 3, "encoded": 2, "failed": 0}
    again = {r.Pid: r for r in spark.read.format("delta").load(table).collect()}
    assert {r.encoder for r in again.values()} == {"EfficientNet-Lite0 64px float32"}
    assert again[1].class_scores != stored[1].class_scores
    # so does another precision (bfloat16 keeps the first layers in float32: the encoder says so)
    bf16 = replace(smaller, features=replace(smaller.features, image_precision="bfloat16"))
    assert update_image_embeddings(spark, images(files), table, bf16) == {"posts": 3, "encoded": 2, "failed": 0}
    rows = {r.Pid: r for r in spark.read.format("delta").load(table).collect()}
    encoder = "EfficientNet-Lite0 64px bfloat16 (stem and 2 blocks float32, OpenVINO)"
    assert {r.encoder for r in rows.values()} == {encoder}
    assert rows[1].class_scores != again[1].class_scores


def test_a_2023_release_with_the_2019_url_list_gets_images_and_photo_ids(spark, lake_config):
    raw = Path(lake_config.path("raw"))
    posts = [make_post(i) for i in range(3)]
    write_release(raw, posts)  # train_img_filepath.txt: the Flickr URLs
    local = [write(raw, f"train/{p['Uid']}/{p['Pid']}.jpg", jpeg(90, 60)) for p in posts]
    (raw / "train_img_path.txt").write_text("".join(f"{path}\n" for path in local))
    write_status(Path(lake_config.path("scraped")), [])
    bronze = build_bronze(spark, lake_config, str(raw), lake_config.path("scraped"))
    got = {r.Pid: r for r in bronze.tables["bronze/posts"].collect()}
    assert {p: (r.img_path, r.img_url, r.flickr_photo_id) for p, r in got.items()} == {
        int(p["Pid"]): (path, p["url"], p["url"].rsplit("/", 1)[-1]) for p, path in zip(posts, local)
    }
    assert {r.status for r in bronze.tables["bronze/images"].collect()} == {"ok"}
    assert "train_img_path.txt" in bronze.rows_read
