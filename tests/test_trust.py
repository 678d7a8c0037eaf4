"""Numbers that mean what they say: evaluation refuses bad predictions, the split protocol comes from
gold, family switches, the ensemble, layouts, scoring of every model and a submission in the
release's record order."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from smp_spark.errors import EvaluationError, InputError
from smp_spark.metrics import metrics
from tests.test_generator_vs_real import REAL

ROWS = "model string, Pid long, split string, label double, prediction double"


def test_a_nan_or_null_prediction_fails_evaluation_naming_the_model_and_count(spark):
    rows = [("good", 1, "test", 5.0, 5.5), ("good", 2, "test", 6.0, 6.5)]
    rows += [
        ("broken", 1, "test", 5.0, float("nan")),
        ("broken", 2, "test", 6.0, None),
        ("broken", 3, "test", 7.0, 7.0),
    ]
    with pytest.raises(EvaluationError, match=r"model 'broken': 2 null/NaN/infinite predictions") as caught:
        metrics(spark.createDataFrame(rows, ROWS))
    assert "good" not in str(caught.value)
    (fine,) = metrics(spark.createDataFrame(rows[:2], ROWS))
    assert fine["mae"] == pytest.approx(0.5)


def test_blend_weights_recover_a_known_mix_and_ignore_the_test_split(spark):
    from smp_spark.models.ensemble import fit_weights, wide

    rng = np.random.default_rng(0)
    a, b = rng.normal(6, 2, 400), rng.normal(6, 2, 400)
    label = 0.25 * a + 0.75 * b  # exactly a 25/75 blend
    split = ["valid" if i < 200 else "test" for i in range(400)]
    rows = [("a", i, s, float(y), float(p)) for i, (s, y, p) in enumerate(zip(split, label, a))]
    rows += [("b", i, s, float(y), float(p)) for i, (s, y, p) in enumerate(zip(split, label, b))]
    weights = fit_weights(wide(spark.createDataFrame(rows, ROWS), ["a", "b"]), ["a", "b"])
    assert weights["a"] == pytest.approx(0.25, abs=1e-4) and weights["b"] == pytest.approx(0.75, abs=1e-4)
    # wreck the test split's predictions: the weights are fitted on valid only
    wrecked = [(m, i, s, y, p + 100.0 if s == "test" else p) for m, i, s, y, p in rows]
    again = fit_weights(wide(spark.createDataFrame(wrecked, ROWS), ["a", "b"]), ["a", "b"])
    assert again == pytest.approx(weights)


@pytest.fixture(scope="module")
def trained(spark, gold_lake):
    """LightGBM and xgboost on the session gold table (reused when earlier tests trained them)."""
    from smp_spark.lake import read_table
    from smp_spark.metrics import PREDICTIONS
    from smp_spark.models.run import train_and_record

    have = set()
    path = gold_lake.table(PREDICTIONS)
    try:
        have = {r[0] for r in read_table(spark, path).select("model").distinct().collect()}
    except Exception:  # noqa: BLE001 - no predictions table yet
        pass
    for name in ("lightgbm", "xgboost"):
        if name not in have:
            train_and_record(spark, gold_lake, name)
    return gold_lake


def test_the_ensemble_beats_each_member_on_valid_rmse_and_is_reported(spark, trained):
    from smp_spark.evaluate import evaluate_all
    from smp_spark.models.ensemble import train_ensemble

    weights, scores = train_ensemble(spark, trained)
    assert all(w >= 0 for w in weights.values()) and sum(weights.values()) == pytest.approx(1.0)
    predictions = spark.read.format("delta").load(trained.table("gold/model_predictions"))
    members = metrics(predictions.filter(F.col("model").isin(*weights)))
    valid = next(r for r in scores if r["split"] == "valid")
    # each member alone is a feasible blend: the fitted one cannot have a larger valid squared error
    assert all(valid["rmse"] <= r["rmse"] + 1e-9 for r in members if r["split"] == "valid")
    # the report reads the protocol from the gold commit, not from the config it is given
    seeded = replace(trained, features=replace(trained.features, protocol="seed"))
    rows, page = evaluate_all(spark, seeded)
    assert "ensemble" in {r["model"] for r in rows}
    text = Path(page).read_text()
    assert "gold v0: **chronological**" in text and "**seed**" not in text


def test_one_pass_scores_every_model_and_the_ensemble_and_a_rerun_repeats_it(spark, trained, tmp_path):
    """The generated test release, scored by every trained model and the ensemble in one call (one
    ingest, one featurisation): one prediction per post and model, in gold/predictions and in the
    submission; the images went through the image stage into the scoring lake; every table scoring
    writes opens in delta-rs; a rerun of one model gives the same scores and duplicates nothing."""
    from smp_spark import catalog
    from smp_spark.features.gold import GOLD
    from smp_spark.lake import read_table
    from smp_spark.models import registry
    from smp_spark.models.ensemble import load_weights
    from smp_spark.models.run import model_dir
    from smp_spark.score import (
        SCORES,
        fallback_prediction,
        score_folder,
        scoring_config,
        submission_rows,
        trained_gold_version,
        write_submission,
    )
    from tests.open_tables import assert_opens_elsewhere

    version = trained_gold_version(spark, trained, "lightgbm")
    weights = load_weights(model_dir(trained, "ensemble", version))
    names = [*weights, "ensemble"]
    raw, scraped = trained.path("raw_test"), trained.path("scraped_test")
    predictions, versions = score_folder(spark, trained, raw, scraped, names)
    assert versions == {name: version for name in names}
    test_pids = {int(r["Pid"]) for r in json.loads((Path(raw) / "test_category.json").read_text())}
    scored = {name: {} for name in names}
    for r in predictions.collect():
        scored[r.model][r.Pid] = r.prediction
    for name in names:
        assert set(scored[name]) == test_pids and all(np.isfinite(list(scored[name].values()))), name
    assert all(1 <= p <= 17 for p in scored["xgboost"].values())
    pid = min(test_pids)
    assert scored["ensemble"][pid] == pytest.approx(sum(w * scored[m][pid] for m, w in weights.items()))
    written = read_table(spark, trained.table(SCORES))
    assert {(r.model, r.n) for r in written.groupBy("model").agg(F.count("Pid").alias("n")).collect()} == {
        (name, len(test_pids)) for name in names
    }
    # the test release's images went through ingest and the image stage, into the scoring lake
    batch = scoring_config(trained)
    usable = read_table(spark, batch.table("bronze/images")).filter("status = 'ok'").count()
    assert read_table(spark, batch.table("gold/image_embeddings")).count() == usable > 0.99 * len(test_pids)
    # every table scoring writes opens in another engine (delta-rs) as Spark reads it
    assert_opens_elsewhere(spark, trained.table(SCORES), catalog.SCORES.keys, sample=None)
    for table in (*catalog.BRONZE, catalog.IMAGE_EMBEDDINGS):
        assert_opens_elsewhere(spark, batch.table(table.name), table.keys)
    # the submission of one model: every post of the release
    path = str(tmp_path / "submission.json")
    xgboost = predictions.filter(F.col("model") == "xgboost")
    rows = submission_rows(spark, trained, raw, xgboost, fallback_prediction(spark, trained, version))
    assert write_submission(rows, path) == {"model": len(test_pids), "fallback": 0, "no Pid": 0}
    document = json.loads(Path(path).read_text())
    assert document["version"] == "VERSION 1.0"
    assert {r["post_id"] for r in document["result"]} == {f"post{p}" for p in test_pids}
    # a rerun of one model: the same scores, and the other models' rows stay as they were
    again, _ = score_folder(spark, trained, raw, scraped, ["xgboost"])
    assert {r.Pid: r.prediction for r in again.collect()} == scored["xgboost"]
    after = read_table(spark, trained.table(SCORES))
    assert after.count() == len(names) * len(test_pids)
    assert {(r.model, r.Pid): r.prediction for r in after.collect()} == {
        (name, p): v for name in names for p, v in scored[name].items()
    }
    # a gold layout other than the trained one: refused, naming the slot
    shuffled = read_table(spark, trained.table(GOLD), version).drop("hour")
    with pytest.raises(InputError, match="trained on another feature layout"):
        registry.model("lightgbm").predict(
            spark, trained, model_dir(trained, "lightgbm", version), shuffled, version
        ).collect()


def _reversed_release(source: Path, target: Path, corrupt: int, no_pid: int) -> list[str]:
    """A copy of a generated test release with its records in reverse order; record ``corrupt``
    gets an unreadable Postdate, record ``no_pid`` an unreadable Pid in every file. Returns the
    Pids in the new record order."""
    shutil.copytree(source, target)
    pids = []
    for path in sorted(target.glob("test_*.json")):
        records = json.loads(path.read_text())[::-1]
        if path.name == "test_category.json":
            pids = [str(r["Pid"]) for r in records]
        if "temporalspatial" in path.name:
            records[corrupt]["Postdate"] = "yesterday"
        records[no_pid]["Pid"] = "no-such-pid"
        path.write_text(json.dumps(records))
    for path in target.glob("test_img_*.txt"):
        path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[::-1]))
    return pids


def test_the_submission_lists_every_post_in_record_order_with_a_fallback(spark, trained, tmp_path):
    from smp_spark.score import fallback_prediction, score_folder, submission_rows, write_submission

    folder = tmp_path / "release"
    pids = _reversed_release(Path(trained.path("raw_test")), folder, corrupt=3, no_pid=5)
    assert pids != sorted(pids, key=int)  # the record order is not the Pid order
    predictions, versions = score_folder(spark, trained, str(folder), trained.path("scraped_test"), ["lightgbm"])
    fallback = fallback_prediction(spark, trained, versions["lightgbm"])
    path = tmp_path / "submission.json"
    counts = write_submission(submission_rows(spark, trained, str(folder), predictions, fallback), str(path))
    assert counts == {"model": len(pids) - 2, "fallback": 1, "no Pid": 1}
    listed = json.loads(path.read_text())["result"]
    expected = [p for i, p in enumerate(pids) if i != 5]
    assert [r["post_id"] for r in listed] == [f"post{p}" for p in expected]
    assert listed[3]["popularity_score"] == round(fallback, 4)
    median = (
        spark.read.format("delta")
        .load(trained.table("gold/features"))
        .filter("split = 'train'")
        .agg(F.median("label"))
        .first()[0]
    )
    assert fallback == pytest.approx(median, abs=0.02)


def test_switched_off_families_are_neither_built_nor_taken(spark, gold_lake):
    from smp_spark.features.build import build_gold
    from smp_spark.features.gold import read_bronze
    from smp_spark.features.registry import family
    from smp_spark.models.dataset import model_specs

    kept = [f for f in gold_lake.features.families if f not in ("social", "image", "embedding")]
    cfg = replace(gold_lake, features=replace(gold_lake.features, families=kept, image_embeddings=False))
    gold, state = build_gold(read_bronze(spark, cfg), cfg)
    social = {s.name for s in family("social").specs(gold_lake)}
    assert not social & set(gold.columns) and set(state) == set(kept)
    full = spark.read.format("delta").load(gold_lake.table("gold/features"))
    assert social <= set(full.columns)
    assert not social & {s.name for s in model_specs(full.columns, cfg)}
    # the families that stayed on give the same values as in the full build
    shared = ["Pid", "hour", "latitude", "title_len", "user_prev_posts", "category_te"]
    mine = gold.select(*shared).orderBy("Pid").limit(50).collect()
    theirs = full.select(*shared).orderBy("Pid").limit(50).collect()
    assert mine == theirs
    from smp_spark.config import load_config
    from smp_spark.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'features.families\[1\]' must be one of time, geo"):
        load_config("test", ["features.families=[time,gossip]"])


def test_each_post_gets_its_own_user_record_never_a_later_one(spark, lake_config):
    from smp_spark.features.build import join_users
    from smp_spark.features.user import user_profile
    from smp_spark.ingest import build_bronze, write_bronze
    from tests.smpd_fixture import make_post, write_groups, write_release

    posts = [make_post(i) for i in range(6)]  # user 100@N00 posts at i = 0 and 3
    posts[0]["photo_count"], posts[3]["photo_count"] = "10", "990"  # the count grew between the posts
    posts[3]["ispro"] = "0"
    write_release(Path(lake_config.path("raw")), posts)
    write_groups(Path(lake_config.path("scraped")), [("385070000", "11@N01", "Dogs", "500", "2000")])
    bronze = build_bronze(spark, lake_config, lake_config.path("raw"), lake_config.path("scraped"))
    write_bronze(spark, lake_config, bronze)
    read = {n: spark.read.format("delta").load(lake_config.table(n)) for n in ("bronze/posts", "bronze/users")}
    profile = user_profile(join_users(read["bronze/posts"], read["bronze/users"]))
    got = {r.Pid: (r.photo_count_log, r.ispro) for r in profile.collect()}
    assert got[1000] == (pytest.approx(np.log1p(10)), 1)  # the earlier post: its own record
    assert got[1003] == (pytest.approx(np.log1p(990)), 0)
    users = {r.Uid: r.photo_count for r in read["bronze/users"].collect()}
    assert users["100@N00"] == 990  # the users table keeps the latest record, for what needs one


def test_scoring_posts_already_in_gold_reproduces_every_gold_feature(spark, gold_lake, tmp_path):
    """Scoring parity: the latest posts of the training lake, put into a scoring lake as a new
    batch, get from the scorer exactly the features gold computed for them from the same history."""
    from delta.tables import DeltaTable

    from smp_spark import catalog
    from smp_spark.features.gold import GOLD
    from smp_spark.lake import read_table, sync_table, table_version
    from smp_spark.score import feature_rows, scoring_config

    version = table_version(spark, gold_lake.table(GOLD))
    gold = read_table(spark, gold_lake.table(GOLD), version)
    latest = gold.filter("split = 'test'").orderBy(F.col("Postdate").desc(), "Pid").limit(60).select("Pid")
    chosen = {r.Pid for r in latest.collect()}
    batch = replace(scoring_config(gold_lake), paths=replace(gold_lake.paths, lake=str(tmp_path / "scoring")))
    for table in (*catalog.BRONZE, catalog.TEXT_EMBEDDINGS, catalog.IMAGE_EMBEDDINGS):
        if not DeltaTable.isDeltaTable(spark, gold_lake.table(table.name)):  # a stage switched off
            continue
        df = read_table(spark, gold_lake.table(table.name)).drop("_row_hash")
        if "Pid" in df.columns:
            df = df.filter(F.col("Pid").isin(*chosen))
        sync_table(spark, df, batch.table(table.name), list(table.keys))
    scored = feature_rows(spark, gold_lake, batch, version)
    columns = [c for c in gold.columns if c not in ("split", "label")]
    mine = {r.Pid: r for r in scored.select(*columns).collect()}
    theirs = {r.Pid: r for r in gold.filter(F.col("Pid").isin(*chosen)).select(*columns).collect()}
    assert set(mine) == set(theirs) == chosen
    differ = set()
    for pid in chosen:
        for c in columns:
            a, b = mine[pid][c], theirs[pid][c]
            same = a == b or (
                a is not None and b is not None and np.allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True)
            )
            if not same:
                differ.add(c)
    assert not differ, f"scored features differ from gold in {sorted(differ)}"


@pytest.mark.skipif(REAL.exists(), reason="the 200 real test posts, a release with no image, cover this")
def test_a_batch_with_no_image_at_all_scores_with_the_trained_layout(spark, trained, tmp_path):
    """A 2019-style batch (image URLs only) has no image vector in any row: the model's saved
    layout still gives it the image slots (all missing), so it scores instead of being refused.
    (Where the real SMPD material is on the machine, the real-posts test below is this case.)"""
    from smp_spark.score import score_folder
    from tests.smpd_fixture import make_post, write_groups, write_release

    folder = write_release(tmp_path / "urls", [make_post(i) for i in range(5)], prefix="test", labels=False)
    write_groups(tmp_path / "scraped", [])
    predictions, _ = score_folder(spark, trained, str(folder), str(tmp_path / "scraped"), ["lightgbm"])
    got = {r.Pid: r.prediction for r in predictions.collect()}
    assert set(got) == {1000, 1001, 1002, 1003, 1004} and all(np.isfinite(list(got.values())))


def test_the_200_real_test_posts_go_through_ingest_embeddings_and_scoring(spark, trained, tmp_path):
    """Real SMPD test posts (their quirks kept: "0" "0" "0" for no place, Uids like 40796@N2,
    mojibake and URLs in titles), made into a release and scored end to end by a model trained on
    generated data. The scoring lake's bronze tables hold every post field by field, nothing
    quarantined, and the text embedding stage encodes them all; every post gets a finite
    prediction, and they are not all the same. The release lists image URLs only (a 2019-style
    batch): no row has an image vector, and the model's saved layout still gives it the image slots
    (all missing), so it scores instead of being refused."""
    from smp_spark.lake import read_table
    from smp_spark.score import score_folder, scoring_config
    from tests.test_generator_vs_real import (
        check_real_bronze,
        check_real_embeddings,
        check_real_quirks,
        real_test_posts,
        write_real_test_release,
    )

    if not REAL.exists():
        pytest.skip(f"the real SMPD material is not on this machine ({REAL})")
    rows = real_test_posts()
    check_real_quirks(rows)
    write_real_test_release(tmp_path / "real", rows)
    (tmp_path / "scraped").mkdir()  # no scraped tables for these posts
    predictions, _ = score_folder(spark, trained, str(tmp_path / "real"), str(tmp_path / "scraped"), ["lightgbm"])
    got = {r.Pid: r.prediction for r in predictions.collect()}
    assert set(got) == {int(r[1]) for r in rows}
    assert all(np.isfinite(list(got.values()))) and len({round(p, 6) for p in got.values()}) > 50
    batch = scoring_config(trained)
    images = read_table(spark, batch.table("bronze/images"))
    assert {r.status for r in images.select("status").distinct().collect()} == {"url"}
    check_real_bronze(spark, batch, rows)
    check_real_embeddings(spark, read_table(spark, batch.table("bronze/posts")), str(tmp_path / "text_embeddings"))
