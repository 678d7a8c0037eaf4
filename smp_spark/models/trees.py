"""Distributed gradient-boosted trees on the gold table: SynapseML LightGBM and xgboost.spark,
plus single-node CatBoost (catboost-spark has no Spark 3.5 artifact on Maven Central).

Each trainer fits on the training split, early-stops on the valid split, and returns a
:class:`TrainedModel`: predictions for every post, the Spark model, the native model file that
plain ``lightgbm`` / ``xgboost`` / ``catboost`` load, and feature importances.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.config import Config, TrainConfig
from smp_spark.models.dataset import VALID_FLAG, ModelInput, fit_rows
from smp_spark.session import executor_cores, slot_count


@dataclass
class TrainedModel:
    """A trained model; the fusion net (smp_spark/models/fusion.py) returns one too."""

    name: str  # lightgbm | xgboost | catboost | fusion
    predictions: DataFrame  # Pid, split, label, prediction
    params: dict
    native_path: str  # the model file plain lightgbm / xgboost / catboost loads (fusion: its state_dict)
    importances: dict[str, float]  # slot name -> gain (fusion: empty)
    best_iteration: int | None = None  # fusion: the best epoch
    spark_model: object | None = None  # a Spark ML model (None for single-node CatBoost)
    extra: dict = field(default_factory=dict)


def workers(spark: SparkSession, config: Config) -> int:
    """Distributed tasks: the configured count, never more than the session's task slots (a barrier
    stage that asks for more slots than exist would wait forever)."""
    slots = slot_count(spark)
    return min(config.train.num_workers or slots, slots)


@contextlib.contextmanager
def _fit_rows_once(data: ModelInput, tasks: int):
    """The training and validation rows in ``tasks`` partitions, read and assembled once: the
    distributed trainers pass over their input several times before training (SynapseML: column
    statistics, row counts, a bin sample, the validation rows; xgboost.spark: its own
    preparation), and each pass would otherwise read the gold table and assemble the vectors
    again. Released when the fit returns."""
    rows = fit_rows(data).repartition(tasks).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        yield rows
    finally:
        rows.unpersist()


def _predictions(model, data: ModelInput) -> DataFrame:
    return model.transform(data.rows).select("Pid", "split", "label", F.col("prediction").cast("double"))


def train_lightgbm(spark: SparkSession, config: Config, data: ModelInput, out_dir: str) -> TrainedModel:
    """SynapseML ``LightGBMRegressor``: L2 objective, MAE for early stopping, categorical slots
    declared, one barrier task per slot on a fixed listen port."""
    from synapse.ml.lightgbm import LightGBMRegressor

    t = config.train
    tasks = workers(spark, config)
    params = dict(
        objective="regression",
        metric="l1",
        learningRate=t.learning_rate,
        numLeaves=t.num_leaves,
        maxDepth=t.max_depth,
        numIterations=t.num_rounds,
        earlyStoppingRound=t.early_stopping_rounds,
        categoricalSlotIndexes=data.categorical_slots,
        numTasks=tasks,
        useBarrierExecutionMode=True,
        defaultListenPort=t.listen_port,
        numThreads=executor_cores(spark),  # one native trainer per executor (single-dataset mode)
        seed=t.seed,
        deterministic=True,
        verbosity=-1,
        passThroughArgs="force_col_wise=true",
    )
    max_cat_threshold = _distributed_max_cat_threshold(spark, data)
    if max_cat_threshold is not None:
        params["maxCatThreshold"] = max_cat_threshold
    estimator = LightGBMRegressor(featuresCol="features", labelCol="label", validationIndicatorCol=VALID_FLAG, **params)
    with _fit_rows_once(data, tasks) as rows:
        model = estimator.fit(rows)
    native = os.path.join(out_dir, "lightgbm_model.txt")
    os.makedirs(out_dir, exist_ok=True)
    with open(native, "w") as f:
        f.write(model.getNativeModel())
    gains = model.getFeatureImportances("gain")
    return TrainedModel(
        "lightgbm",
        _predictions(model, data),
        {**params, "workers": tasks},
        native,
        dict(zip(data.slot_names, map(float, gains))),
        best_iteration=int(model.getBoosterBestIteration()),
        spark_model=model,
    )


def _distributed_max_cat_threshold(spark: SparkSession, data: ModelInput) -> int | None:
    """A ``max_cat_threshold`` that keeps LightGBM alive when it trains across executors, or None
    on one executor (local mode: one LightGBM machine, LightGBM's default 32).

    The machines exchange their best splits in buffers that lightgbmlib 3.3.510 (SynapseML 1.1.3)
    sizes 16 bytes short (fixed upstream in LightGBM #6738; SynapseML #2697): a categorical split
    over more than ``max_cat_threshold - 4`` categories overflows and the executor dies with
    SIGSEGV in ``SerialTreeLearner::SplitInner``. A split takes at most (bins + 1) / 2 categories,
    bins = codes + the NaN bin, so a threshold 4 above that can never be reached.
    """
    from pyspark.ml.functions import vector_to_array

    if spark.sparkContext.master.startswith("local") or not data.categorical_slots:
        return None
    values = vector_to_array("features")
    codes = [F.when(~F.isnan(values[i]), values[i]) for i in data.categorical_slots]
    top = fit_rows(data).select(F.greatest(*codes, F.lit(0.0)).alias("code")).agg(F.max("code")).first()[0]
    bins = int(top or 0) + 2
    return max(32, (bins + 1) // 2 + 4)


def train_xgboost(
    spark: SparkSession, config: Config, data: ModelInput, out_dir: str, start: str | None = None
) -> TrainedModel:
    """xgboost.spark ``SparkXGBRegressor`` with ``num_workers`` barrier tasks; categorical codes are
    fed as numbers, as the research did. From ``start`` (a folder with ``xgboost_model.json``):
    xgboost's own continued training (``xgb_model``), its iterations counted on from that model's."""
    from xgboost import Booster
    from xgboost.spark import SparkXGBRegressor

    t = config.train
    tasks = workers(spark, config)
    params = dict(
        objective="reg:squarederror",
        eval_metric="mae",
        learning_rate=t.learning_rate,
        max_depth=t.max_depth,
        n_estimators=t.num_rounds,
        early_stopping_rounds=t.early_stopping_rounds,
        tree_method="hist",
        num_workers=tasks,
        seed=t.seed,
        missing=float("nan"),
    )
    earlier = Booster(model_file=os.path.join(start, "xgboost_model.json")) if start else None
    estimator = SparkXGBRegressor(
        features_col="features", label_col="label", validation_indicator_col=VALID_FLAG, xgb_model=earlier, **params
    )
    with _fit_rows_once(data, tasks) as rows:
        model = estimator.fit(rows)
    booster = model.get_booster()
    native = os.path.join(out_dir, "xgboost_model.json")
    os.makedirs(out_dir, exist_ok=True)
    booster.save_model(native)
    gains = booster.get_score(importance_type="total_gain")  # keys "f0", "f1", ...
    importances = {name: float(gains.get(f"f{i}", 0.0)) for i, name in enumerate(data.slot_names)}
    return TrainedModel(
        "xgboost",
        _predictions(model, data),
        {**params, "workers": tasks, "start": start or ""},
        native,
        importances,
        best_iteration=getattr(booster, "best_iteration", None),
        spark_model=model,
    )


def _to_numpy(rows: DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pid, features matrix, label of a (training-size) frame, through Arrow."""
    from pyspark.ml.functions import vector_to_array

    frame = rows.select("Pid", vector_to_array("features").alias("f"), "label").toPandas()
    return (
        frame["Pid"].to_numpy(),
        np.stack(frame["f"].to_numpy()) if len(frame) else np.empty((0, 0)),
        frame["label"].to_numpy(),
    )


def catboost_frame(matrix: np.ndarray, categorical_slots: list[int]):
    """The model input as CatBoost's native categorical features need it: a DataFrame whose
    categorical slots are integer codes (a missing code, NaN in the vector, becomes -1) and whose
    other slots stay float (NaN = missing)."""
    import pandas as pd

    frame = pd.DataFrame(matrix, columns=[f"f{i}" for i in range(matrix.shape[1])])
    for i in categorical_slots:
        frame[f"f{i}"] = frame[f"f{i}"].fillna(-1).astype("int64")
    return frame


def catboost_params(t: TrainConfig, threads: int) -> dict:
    """CatBoostRegressor's settings: the research's (see :func:`train_catboost`) with ``t``'s rate,
    depth, rounds, early stopping and seed."""
    return dict(
        loss_function="RMSE",
        eval_metric="MAE",
        learning_rate=t.learning_rate,
        depth=t.max_depth,
        iterations=t.num_rounds,
        od_type="Iter",
        od_wait=t.early_stopping_rounds,
        use_best_model=True,
        l2_leaf_reg=3,
        max_ctr_complexity=1,
        leaf_estimation_method="Gradient",
        random_seed=t.seed,
        thread_count=threads,
        verbose=0,
    )


def train_catboost(
    spark: SparkSession, config: Config, data: ModelInput, out_dir: str, start: str | None = None
) -> TrainedModel:
    """Single-node CatBoost (the research's third model) with the research's settings: native
    categorical features (``cat_features``: CatBoost's ordered target statistics), RMSE loss, MAE
    for early stopping, depth 8, l2_leaf_reg 3, max_ctr_complexity 1, gradient leaf estimation.

    SINGLE NODE: the training and valid rows are collected to the driver (about 60 floats a post:
    ~330 MB at 680K posts), because no catboost-spark artifact for Spark 3.5 resolves from Maven
    Central. Predictions for all posts are computed in Spark with a pandas UDF over the saved model.
    From ``start`` (a folder with ``catboost_model.cbm``): CatBoost's own ``init_model``.
    """
    from catboost import CatBoostRegressor, Pool

    pids, x, y = _to_numpy(fit_rows(data).filter(~F.col(VALID_FLAG)))
    _, x_valid, y_valid = _to_numpy(fit_rows(data).filter(F.col(VALID_FLAG)))
    params = catboost_params(config.train, slot_count(spark))
    # CatBoost's own training logs go beside the model, not into the working folder
    os.makedirs(out_dir, exist_ok=True)
    model = CatBoostRegressor(**params, train_dir=os.path.join(out_dir, "catboost_info"))
    cats = data.categorical_slots
    model.fit(
        Pool(catboost_frame(x, cats), y, cat_features=cats),
        eval_set=Pool(catboost_frame(x_valid, cats), y_valid, cat_features=cats),
        init_model=os.path.join(start, "catboost_model.cbm") if start else None,
    )
    native = os.path.join(out_dir, "catboost_model.cbm")
    model.save_model(native)
    importances = dict(zip(data.slot_names, map(float, model.get_feature_importance())))
    return TrainedModel(
        "catboost",
        predict_with_catboost(spark, native, data.rows, cats),
        {**params, "cat_features": len(cats), "start": start or ""},
        native,
        importances,
        best_iteration=int(model.get_best_iteration()),
    )


def predict_with_catboost(
    spark: SparkSession, native_path: str, rows: DataFrame, categorical_slots: list[int]
) -> DataFrame:
    """Distributed scoring with a saved CatBoost model: its bytes are broadcast to the executors (a
    file shipped with ``addFile`` keeps its name for the session, so a second model of the same
    name, e.g. the next day's in one notebook, would be refused)."""
    import pandas as pd
    from pyspark.ml.functions import vector_to_array

    with open(native_path, "rb") as f:
        blob = spark.sparkContext.broadcast(f.read())

    def score(frames):
        from catboost import CatBoostRegressor

        model = CatBoostRegressor()
        model.load_model(blob=blob.value)
        for frame in frames:
            matrix = np.stack(frame["f"].to_numpy()) if len(frame) else np.empty((0, 0))
            yield pd.DataFrame(
                {
                    "Pid": frame["Pid"],
                    "split": frame["split"],
                    "label": frame["label"],
                    "prediction": model.predict(catboost_frame(matrix, categorical_slots)) if len(frame) else [],
                }
            )

    prepared = rows.select("Pid", "split", "label", vector_to_array("features").alias("f"))
    return prepared.mapInPandas(score, "Pid long, split string, label double, prediction double")
