"""Reliability: a corpus of bad inputs, reruns, a job killed mid-write, reproducible training and
configuration errors, through the real jobs where the process boundary is the point.

Row-level problems are checked in-process against the quarantine table. Whole-file failures and
missing folders run the real job scripts in one subprocess (one JVM start for all of them); config
errors fail before Spark starts, so each gets its own cheap subprocess.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from smp_spark.config import PROJECT_ROOT, load_config
from smp_spark.ingest import build_bronze, write_bronze
from smp_spark.ingest.pipeline import BRONZE_TABLES
from smp_spark.lake import read_table, table_version
from tests.smpd_fixture import make_post, write_groups, write_release, write_status

JOBS = PROJECT_ROOT / "jobs"
NO_GROUP = "imgid matches no ingested post's photo id"
INT_RANGE = "out of range [0, 9007199254740991]"  # Pid, counts: whole numbers a double holds exactly


def job_env() -> dict[str, str]:
    return {**os.environ, "SMP_CONF": "test", "PYTHONPATH": str(PROJECT_ROOT)}


def rows(df) -> list[tuple]:
    """A table's content, order-free: every row as a tuple, sorted."""
    return sorted(map(tuple, df.collect()), key=repr)


def lake_config_at(root: Path, **paths: Path):
    """The test profile with every folder under ``root`` (``paths`` overrides single folders)."""
    folders = {
        "raw": root / "raw",
        "raw_test": root / "raw_test",
        "scraped": root / "scraped",
        "scraped_test": root / "scraped_test",
        "lake": root / "lake",
        "reports": root / "reports",
        "models": root / "models",
        **paths,
    }
    return load_config("test", [f"paths.{k}={v}" for k, v in folders.items()])


# --- a corpus of bad rows: each quarantined with its reason, every good row kept ----------------------

C, T, TS = "train_category.json", "train_text.json", "train_temporalspatial_information.json"
U, A = "train_user_data.json", "train_additional_information.json"
L, IMG = "train_label.txt", "train_img_filepath.txt"
G, S, M = "group_meta_0_to_10.csv", "photo_status.csv", "user_meta.csv"
JSON_STEMS = {C: "category", T: "text", TS: "temporalspatial_information", U: "user_data", A: "additional_information"}
WITH_PID = [C, T, TS, U, A]  # the files whose records carry Pid (user_data's is optional)
DROP = object()  # remove the key from the record


def bad_row_corpus(raw: Path, scraped: Path) -> tuple[set[int], set[tuple]]:
    """Twenty good posts, then posts broken in one way each (not the cases of test_ingest.py), and
    scraped rows naming unknown photos and users. Returns the Pids that must reach bronze/posts and
    every (file, record, field, reason) that must reach quarantine/rows."""
    posts = [make_post(i) for i in range(20)]
    keep = {int(p["Pid"]) for p in posts}
    expect: set[tuple] = set()
    per_file: list[tuple[str, int, dict]] = []  # (file, record, changes) applied after writing

    def add(post: dict, *errors: tuple[str, str, str], file: str | None = None, **changes) -> int:
        index = len(posts)
        if file:
            per_file.append((file, index, changes))
        else:
            for key, value in changes.items():
                if value is DROP:
                    del post[key]
                else:
                    post[key] = value
        posts.append(post)
        expect.update((f, index, field, reason) for f, field, reason in errors)
        return index

    def new() -> dict:
        return make_post(len(posts))

    # missing keys
    add(new(), (C, "Category", "missing required field"), file=C, Category=DROP)
    add(new(), (C, "Concept", "missing required field"), file=C, Concept=DROP)
    add(new(), (U, "Uid", "missing required field"), file=U, Uid=DROP)
    unreadable = "missing required field (the post's Pid is unreadable in every file of this record)"
    add(new(), *[(f, "Pid", unreadable) for f in (C, T, TS, A)], Pid=DROP)  # optional in U
    # wrong JSON types: a bool, an object and an array where numbers belong
    add(new(), (TS, "Latitude", "not a number"), file=TS, Latitude=True)
    add(new(), (TS, "Postdate", "not a number"), file=TS, Postdate={"seconds": 1450000000})
    add(new(), (TS, "Geoaccuracy", "not a number"), file=TS, Geoaccuracy=[3])
    add(new(), (T, "Pid", "not a number"), file=T, Pid=[1000])
    add(new(), (A, "Ispublic", "not a whole number"), file=A, Ispublic=0.5)
    add(new(), (U, "user_description", "not a comma-separated list of numbers"), file=U, user_description={"x": 1})
    # out-of-range values (Pids beyond 2^53 used to be silently rounded or clamped to another Pid)
    add(new(), *[(f, "Pid", INT_RANGE) for f in WITH_PID], Pid="-5")
    add(new(), *[(f, "Pid", INT_RANGE) for f in WITH_PID], Pid="99999999999999999999")
    add(new(), *[(f, "Pid", INT_RANGE) for f in WITH_PID], Pid="9007199254740993")
    largest = new()
    add(largest, Pid="9007199254740991")  # the largest exact whole number: kept, digit for digit
    keep.add(9007199254740991)
    add(new(), (TS, "Postdate", "out of range [946684800, 1893456000]"), Postdate="1924992000")  # 2031
    add(new(), (TS, "Latitude", "out of range [-90, 90]"), Latitude="-90.000001")
    add(new(), (U, "timezone_offset", "out of range [-24, 24]"), timezone_offset="25")
    add(new(), (U, "canbuypro", "out of range [0, 1]"), canbuypro="-1")
    add(new(), (L, "label", "out of range [0, 30]"), label="30.01")
    add(new(), (L, "label", "not a finite number"), label="nan")
    # blank lines in the key-less files
    add(new(), (L, "label", "missing required field"), label="")
    add(new(), (IMG, "img_path", "missing required field"), url="")
    # duplicate Pids: the first good occurrence wins, later ones name it
    dup_a = add(make_post(0), (C, "Pid", "duplicate Pid; first seen at record 0"))
    dup_b = add(make_post(0), (C, "Pid", "duplicate Pid; first seen at record 0"))
    assert dup_a != dup_b
    twin = new()
    first = add(dict(twin), (TS, "Latitude", "out of range [-90, 90]"), Latitude="95")  # bad: quarantined
    add(dict(twin))  # the same post again, good: kept (its bad twin is in quarantine, not lost)
    keep.add(int(twin["Pid"]))
    assert first < len(posts) - 1

    write_release(raw, posts)
    for file, index, changes in per_file:
        path = raw / file
        records = json.loads(path.read_text())
        for key, value in changes.items():
            if value is DROP:
                del records[index][key]
            else:
                records[index][key] = value
        path.write_text(json.dumps(records))
    for name in (L, IMG):  # an editor's blank lines after the last line are not records
        with open(raw / name, "a") as f:
            f.write("\n \n")

    # scraped rows: unknown photos and users, a negative count, a row cut off mid-field
    write_groups(
        scraped,
        [
            ("385070000", "1@N01", "Dogs", "10", "20"),
            ("385070001", "1@N01", "Dogs", "11", "21"),
            ("123", "1@N01", "Dogs", "10", "20"),  # no post has this photo
            ("385070002", "2@N01", "Cats", "-3", "20"),
        ],
        name=G,
    )
    with open(scraped / G, "a") as f:
        f.write('385070003,2@N01,"Ca')  # the file ends inside a quoted field
    write_status(scraped, [("385070000", "ok", ""), ("385070001", "not_found", ""), ("555", "ok", "")], name=S)
    (scraped / M).write_text("Uid,contacts_count,public_groups_count,scraped_at\n100@N00,5,3,x\n999@N99,1,1,x\n")
    expect |= {
        (G, 2, "imgid", NO_GROUP),
        (G, 3, "member_count", INT_RANGE),
        (G, 4, "member_count", "missing required field"),
        (G, 4, "pool_count", "missing required field"),
        (G, 4, "row", "malformed CSV row (wrong number of fields or bad quoting)"),
        (S, 2, "imgid", NO_GROUP),
        (M, 1, "Uid", "Uid matches no ingested post's user"),
    }
    return keep, expect


def test_bad_row_corpus_is_quarantined_row_by_row_and_good_rows_are_kept(spark, lake_config):
    raw, scraped = Path(lake_config.path("raw")), Path(lake_config.path("scraped"))
    keep, expect = bad_row_corpus(raw, scraped)
    write_bronze(spark, lake_config, build_bronze(spark, lake_config, str(raw), str(scraped)))

    quarantine = read_table(spark, lake_config.table("quarantine/rows"))
    got = {(r.source_file, r.record_index, r.field, r.reason) for r in quarantine.collect()}
    assert got - expect == set(), "quarantined for no expected reason"
    assert expect - got == set(), "bad rows that were not quarantined"
    assert quarantine.filter("release = 'train'").count() == quarantine.count() == len(expect)
    values = {(r.source_file, r.field, r.value) for r in quarantine.collect()}
    assert {(TS, "Latitude", "true"), (C, "Pid", "99999999999999999999"), (L, "label", "nan")} <= values

    posts = read_table(spark, lake_config.table("bronze/posts"))
    assert {r.Pid for r in posts.collect()} == keep and posts.count() == len(keep)
    post_groups = {(r.Pid, r.group_id) for r in read_table(spark, lake_config.table("bronze/post_groups")).collect()}
    assert post_groups == {(1000, "1@N01"), (1001, "1@N01")}
    status = {r.Pid: r.status for r in read_table(spark, lake_config.table("bronze/scrape_status")).collect()}
    assert status == {1000: "ok", 1001: "not_found"}
    users = {r.Uid: r.contacts_count for r in read_table(spark, lake_config.table("bronze/users")).collect()}
    assert users["100@N00"] == 5 and "999@N99" not in users


# --- whole-file failures and missing folders: one `error:` line naming the file and the fix, exit 2 --

DRIVER = """
import contextlib, io, json, runpy, sys, traceback
cases, out = json.load(open(sys.argv[1])), sys.argv[2]
report = {}
for name, argv in cases[:-1]:
    sys.argv, err = argv, io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_path(argv[0], run_name="__main__")
        report[name] = [0, err.getvalue()]
    except SystemExit as exc:
        report[name] = [exc.code, err.getvalue()]
    except BaseException:
        report[name] = [None, err.getvalue() + traceback.format_exc()]
    json.dump(report, open(out, "w"))  # after each case: a crash still leaves the earlier ones
sys.argv = cases[-1][1]
runpy.run_path(sys.argv[0], run_name="__main__")  # the last case ends this process, as a lone job would
"""


def _good_release(root: Path) -> tuple[Path, Path]:
    raw, scraped = root / "raw", root / "scraped"
    write_release(raw, [make_post(i) for i in range(5)])
    write_groups(scraped, [("385070000", "1@N01", "Dogs", "10", "20")])
    return raw, scraped


def whole_file_cases(root: Path) -> list[tuple[str, str, list[str], list[str]]]:
    """(case, job, arguments, fragments the one error line must hold), each in its own folder."""
    cases = []

    def case(name: str, damage, fragments: list[str], job: str = "ingest", extra: tuple[str, ...] = ()):
        folder = root / name
        raw, scraped = _good_release(folder)
        damage(raw, scraped)
        args = [f"--set=paths.raw={raw}", f"--set=paths.scraped={scraped}", f"--set=paths.lake={folder / 'lake'}"]
        args += [f"--set=paths.{k}={folder / k}" for k in ("models", "reports")] + [e.format(raw=raw) for e in extra]
        cases.append((name, job, args, [f.format(raw=raw, scraped=scraped, lake=folder / "lake") for f in fragments]))

    def cut_text(raw, _):
        text = (raw / T).read_text()
        (raw / T).write_text(text[: text.index('"Alltags"', len(text) // 2)])  # ends inside a record

    def one_label_short(raw, _):
        (raw / L).write_text("".join((raw / L).read_text().splitlines(keepends=True)[:-1]))

    fix = "re-export or re-download that file"
    case(
        "label_one_line_short",
        one_label_short,
        [f"{{raw}}/{L} has 4 records but {C} has 5", "it must hold exactly one label per post"],
    )
    case("empty_file", lambda raw, _: (raw / IMG).write_text(""), [f"{{raw}}/{IMG} is empty: {fix}"])
    case("blank_file", lambda raw, _: (raw / C).write_text(" \n\n"), [f"{{raw}}/{C} holds no records: {fix}"])
    case("missing_file", lambda raw, _: (raw / U).unlink(), [f"{{raw}}: missing {U} (every SMPD release has it)"])
    case(
        "wrong_raw_path",
        lambda raw, _: shutil.rmtree(raw),
        ["SMPD release folder not found: {raw} (set it with --set paths.raw=/path/to/folder)"],
    )
    case(
        "not_a_release",
        lambda raw, _: [p.unlink() for p in raw.iterdir()],
        ["no SMPD release in {raw}: expected train_category.json", "point paths.raw at the folder"],
    )
    case(
        "wrong_scraped_path",
        lambda _, scraped: shutil.rmtree(scraped),
        ["scraped tables folder not found: {scraped} (set it with --set paths.scraped=/path/to/folder)"],
    )
    case(
        "csv_without_its_columns",
        lambda _, scraped: (scraped / G).write_text("imgid,group,title\n385070000,1@N01,Dogs\n"),
        [f"{{scraped}}/{G}: header lacks group_id, member_count, pool_count", "expected columns"],
    )
    # later stages on a lake without their input tables (a wrong paths.lake): the job to run first
    no_table = "no Delta table at {lake}/"
    lake_fix = "or set paths.lake to the lake that has it"

    def nothing(raw, scraped):
        pass

    case("features_without_bronze", nothing, [no_table + "bronze/posts: run jobs/ingest.py"], "build_features")
    case(
        "train_without_gold",
        nothing,
        [no_table + "gold/features: run jobs/build_features.py", lake_fix],
        "train_xgboost",
    )
    case(
        "evaluate_without_models",
        nothing,
        [no_table + "gold/model_predictions: run a training job", lake_fix],
        "evaluate",
    )
    case(
        "score_without_a_model",
        nothing,
        [no_table + "gold/model_predictions: run jobs/train_xgboost.py", lake_fix],
        "score",
        ("--model=xgboost", "--input={raw}"),
    )

    def number_in_list(raw, _):
        records = json.loads((raw / T).read_text())
        (raw / T).write_text(json.dumps([*records[:2], 7, *records[2:]]))

    case(
        "element_not_a_record",
        number_in_list,
        [f"{{raw}}/{T} is not a complete JSON list", "or an element that is not a"],
    )
    case("truncated_json", cut_text, [f"{{raw}}/{T} is not a complete JSON list of records", fix])  # last: see DRIVER
    return cases


def _check_error_line(name: str, job: str, stderr: str, fragments: list[str]) -> None:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, (name, stderr)
    assert lines[0].startswith(f"error: {job}: "), (name, lines[0])
    for fragment in fragments:
        assert fragment in lines[0], (name, fragment, lines[0])
    assert "Traceback" not in stderr, (name, stderr)


def test_whole_file_failures_and_missing_folders_fail_the_real_jobs_in_one_line(tmp_path):
    cases = whole_file_cases(tmp_path)
    plan = [(name, [str(JOBS / f"{job}.py"), *args]) for name, job, args, _ in cases]
    (tmp_path / "cases.json").write_text(json.dumps(plan))
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "cases.json"), str(tmp_path / "report.json")],
        capture_output=True,
        text=True,
        env=job_env(),
        cwd=tmp_path,
        timeout=900,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report) == len(cases) - 1, (report, proc.stderr[-3000:])
    for name, job, _, fragments in cases[:-1]:
        code, stderr = report[name]
        assert code == 2, (name, stderr)
        assert len(stderr.splitlines()) == 1, (name, stderr)  # the job's own stderr: that one line
        _check_error_line(name, job, stderr, fragments)
    # the last case ran as the process itself: its exit code and its whole stderr (JVM logs included)
    name, job, _, fragments = cases[-1]
    assert proc.returncode == 2, proc.stderr[-3000:]
    _check_error_line(name, job, proc.stderr, fragments)
    # a failed ingest writes nothing: no half-built lake
    for name, job, _, _ in cases:
        if job == "ingest":
            assert not (tmp_path / name / "lake").exists(), name


# --- configuration errors: the key or path, exit code 2, before Spark starts ---------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "features.text_embedding=false"], "error: ingest: unknown config key 'features.text_embedding' ("),
        (["--conf", "{tmp}/typo.yaml"], "error: ingest: unknown config key 'trian' ("),
        (["--set", "data.scale=lots"], "error: ingest: config key 'data.scale' must be an integer, got 'lots'"),
        (
            ["--set", "features.text_embeddings=maybe"],
            "error: ingest: config key 'features.text_embeddings' must be true or false, got 'maybe'",
        ),
        (["--set", "train=5"], "error: ingest: config key 'train' must be a mapping, got int"),
        (["--conf", "{tmp}/missing.yaml"], "error: ingest: config file not found: {tmp}/missing.yaml"),
        (["--set", "paths.raw"], "error: ingest: --set expects key=value, got 'paths.raw'"),
    ],
)
def test_configuration_errors_name_the_key_or_path(tmp_path, args, message):
    (tmp_path / "typo.yaml").write_text("trian:\n  seed: 1\n")
    proc = subprocess.run(
        [sys.executable, str(JOBS / "ingest.py"), *[a.format(tmp=tmp_path) for a in args]],
        capture_output=True,
        text=True,
        env=job_env(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()], proc.stderr  # one line, no traceback
    assert proc.stderr.startswith(message.format(tmp=tmp_path)), proc.stderr
    assert proc.stdout == ""


# --- idempotency and reproducibility on one small generated lake ---------------------------------------


@pytest.fixture(scope="module")
def pipeline(spark, tmp_path_factory):
    """1,500 generated posts with a few bad rows added, ingested into a lake of this module's own."""
    from smp_spark.generate import generate_dataset

    root = tmp_path_factory.mktemp("reliability")
    cfg = lake_config_at(root)
    cfg = replace(cfg, train=replace(cfg.train, tracking_uri=f"file:{root / 'mlruns'}"))
    generate_dataset(  # the 2019 style (URLs): this lake is about rows; tests/test_images.py has images
        cfg.path("raw"),
        cfg.path("raw_test"),
        cfg.path("scraped"),
        cfg.path("scraped_test"),
        1500,
        7,
        0.05,
        4,
        image_style="url",
    )
    raw = Path(cfg.path("raw"))
    for file in JSON_STEMS:  # post 0 again at the end: a duplicate Pid
        records = json.loads((raw / file).read_text())
        (raw / file).write_text(json.dumps([*records, records[0]]))
    for file in (L, IMG):
        lines = (raw / file).read_text().splitlines()
        if file == L:
            lines[3] = "n/a"
        (raw / file).write_text("\n".join([*lines, lines[0]]) + "\n")
    write_bronze(spark, cfg, build_bronze(spark, cfg, cfg.path("raw"), cfg.path("scraped")))
    return cfg


def lake_tables(spark, cfg) -> dict[str, list[tuple]]:
    return {name: rows(read_table(spark, cfg.table(name))) for name in BRONZE_TABLES}


def test_ingest_twice_leaves_identical_tables(spark, pipeline):
    before = lake_tables(spark, pipeline)
    # the bad label, the duplicate, and the scraped rows of the bad label's (now unknown) photo
    photo = (Path(pipeline.path("raw")) / IMG).read_text().splitlines()[3].rsplit("/", 1)[-1]
    # quarantine columns: release, source_file, record_index, Pid, Uid, field, reason, value
    why = {(r[1], r[2] if r[1] in (L, C) else r[7], r[5]) for r in before["quarantine/rows"]}
    named = {(r[1], r[2]): r[3] for r in before["quarantine/rows"]}
    assert named[(L, 3)] is not None  # the label file has no Pid: row order names the post
    assert (
        {(L, 3, "label"), (C, 1500, "Pid")}
        < why
        <= {(L, 3, "label"), (C, 1500, "Pid"), (S, photo, "imgid")}
        | {(f, photo, "imgid") for f, _, _ in why if f.startswith("group_meta")}
    )
    assert len(before["bronze/posts"]) == 1499
    write_bronze(spark, pipeline, build_bronze(spark, pipeline, pipeline.path("raw"), pipeline.path("scraped")))
    assert lake_tables(spark, pipeline) == before


@pytest.fixture(scope="module")
def two_gold_versions(spark, pipeline):
    """build_features run twice on the same bronze tables: two gold versions."""
    from smp_spark.features.build import build_gold, feature_specs
    from smp_spark.features.gold import GOLD, read_bronze, write_gold

    versions = []
    for _ in range(2):
        gold, state = build_gold(read_bronze(spark, pipeline), pipeline)
        versions.append(write_gold(spark, pipeline, gold, state, feature_specs(pipeline)))
    assert versions[1] == versions[0] + 1 == table_version(spark, pipeline.table(GOLD))
    return versions


def test_build_features_twice_writes_identical_gold_content(spark, pipeline, two_gold_versions):
    """Every feature is bit-identical, except the PCA projections of the TF-IDF vectors: Spark ML's
    PCA sums the covariance with treeAggregate, which merges partial sums in task-completion order,
    so their last bits vary between runs (well below 1e-9), and a value stored as float32 can then
    round to a neighbouring float32 (a step is below 1.2e-7 relative)."""
    from pyspark.sql import functions as F

    from smp_spark.features.gold import GOLD, state_path

    columns = read_table(spark, pipeline.table(GOLD)).columns
    first, second = (rows(read_table(spark, pipeline.table(GOLD), v)) for v in two_gold_versions)
    assert len(first) == len(second) == 1499
    pca = [i for i, c in enumerate(columns) if c.endswith("_svd")]
    assert [columns[i] for i in pca] == ["title_svd", "tags_svd"]
    exact = [i for i in range(len(columns)) if i not in pca]
    differing = {columns[i] for a, b in zip(first, second) for i in exact if a[i] != b[i]}
    assert not differing
    for i in pca:
        for a, b in zip(first, second):
            assert a[i] == pytest.approx(b[i], rel=2.4e-7, abs=1e-12), columns[i]
    encodings = [rows(read_table(spark, f"{state_path(pipeline, v)}/category/encodings")) for v in two_gold_versions]
    assert encodings[0] == encodings[1]
    manifest = read_table(spark, pipeline.table("gold/feature_manifest"))
    by_version = [{r.name for r in manifest.filter(F.col("gold_version") == v).collect()} for v in two_gold_versions]
    assert by_version[0] == by_version[1] == set(columns[5:])


def test_training_twice_on_one_gold_version_gives_the_same_predictions_and_metrics(spark, pipeline, two_gold_versions):
    from smp_spark.evaluate import PREDICTIONS, evaluate_all
    from smp_spark.models.run import train_and_record

    runs = []
    for _ in range(2):
        _, scores = train_and_record(spark, pipeline, "xgboost")
        table = read_table(spark, pipeline.table(PREDICTIONS))
        run_ids = {r.run_id for r in table.select("run_id").distinct().collect()}
        runs.append((scores, rows(table.drop("run_id", "_row_hash")), run_ids))
    (scores_1, table_1, ids_1), (scores_2, table_2, ids_2) = runs
    assert ids_1 != ids_2  # two MLflow runs, each recorded ...
    assert scores_1 == scores_2 and table_1 == table_2  # ... with the same predictions and metrics
    assert len(table_2) == 1499 and {r[-1] for r in table_2} == {two_gold_versions[1]}
    # evaluate twice: the same metrics to the last bit
    first, _ = evaluate_all(spark, pipeline)
    second, _ = evaluate_all(spark, pipeline)
    assert first == second
    assert any(r["model"] == "xgboost" for r in first)


# --- a job killed with SIGKILL mid-write ---------------------------------------------------------------


def _data_files(table: Path) -> set[str]:
    return {name for name in os.listdir(table) if name.endswith(".parquet")}


def test_ingest_killed_mid_write_leaves_the_previous_version_and_the_rerun_succeeds(
    spark, pipeline, tmp_path, monkeypatch
):
    from smp_spark.generate import generate_dataset

    # a copy of the ingested lake, and a different release (more posts, another seed) to ingest over it
    shutil.copytree(pipeline.path("lake"), tmp_path / "lake", ignore=shutil.ignore_patterns("gold", "artifacts"))
    raw, scraped = tmp_path / "raw", tmp_path / "scraped"
    generate_dataset(
        str(raw),
        str(tmp_path / "raw_test"),
        str(scraped),
        str(tmp_path / "scraped_test"),
        2000,
        8,
        0.05,
        4,
        image_style="url",
    )
    cfg = lake_config_at(tmp_path, raw=raw, scraped=scraped)
    posts_path = Path(cfg.table("bronze/posts"))
    before = {name: table_version(spark, cfg.table(name)) for name in BRONZE_TABLES}
    before_posts = rows(read_table(spark, str(posts_path)))
    old_files = _data_files(posts_path)

    args = ["--conf=test", f"--set=paths.lake={tmp_path / 'lake'}", f"--set=paths.raw={raw}"]
    args.append(f"--set=paths.scraped={scraped}")
    with open(tmp_path / "killed.log", "w") as log:
        job = subprocess.Popen(
            [sys.executable, str(JOBS / "ingest.py"), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=job_env(),
            start_new_session=True,  # its own process group: the JVM dies with it
        )
        try:
            deadline = time.time() + 600
            # bronze/posts' MERGE has started writing: its commit follows about 0.5 s later (measured)
            while not _data_files(posts_path) - old_files:
                assert job.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
                assert time.time() < deadline, "the ingest job never started writing"
                time.sleep(0.01)
        finally:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode == -signal.SIGKILL
    assert _data_files(posts_path) - old_files, "the killed run left its uncommitted files behind"

    # readers see bronze/posts' previous version, with the previous rows; the tables are synced at
    # once, each commit atomic: every other table is at its previous version or one commit later
    killed = {name: table_version(spark, cfg.table(name)) for name in BRONZE_TABLES}
    assert killed["bronze/posts"] == before["bronze/posts"]
    assert all(killed[name] in (before[name], before[name] + 1) for name in BRONZE_TABLES), (before, killed)
    assert rows(read_table(spark, str(posts_path))) == before_posts

    # the next run of the real job succeeds and commits exactly once on top of the previous version
    monkeypatch.setattr(sys, "argv", [str(JOBS / "ingest.py"), *args])
    monkeypatch.setattr(sys, "path", list(sys.path))
    runpy.run_path(str(JOBS / "ingest.py"), run_name="__main__")
    assert table_version(spark, str(posts_path)) == before["bronze/posts"] + 1
    # ... and no table twice: what the killed run committed is left as it is
    rerun = {name: table_version(spark, cfg.table(name)) for name in BRONZE_TABLES}
    assert all(rerun[name] in (before[name], before[name] + 1) for name in BRONZE_TABLES), (before, rerun)
    posts = read_table(spark, str(posts_path))
    expected = {int(r["Pid"]) for r in json.loads((raw / C).read_text())}
    assert posts.count() == len(expected) == 2000
    assert {r.Pid for r in posts.select("Pid").collect()} == expected
