"""Ingest: SMPD release files -> bronze Delta tables and quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from smp_spark.errors import InputError
from smp_spark.ingest import BRONZE_TABLES, build_bronze, ingest_release
from tests.smpd_fixture import make_post, write_groups, write_release, write_status


def ingest(spark, cfg, force=False):
    run = ingest_release(spark, cfg, cfg.path("raw"), cfg.path("scraped"), force=force)
    assert run.skipped_since is None
    return {name: spark.read.format("delta").load(cfg.table(name)) for name in BRONZE_TABLES}


def quarantined(tables) -> set[tuple]:
    return {(r.source_file, r.record_index, r.field, r.reason) for r in tables["quarantine/rows"].collect()}


@pytest.fixture(scope="module")
def release(spark, tmp_path_factory):
    """Five good posts with their scraped tables, ingested once for this module's first two tests."""
    from smp_spark.config import load_config

    root = tmp_path_factory.mktemp("release")
    folders = ("lake", "raw", "raw_test", "scraped", "scraped_test", "reports", "models")
    lake_config = load_config("test", [f"paths.{k}={root / k}" for k in folders])
    posts = [make_post(i) for i in range(5)]
    write_release(Path(lake_config.path("raw")), posts)
    write_groups(
        Path(lake_config.path("scraped")),
        [
            ("385070000", "76535076@N00", "Flickr Addicts", "138259", "9041713"),
            ("385070000", "11@N01", "Dogs", "500", "2000"),
            ("385070001", "11@N01", "Dogs", "501", "2001"),
            ("999999999", "11@N01", "Dogs", "501", "2001"),  # unknown photo
        ],
    )
    write_status(
        Path(lake_config.path("scraped")),
        [
            ("385070000", "ok", "2023-05-01T00:00:00"),
            ("385070001", "ok", "2023-05-01T00:00:00"),
            ("385070002", "ok", "2023-05-01T00:00:00"),
            ("385070003", "failed", "2023-05-01T00:00:00"),
        ],
    )
    return lake_config, posts, ingest(spark, lake_config)


def test_good_release_builds_every_table(spark, release):
    cfg, posts, tables = release
    got = {r.Pid: r for r in tables["bronze/posts"].collect()}
    assert sorted(got) == [1000, 1001, 1002, 1003, 1004]
    assert got[1002].label == pytest.approx(5.5)
    assert got[1002].flickr_photo_id == "385070002"
    assert got[1002].Postdate == 1_450_000_000 + 2 * 3600
    assert got[1000].Pathalias is None  # "None" means absent
    users = {r.Uid: r for r in tables["bronze/users"].collect()}
    assert len(users) == 3
    assert list(users["100@N00"].user_description) == pytest.approx([0.1, -0.2, 0.3])
    assert users["100@N00"].location_description is None
    assert tables["bronze/post_groups"].count() == 3
    groups = {r.group_id: r for r in tables["bronze/groups"].collect()}
    assert groups["11@N01"].member_count == 501 and groups["11@N01"].observations == 2
    status = {r.Pid: r.status for r in tables["bronze/scrape_status"].collect()}
    assert status == {1000: "ok", 1001: "ok", 1002: "ok", 1003: "failed"}
    assert quarantined(tables) == {("group_meta_0_to_10.csv", 3, "imgid", "imgid matches no ingested post's photo id")}


def test_rerun_is_idempotent_and_skipped_while_the_input_is_unchanged(spark, release):
    from smp_spark.ingest.files import find_release
    from smp_spark.ingest.fingerprint import input_fingerprint, last_ingest
    from smp_spark.lake import sync_table, table_version

    cfg, _, tables = release
    first = {n: sorted(map(tuple, df.drop("_row_hash").collect()), key=str) for n, df in tables.items()}
    versions = {n: table_version(spark, cfg.table(n)) for n in BRONZE_TABLES}
    again = ingest(spark, cfg, force=True)  # a whole second ingest: the same rows, none twice
    assert first == {n: sorted(map(tuple, df.drop("_row_hash").collect()), key=str) for n, df in again.items()}
    # ... and no commit: no table had a row to change, so no file was rewritten
    assert {n: table_version(spark, cfg.table(n)) for n in BRONZE_TABLES} == versions
    # the same input again: skipped, naming the ingest it matches; nothing is written
    run = ingest_release(spark, cfg, cfg.path("raw"), cfg.path("scraped"))
    # 7 release files, 2 scraped CSV files
    assert run.skipped_since is not None and run.fingerprint.files == 9 and run.written == {}
    assert {n: table_version(spark, cfg.table(n)) for n in BRONZE_TABLES} == versions

    def current() -> object:
        return input_fingerprint(spark, cfg, find_release(spark, cfg.path("raw")), cfg.path("scraped"))

    # a changed scraped file changes the fingerprint: ingested again
    status = Path(cfg.path("scraped")) / "photo_status.csv"
    original = status.read_bytes()
    status.write_bytes(original.replace(b"failed", b"gone", 1))
    assert current().digest != run.fingerprint.digest
    status.write_bytes(original)
    assert current() == run.fingerprint
    # a bronze table written after the logged ingest (here a sync without one of its posts): no longer current
    posts = cfg.table("bronze/posts")
    rows = spark.read.format("delta").load(posts).drop("_row_hash")
    n, first_pid = rows.count(), rows.agg(F.min("Pid")).first()[0]
    sync_table(spark, rows.filter(F.col("Pid") != first_pid), posts, ["Pid"])
    assert spark.read.format("delta").load(posts).count() == n - 1
    assert last_ingest(spark, cfg, run.fingerprint) is None


def broken_release(folder: Path) -> tuple[list[dict], dict[int, tuple[str, str, str]]]:
    """Ten good posts, then one post per validation rule, each broken in one field.

    Returns the posts and, per broken record index, the (file, field, reason) it must produce.
    """
    posts = [make_post(i) for i in range(10)]
    expect = {}

    def broken(file: str, field: str, reason: str, **changes):
        post = make_post(len(posts))
        for key, value in changes.items():
            if value is None:
                del post[key]
            else:
                post[key] = value
        expect[len(posts)] = (file, field, reason)
        posts.append(post)

    ts, user = "train_temporalspatial_information.json", "train_user_data.json"
    broken(ts, "Postdate", "missing required field", Postdate=None)
    broken(ts, "Postdate", "not a number", Postdate="14500000x0")
    broken(ts, "Postdate", "out of range [946684800, 1893456000]", Postdate="123")
    broken(ts, "Latitude", "out of range [-90, 90]", Latitude="95.5")
    broken(ts, "Longitude", "out of range [-180, 180]", Longitude="-181")
    broken(ts, "Geoaccuracy", "out of range [0, 16]", Geoaccuracy="17")
    broken(user, "photo_count", "not a number", photo_count="many")
    broken(user, "photo_count", "not a whole number", photo_count="12.5")
    broken(user, "ispro", "out of range [0, 1]", ispro="2")
    broken(user, "user_description", "not a comma-separated list of numbers", user_description="0.1,x")
    broken("train_additional_information.json", "Ispublic", "not a number", Ispublic="yes")
    broken("train_label.txt", "label", "not a number", label="n/a")
    broken("train_label.txt", "label", "out of range [0, 30]", label="-1.00")
    write_release(folder, posts)
    # a Pid that differs between two files at the same row, and a Uid missing from one file
    text = json.loads((folder / "train_text.json").read_text())
    text[3]["Pid"] = "424242"
    (folder / "train_text.json").write_text(json.dumps(text))
    category = json.loads((folder / "train_category.json").read_text())
    del category[5]["Uid"]
    (folder / "train_category.json").write_text(json.dumps(category))
    expect[5] = ("train_category.json", "Uid", "missing required field")
    expect[3] = (
        "train_category.json",
        "Pid",
        "Pid differs between files at this row: train_text.json has 424242, train_category.json has 1003",
    )
    # a duplicate of post 0 at the end
    dup = make_post(0)
    posts.append(dup)
    for stem in ("category", "text", "temporalspatial_information", "user_data", "additional_information"):
        path = folder / f"train_{stem}.json"
        records = json.loads(path.read_text())
        records.append(dict(records[0]))
        path.write_text(json.dumps(records))
    with open(folder / "train_img_filepath.txt", "a") as f:
        f.write(dup["url"] + "\n")
    with open(folder / "train_label.txt", "a") as f:
        f.write(dup["label"] + "\n")
    expect[len(posts) - 1] = ("train_category.json", "Pid", "duplicate Pid; first seen at record 0")
    return posts, expect


def test_every_bad_record_is_quarantined_with_file_field_and_reason(spark, lake_config):
    raw, scraped = Path(lake_config.path("raw")), Path(lake_config.path("scraped"))
    posts, expect = broken_release(raw)
    write_groups(
        scraped,
        [
            ("385070000", "1@N01", "Dogs", "10", "20"),
            ("385070001", "1@N01", "Dogs", "ten", "20"),  # bad member_count
            ("385070002", "", "Dogs", "10", "20"),  # missing group_id
            ("385070004", "1@N01", "Dogs", "10", "20", "extra"),  # malformed row
        ],
    )
    write_status(scraped, [("385070000", "ok", ""), ("385070001", "maybe", "")])
    tables = ingest(spark, lake_config)
    q = quarantined(tables)
    for index, (file, field, reason) in expect.items():
        assert (file, index, field, reason) in q, (index, file, field, reason)
    assert ("group_meta_0_to_10.csv", 1, "member_count", "not a number") in q
    assert ("group_meta_0_to_10.csv", 2, "group_id", "missing required field") in q
    assert any(f == "group_meta_0_to_10.csv" and i == 3 and fld == "row" for f, i, fld, _ in q)
    assert ("photo_status.csv", 1, "status", "unknown status (expected one of ok, not_found, failed)") in q
    good = {int(p["Pid"]) for i, p in enumerate(posts) if i not in expect}
    assert {r.Pid for r in tables["bronze/posts"].collect()} == good
    assert len(q) == len(expect) + 4  # nothing else was quarantined, nothing silently dropped


def test_label_file_one_line_short_fails_naming_the_file(spark, lake_config):
    raw = Path(lake_config.path("raw"))
    write_release(raw, [make_post(i) for i in range(5)])
    (raw / "train_label.txt").write_text("5.00\n5.25\n5.50\n5.75\n")
    Path(lake_config.path("scraped")).mkdir()
    with pytest.raises(InputError, match=r"train_label.txt has 4 records but train_category.json has 5"):
        build_bronze(spark, lake_config, lake_config.path("raw"), lake_config.path("scraped"))


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda raw: (raw / "train_text.json").write_text('[{"Uid": "1@N00", "Pid": "1"}, {"Uid": '),
            r"train_text.json is not a complete JSON list",
        ),
        (lambda raw: (raw / "train_category.json").write_text(""), r"train_category.json is empty"),
        (lambda raw: (raw / "train_user_data.json").unlink(), r"missing train_user_data.json"),
    ],
)
def test_whole_file_failures_name_the_file_and_the_fix(spark, lake_config, damage, message):
    raw = Path(lake_config.path("raw"))
    write_release(raw, [make_post(i) for i in range(3)])
    Path(lake_config.path("scraped")).mkdir()
    damage(raw)
    with pytest.raises(InputError, match=message):
        build_bronze(spark, lake_config, lake_config.path("raw"), lake_config.path("scraped"))


def test_wrong_folder_names_the_config_key(spark, lake_config):
    with pytest.raises(InputError, match=r"SMPD release folder not found: .*paths.raw"):
        build_bronze(spark, lake_config, "/no/such/folder", lake_config.path("scraped"))


def test_naming_variants_and_test_release_without_labels(spark, lake_config):
    raw = Path(lake_config.path("raw"))
    posts = [make_post(i) for i in range(4)]
    write_release(raw, posts, prefix="test", labels=False, temporal_name="temporalspatial", img_name="img_path")
    Path(lake_config.path("scraped")).mkdir()
    bronze = build_bronze(spark, lake_config, str(raw), lake_config.path("scraped"))
    rows = bronze.tables["bronze/posts"].collect()
    assert sorted(r.Pid for r in rows) == [1000, 1001, 1002, 1003]
    assert {r.release for r in rows} == {"test"} and {r.label for r in rows} == {None}
    assert set(bronze.rows_read) == {
        "test_category.json",
        "test_text.json",
        "test_temporalspatial.json",
        "test_user_data.json",
        "test_additional_information.json",
        "test_img_path.txt",
    }


def test_numbers_nulls_and_empty_strings_are_accepted(spark, lake_config):
    raw = Path(lake_config.path("raw"))
    write_release(raw, [make_post(i) for i in range(2)])
    users = json.loads((raw / "train_user_data.json").read_text())
    users[0].update(
        {
            "Pid": 1000,
            "photo_count": 1813.0,
            "ispro": 0.0,
            "photo_firstdate": None,
            "photo_firstdatetaken": "2013-04-02 17:52:16",
            "timezone_offset": "",
        }
    )
    (raw / "train_user_data.json").write_text(json.dumps(users))
    Path(lake_config.path("scraped")).mkdir()
    bronze = build_bronze(spark, lake_config, str(raw), lake_config.path("scraped"))
    user = {r.Uid: r for r in bronze.tables["bronze/users"].collect()}["100@N00"]
    assert (user.photo_count, user.ispro, user.photo_firstdate, user.timezone_offset) == (1813, 0, None, None)
    assert user.photo_firstdatetaken == "2013-04-02 17:52:16"
    assert bronze.tables["quarantine/rows"].count() == 0


def test_concurrently_returns_every_result_and_raises_the_first_failure_in_order(spark):
    from smp_spark.errors import InputError
    from smp_spark.session import concurrently

    ran = []
    spark.sparkContext.setLocalProperty("smp.test.owner", "ingest")
    try:

        def job(n: int):
            ran.append(n)
            return spark.range(n).count(), spark.sparkContext.getLocalProperty("smp.test.owner")

        results = concurrently(spark, {"a": lambda: job(3), "b": lambda: job(5)})
        assert results == {"a": (3, "ingest"), "b": (5, "ingest")}

        def fail(error: Exception):
            ran.append(str(error))
            raise error

        work = {"x": lambda: job(1), "y": lambda: fail(InputError("y")), "z": lambda: fail(ValueError("z"))}
        work["w"] = lambda: job(2)
        with pytest.raises(InputError, match="^y$"):
            concurrently(spark, work)
        assert sorted(map(str, ran)) == ["1", "2", "3", "5", "y", "z"]  # every piece ran to its end
    finally:
        spark.sparkContext.setLocalProperty("smp.test.owner", None)
