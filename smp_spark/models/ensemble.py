"""The ensemble: a weighted blend of the trained models, fitted on the valid split only.

Weights are non-negative and sum to one; they minimise the squared error of the blend on the
valid split (a convex quadratic program). The fit needs only the Gram matrix of the members'
valid predictions and their products with the label: ``k*k + k + 1`` sums computed in Spark, so
no prediction row reaches the driver. The test split never enters the fit; the report shows the
blend's test error beside its members'.

Input: ``gold/model_predictions`` rows of the members, all on one gold version. Output: the
``ensemble`` rows of ``gold/model_predictions`` (every post of every split) and
``<models>/ensemble/gold_v<N>/weights.json``. Window: the valid split (the fit).
"""

from __future__ import annotations

import json
import os
from functools import reduce

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.errors import InputError
from smp_spark.features.split import VALID
from smp_spark.metrics import PREDICTIONS

NAME = "ensemble"
MEMBERS = ("lightgbm", "xgboost", "catboost", "fusion")
WEIGHTS_FILE = "weights.json"


def wide(predictions: DataFrame, members: list[str]) -> DataFrame:
    """One row per post: ``Pid, split, label`` and a prediction column per member (posts every
    member predicted)."""
    frames = [
        predictions.filter(F.col("model") == m).select("Pid", "split", "label", F.col("prediction").alias(m))
        for m in members
    ]
    return reduce(lambda a, b: a.join(b.drop("split", "label"), "Pid"), frames)


def fit_weights(rows: DataFrame, members: list[str]) -> dict[str, float]:
    """Non-negative weights summing to one that minimise the valid split's squared error."""
    from scipy.optimize import minimize

    valid = rows.filter(F.col("split") == VALID)
    sums = [F.sum(F.col(a) * F.col(b)).alias(f"{a}*{b}") for i, a in enumerate(members) for b in members[i:]]
    sums += [F.sum(F.col(m) * F.col("label")).alias(f"{m}*y") for m in members]
    found = valid.agg(F.count(F.lit(1)).alias("n"), *sums).first()
    n = found["n"]
    if not n:
        raise InputError("the ensemble needs valid-split predictions of its members: none were found")
    k = len(members)
    gram = np.zeros((k, k))
    for i, a in enumerate(members):
        for j in range(i, k):
            gram[i, j] = gram[j, i] = found[f"{a}*{members[j]}"] / n
    cross = np.array([found[f"{m}*y"] / n for m in members])
    result = minimize(
        lambda w: w @ gram @ w - 2 * cross @ w,
        np.full(k, 1.0 / k),
        jac=lambda w: 2 * gram @ w - 2 * cross,
        bounds=[(0.0, 1.0)] * k,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(k)}],
        method="SLSQP",
    )
    weights = np.clip(result.x, 0.0, None)
    weights /= weights.sum()
    return {m: float(w) for m, w in zip(members, weights)}


def blend(rows: DataFrame, weights: dict[str, float]) -> DataFrame:
    """``rows`` with ``prediction``: the weighted sum of the members' columns."""
    total = reduce(lambda a, b: a + b, [F.col(m) * F.lit(w) for m, w in weights.items()])
    return rows.withColumn("prediction", total)


def trained_members(spark: SparkSession, config: Config) -> tuple[list[str], int]:
    """The members with predictions in ``gold/model_predictions`` and their common gold version.

    Fails when fewer than two are trained or they were trained on different gold versions."""
    from smp_spark.lake import read_table, require_table

    require_table(spark, config.table(PREDICTIONS), "the training jobs (make train-all)")
    runs = (
        read_table(spark, config.table(PREDICTIONS))
        .filter(F.col("model").isin(*MEMBERS))
        .select("model", "gold_version")
        .distinct()
        .collect()
    )
    members = [m for m in MEMBERS if any(r["model"] == m for r in runs)]
    if len(members) < 2:
        raise InputError(f"the ensemble blends at least two trained models; found {members or 'none'}")
    versions = sorted({int(r["gold_version"]) for r in runs})
    if len(versions) > 1:
        by = ", ".join(f"{r['model']}: v{r['gold_version']}" for r in sorted(runs, key=lambda r: r["model"]))
        raise InputError(f"the members were trained on different gold versions ({by}): retrain them on one")
    return members, versions[0]


def save_weights(folder: str, weights: dict[str, float], gold_version: int) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, WEIGHTS_FILE)
    with open(path, "w") as f:
        json.dump({"gold_version": gold_version, "weights": weights, "fitted_on": VALID}, f, indent=1)
    return path


def load_weights(folder: str) -> dict[str, float]:
    path = os.path.join(folder, WEIGHTS_FILE)
    if not os.path.exists(path):
        raise InputError(f"no ensemble weights at {path}: run jobs/train_ensemble.py (make train-ensemble) first")
    with open(path) as f:
        return json.load(f)["weights"]


def train_ensemble(spark: SparkSession, config: Config) -> tuple[dict[str, float], list[dict]]:
    """Fit the blend of every trained member on the valid split, write its predictions (replacing
    the previous ensemble rows) and an MLflow run. Returns the weights and the metrics per split."""
    import mlflow

    from smp_spark.features.gold import gold_protocol
    from smp_spark.lake import read_table, sync_table
    from smp_spark.metrics import metrics
    from smp_spark.models.run import model_dir, recorded_rows
    from smp_spark.tracking import log_metrics, log_params, training_run

    members, version = trained_members(spark, config)
    table = read_table(spark, config.table(PREDICTIONS)).filter(F.col("model").isin(*members))
    rows = wide(table, members).localCheckpoint()
    weights = fit_weights(rows, members)
    folder = model_dir(config, NAME, version)
    save_weights(folder, weights, version)
    with training_run(config, NAME, version, [{"members": members}], gold_protocol(spark, config, version)) as run:
        predictions = recorded_rows(blend(rows, weights), NAME, run.info.run_id, version)
        scores = metrics(predictions)
        log_params({f"weight_{m}": round(w, 6) for m, w in weights.items()})
        log_metrics(scores)
        mlflow.log_artifacts(folder, artifact_path="model")
        sync_table(spark, predictions, config.table(PREDICTIONS), ["model", "Pid"], scope={"model": NAME})
    return weights, scores
