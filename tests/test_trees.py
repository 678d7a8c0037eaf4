"""Distributed trees through the real libraries on local Spark, native models, evaluation."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.compute as pc
import pytest
import scipy.stats
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.evaluate import MEDIAN_BASELINE, evaluate_all, metrics
from smp_spark.models.dataset import model_input
from smp_spark.models.run import train_and_record
from tests.open_tables import assert_opens_elsewhere


def _sample(spark, cfg, trained, n=300):
    """Features (numpy) and the Spark model's predictions of ``n`` valid/test posts."""
    data = model_input(spark, cfg)
    rows = (
        data.rows.filter(F.col("split") != "train")
        .orderBy("Pid")
        .limit(n)
        .join(trained.predictions.select("Pid", "prediction"), "Pid")
        .select("Pid", vector_to_array("features").alias("f"), "prediction")
        .orderBy("Pid")
        .collect()
    )
    return np.array([r.f for r in rows], dtype=float), np.array([r.prediction for r in rows])


@pytest.fixture(scope="module")
def median_valid_mae(spark, gold_lake):
    data = model_input(spark, gold_lake)
    train = data.rows.filter(F.col("split") == "train")
    median = train.agg(F.percentile_approx("label", 0.5, 100000)).first()[0]
    valid = data.rows.filter(F.col("split") == "valid")
    return valid.agg(F.avg(F.abs(F.col("label") - F.lit(median)))).first()[0]


def test_synapseml_lightgbm_beats_the_median_and_its_native_model_agrees(spark, gold_lake, median_valid_mae):
    import lightgbm

    trained, scores = train_and_record(spark, gold_lake, "lightgbm")
    valid = next(r for r in scores if r["split"] == "valid")
    assert valid["mae"] < 0.9 * median_valid_mae and valid["src"] > 0.4
    x, spark_pred = _sample(spark, gold_lake, trained)
    booster = lightgbm.Booster(model_file=trained.native_path)
    np.testing.assert_allclose(booster.predict(x), spark_pred, rtol=1e-6, atol=1e-6)
    assert trained.params["useBarrierExecutionMode"] and trained.params["workers"] == 2
    # single-dataset mode trains in one native process per executor: it gets the executor's cores
    assert trained.params["numThreads"] == 2
    phases = trained.extra["phases"]
    fit = "fit (reads and assembles its rows)"
    assert list(phases)[:3] == ["open gold (schema, vector widths)", fit, "predict every post"]
    assert all(seconds >= 0 for seconds in phases.values()) and phases[fit] > 0


def test_an_xgboost_job_runs_one_worker_per_executor_on_all_its_cores():
    """xgboost.spark takes nthread from spark.task.cpus: its job asks for an executor's cores."""
    from smp_spark.config import load_config
    from smp_spark.models.registry import model

    def job_conf(*overrides, name="xgboost"):
        return model(name).job_conf(load_config("test", list(overrides)))

    assert job_conf("spark.master=local[3]") == {"spark.task.cpus": "3"}
    assert job_conf("spark.master=local[5, 2]") == {"spark.task.cpus": "5"}
    cores = os.cpu_count() or 1
    assert job_conf("spark.master=local[*]") == ({"spark.task.cpus": str(cores)} if cores > 1 else {})
    assert job_conf("spark.master=local") == {}  # one core: nothing to ask for
    assert job_conf("spark.master=local[4]", "train.xgboost_worker_threads=2") == {"spark.task.cpus": "2"}
    assert job_conf("spark.master=spark://head:7077") == {}  # executor size unknown: Spark's default
    assert job_conf("spark.master=spark://head:7077", "spark.conf.spark.executor.cores=4") == {"spark.task.cpus": "4"}
    assert job_conf("spark.master=local[3]", name="lightgbm") == {}


def test_xgboost_spark_beats_the_median_and_its_native_model_agrees(spark, gold_lake, median_valid_mae):
    import xgboost

    trained, scores = train_and_record(spark, gold_lake, "xgboost")
    valid = next(r for r in scores if r["split"] == "valid")
    assert valid["mae"] < 0.9 * median_valid_mae and valid["src"] > 0.4
    x, spark_pred = _sample(spark, gold_lake, trained)
    booster = xgboost.Booster(model_file=trained.native_path)
    native = booster.inplace_predict(x, missing=np.nan, iteration_range=(0, booster.best_iteration + 1))
    np.testing.assert_allclose(native, spark_pred, rtol=1e-5, atol=1e-5)
    # the recorded predictions open in another engine (delta-rs) as Spark reads them
    table = catalog.MODEL_PREDICTIONS
    written = assert_opens_elsewhere(spark, gold_lake.table(table.name), table.keys, sample=None)
    assert written.filter(pc.equal(written["model"], "xgboost")).num_rows == trained.predictions.count()


def test_catboost_beats_the_median_and_its_native_model_agrees(spark, gold_lake, median_valid_mae):
    import catboost

    trained, scores = train_and_record(spark, gold_lake, "catboost")
    valid = next(r for r in scores if r["split"] == "valid")
    assert valid["mae"] < 0.9 * median_valid_mae
    x, spark_pred = _sample(spark, gold_lake, trained)
    from smp_spark.models.trees import catboost_frame

    model = catboost.CatBoostRegressor()
    model.load_model(trained.native_path)
    cats = model_input(spark, gold_lake).categorical_slots
    assert cats and sorted(model.get_cat_feature_indices()) == sorted(cats)  # native categorical features
    np.testing.assert_allclose(model.predict(catboost_frame(x, cats)), spark_pred, rtol=1e-6, atol=1e-6)


def test_average_ranks_share_ties_within_each_group(spark):
    from smp_spark.metrics import average_ranks

    rows = [("a", 1, 3.0), ("a", 2, 1.0), ("a", 3, 3.0), ("a", 4, 2.0), ("a", 5, 3.0), ("b", 6, 5.0), ("b", 7, 5.0)]
    ranked = average_ranks(spark.createDataFrame(rows, "g string, Pid long, v double"), "v", ["g"])
    got = {r["Pid"]: r["v_rank"] for r in ranked.collect()}
    # a: 1.0 -> 1, 2.0 -> 2, the three 3.0s share ranks 3, 4 and 5 -> 4; b: two 5.0s share 1 and 2
    assert got == {1: 4.0, 2: 1.0, 3: 4.0, 4: 2.0, 5: 4.0, 6: 1.5, 7: 1.5}


def test_spearman_in_spark_equals_scipy_with_ties(spark):
    rng = np.random.default_rng(3)
    label = np.round(rng.normal(6, 2, 500), 1)  # many ties
    prediction = np.round(label + rng.normal(0, 1.5, 500), 0)
    rows = [("m", i, "test", float(a), float(b)) for i, (a, b) in enumerate(zip(label, prediction))]
    df = spark.createDataFrame(rows, "model string, Pid long, split string, label double, prediction double")
    (got,) = metrics(df)
    assert got["src"] == pytest.approx(scipy.stats.spearmanr(label, prediction).statistic, abs=1e-12)
    assert got["mae"] == pytest.approx(np.abs(label - prediction).mean())
    assert got["rmse"] == pytest.approx(np.sqrt(((label - prediction) ** 2).mean()))


def test_evaluate_reports_every_model_and_is_repeatable(spark, gold_lake):
    models_dir = gold_lake.path("models")
    if not (os.path.isdir(models_dir) and {"lightgbm", "xgboost", "catboost"} & set(os.listdir(models_dir))):
        train_and_record(spark, gold_lake, "xgboost")
    first, page = evaluate_all(spark, gold_lake)
    second, _ = evaluate_all(spark, gold_lake)
    assert first == second
    # the baselines' values, computed here with numpy / pandas from the gold labels and the oracle file
    import pandas as pd

    gold = spark.read.format("delta").load(gold_lake.table("gold/features")).select("Pid", "split", "label")
    frame = gold.toPandas()  # 3,000 test posts
    median = np.median(frame.loc[frame.split == "train", "label"])
    oracle = pd.read_csv(os.path.join(os.path.dirname(gold_lake.path("raw")), "oracle_train.csv"))
    frame = frame.merge(oracle, on="Pid")
    got = {(r["model"], r["split"]): r for r in first}
    for split in ("train", "valid", "test"):
        part = frame[frame.split == split]
        expected_median = np.abs(part.label - median).mean()
        assert got[(MEDIAN_BASELINE, split)]["mae"] == pytest.approx(expected_median, abs=0.02)
        assert got[("oracle (generator)", split)]["mae"] == pytest.approx(np.abs(part.label - part.oracle).mean())
        assert got[("oracle (generator)", split)]["src"] == pytest.approx(
            scipy.stats.spearmanr(part.label, part.oracle).statistic, abs=1e-9
        )
    folder = os.path.dirname(page)
    for png in ("models.png", "predicted_vs_actual.png", "error_by_category.png"):
        assert os.path.getsize(os.path.join(folder, png)) > 1000


def test_the_modality_ablation_trains_each_input_set_and_reports_it(spark, gold_lake):
    from dataclasses import replace

    from smp_spark.ablation import ablation_markdown, run_ablation
    from smp_spark.features.gold import GOLD
    from smp_spark.lake import read_table
    from smp_spark.models.dataset import model_specs

    columns = read_table(spark, gold_lake.table(GOLD)).columns
    for modalities in (["tabular"], ["tabular", "image"]):
        chosen = replace(gold_lake, train=replace(gold_lake.train, modalities=modalities))
        assert {s.modality for s in model_specs(columns, chosen)} == set(modalities)
    sets = (("tabular",), ("tabular", "image"))
    rows = run_ablation(spark, gold_lake, models=("lightgbm",), sets=sets, progress=lambda line: None)
    assert {(r["modalities"], r["split"]) for r in rows} >= {
        (m, s) for m in ("tabular", "tabular+image") for s in ("valid", "test")
    }
    assert_opens_elsewhere(spark, gold_lake.table(catalog.ABLATION.name), catalog.ABLATION.keys, sample=None)
    lines = ablation_markdown(spark, gold_lake, {rows[0]["gold_version"]})
    assert any(line.startswith("| lightgbm | tabular |") for line in lines)
    assert any(line.startswith("| lightgbm | tabular+image |") for line in lines)
    # an ablation of another model alone (`make ablation ARGS="--model ..."`) keeps these rows
    run_ablation(spark, gold_lake, models=("xgboost",), sets=sets[:1], progress=lambda line: None)
    table = read_table(spark, gold_lake.table(catalog.ABLATION.name))
    found = table.filter(table.gold_version == rows[0]["gold_version"]).select("model", "modalities").distinct()
    assert {tuple(r) for r in found.collect()} == {
        ("lightgbm", "tabular"),
        ("lightgbm", "tabular+image"),
        ("xgboost", "tabular"),
    }
    # each training's rows are written when it ends; a resumed ablation skips the finished ones
    said = []
    again = run_ablation(spark, gold_lake, models=("lightgbm", "xgboost"), sets=sets, progress=said.append, resume=True)
    assert [r["modalities"] for r in again] == ["tabular+image"] * len(again) and again[0]["model"] == "xgboost"
    assert [line.endswith("already done for gold version " + str(rows[0]["gold_version"])) for line in said] == [
        True,
        True,
        True,
        False,
    ]
