"""The next-day rerun: gold keeps the day before's fitted state, the models continue from their own
(all but LightGBM, which trains anew: docs/benchmarks.md, session 29)."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.features.build import build_gold, feature_specs
from smp_spark.features.gold import GOLD, gold_metadata, read_bronze, write_gold
from smp_spark.features.reuse import moved_away_from_training, reusable_state
from smp_spark.lake import read_table
from smp_spark.models.dataset import model_input
from smp_spark.models.registry import LAYOUT_FILE, model
from smp_spark.models.run import model_dir, train_and_record
from smp_spark.models.warm_start import previous_model

MODELS = ("lightgbm", "xgboost", "catboost", "fusion")


def test_a_post_moving_away_from_training_is_named(spark):
    def frame(rows):
        return spark.createDataFrame(rows, "Postdate long, split string")

    before = frame([(1, "train"), (2, "train"), (3, "valid"), (4, "test")])
    later_posts = frame([(1, "train"), (2, "train"), (3, "train"), (4, "valid"), (5, "test")])
    assert moved_away_from_training(before, later_posts) is None
    earlier_posts = frame([(0, "train"), (1, "train"), (2, "valid"), (3, "valid"), (4, "test")])
    assert moved_away_from_training(before, earlier_posts) == (
        "training posts up to Postdate 2 would now reach valid or test (from 2)"
    )
    valid_to_test = frame([(1, "train"), (2, "train"), (3, "test"), (4, "test")])
    assert (
        moved_away_from_training(before, valid_to_test) == "valid posts up to Postdate 3 would now reach test (from 3)"
    )


def _day(spark, cfg, posts):
    """The day's gold (keeping the state where allowed) and every model trained on it."""
    DeltaTable.forPath(spark, cfg.table(catalog.POSTS.name)).delete()
    posts.write.format("delta").mode("append").save(cfg.table(catalog.POSTS.name))
    inputs = read_bronze(spark, cfg)
    kept, why = reusable_state(spark, cfg, inputs)
    gold, state = build_gold(inputs, cfg, kept.state if kept else None)
    version = write_gold(spark, cfg, gold, state, feature_specs(cfg), kept.fitted_on if kept else None)
    trained = {name: train_and_record(spark, cfg, name) for name in MODELS}
    return version, kept, why, trained


def test_the_next_day_keeps_the_state_and_the_models_continue_from_the_day_before(spark, generated_lake, tmp_path):
    root = tmp_path / "lake"
    for table in ("bronze", catalog.IMAGE_EMBEDDINGS.name):
        shutil.copytree(generated_lake.table(table), root / table)
    paths = replace(generated_lake.paths, lake=str(root), models=str(tmp_path / "models"))
    cfg = replace(
        generated_lake,
        paths=paths,
        features=replace(generated_lake.features, reuse_state=True),
        train=replace(generated_lake.train, warm_start=True, tracking_uri=f"file:{tmp_path / 'mlruns'}"),
    )
    everything = read_table(spark, generated_lake.table(catalog.POSTS.name)).localCheckpoint()
    cut = everything.agg(F.percentile_approx("Postdate", 0.95, 100_000)).first()[0]

    # day 1: the release without its latest 5% of posts
    version, kept, why, _ = _day(spark, cfg, everything.filter(F.col("Postdate") <= cut))
    assert (version, kept, why) == (0, None, "there is no earlier gold version")
    # day 2: every post
    version, kept, why, second = _day(spark, cfg, everything)
    assert version == 1 and (kept.version, kept.fitted_on) == (0, 0)
    assert why == "keeping the state of gold version 0 (fitted by version 0's build)"
    assert gold_metadata(spark, cfg, 1)["fitted_on"] == 0

    # a post that keeps its split keeps its feature values; outside training, all but the user's
    # training-label history, which now counts the earlier posts that joined the training split
    day1, day2 = (read_table(spark, cfg.table(GOLD), v) for v in (0, 1))
    same = day2.join(day1.select("Pid", "split"), ["Pid", "split"], "left_semi").select(*day1.columns)
    assert same.count() > 0.8 * day1.count()
    assert same.filter(F.col("split") == "train").exceptAll(day1).count() == 0
    stable = [c for c in day1.columns if c not in {s.name for s in feature_specs(cfg) if s.source == "posts.label"}]
    assert len(stable) < len(day1.columns)
    assert same.select(*stable).exceptAll(day1.select(*stable)).count() == 0

    # each model but LightGBM starts from the day before's and is as accurate as one trained anew
    assert second["lightgbm"][0].params.get("start") is None
    for name in MODELS[1:]:
        trained, scores = second[name]
        assert trained.params["start"].startswith(model_dir(cfg, name, 0)), name
        valid = next(r["mae"] for r in scores if r["split"] == "valid")
        fresh = train_and_record(spark, replace(cfg, train=replace(cfg.train, warm_start=False)), name)[1]
        assert valid < 1.02 * next(r["mae"] for r in fresh if r["split"] == "valid"), name

    # a day-1 folder saved before models recorded their input layout: trained anew, saying why
    catboost = model("catboost")
    os.remove(os.path.join(model_dir(cfg, "catboost", 0), LAYOUT_FILE))
    assert previous_model(spark, cfg, catboost, model_input(spark, catboost.input_config(cfg))) == (
        None,
        f"{model_dir(cfg, 'catboost', 0)} has no {LAYOUT_FILE}",
    )

    # another fit setting: the state is fitted again, and the reason names the key
    changed = replace(cfg, features=replace(cfg.features, svd_components=cfg.features.svd_components + 1))
    assert reusable_state(spark, changed, read_bronze(spark, changed)) == (
        None,
        f"features.svd_components was {cfg.features.svd_components} for gold version 1, "
        f"is {cfg.features.svd_components + 1} now",
    )
