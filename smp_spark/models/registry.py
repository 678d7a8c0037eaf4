"""The model registry: every model behind one contract that training, the ablation and scoring loop
over. A new model is one subclass of :class:`Model` (train and predict on assembled inputs) and
one entry in :data:`MODELS`.

Every saved model keeps the feature layout it was trained on (``input_slots.json``: the slot names of
its input vector); scoring refuses a gold version whose layout differs, naming the first
difference, rather than feeding features into the wrong slots.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from typing import Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.errors import InputError
from smp_spark.models.dataset import ModelInput, assemble
from smp_spark.models.trees import TrainedModel

ModelName = Literal["lightgbm", "xgboost", "catboost", "fusion"]
LAYOUT_FILE = "input_slots.json"


class Model(ABC):
    """One kind of model: how it trains on assembled gold rows and how a saved one predicts."""

    name: str
    native_file: str  # the model file plain lightgbm / xgboost / catboost / torch loads, in its folder
    warm_starts = True  # continues from an earlier model under train.warm_start (smp_spark/models/warm_start.py)

    def input_config(self, config: Config) -> Config:
        """The config its inputs are assembled under (the fusion net also takes the raw embeddings)."""
        return config

    def job_conf(self, config: Config) -> dict[str, str]:
        """Spark settings its own training job starts the session with (none by default)."""
        return {}

    @abstractmethod
    def train(
        self, spark: SparkSession, config: Config, data: ModelInput, out_dir: str, start: str | None = None
    ) -> TrainedModel:
        """Fit on ``data``'s training split, early-stopping on its valid split, saving into ``out_dir``;
        continuing from the saved model in the folder ``start`` when given."""

    @abstractmethod
    def predict_input(self, spark: SparkSession, folder: str, data: ModelInput) -> DataFrame:
        """``Pid, prediction`` of the saved model in ``folder`` for assembled rows."""

    def predict(self, spark: SparkSession, config: Config, folder: str, rows: DataFrame, gold_version: int):
        """``Pid, prediction`` for gold-shaped ``rows``, after checking the layout the model was
        trained on."""
        trained = trained_slots(folder, self.name)
        data = assemble(rows, self.input_config(config), gold_version, slot_widths(trained))
        check_layout(trained, data.slot_names, folder, self.name)
        return self.predict_input(spark, folder, data).select("Pid", F.col("prediction").cast("double"))


class SparkModel(Model):
    """A Spark ML model saved under ``<folder>/spark_model``."""

    def predict_input(self, spark: SparkSession, folder: str, data: ModelInput) -> DataFrame:
        return self.loader().load(os.path.join(folder, "spark_model")).transform(data.rows)

    @abstractmethod
    def loader(self): ...


class LightGBM(SparkModel):
    name = "lightgbm"
    native_file = "lightgbm_model.txt"
    # measured at 680K (docs/benchmarks.md, session 29): new trees from the earlier model's
    # predictions, appended to its trees, took 1.21x the job from scratch (more trees to predict
    # every post with) and a 0.3% worse valid MAE; SynapseML's own modelString loses the earlier
    # trees when it saves the best iteration
    warm_starts = False

    def train(self, spark, config, data, out_dir, start=None):
        from smp_spark.models.trees import train_lightgbm

        return train_lightgbm(spark, config, data, out_dir)

    def loader(self):
        from synapse.ml.lightgbm import LightGBMRegressionModel

        return LightGBMRegressionModel


class XGBoost(SparkModel):
    name = "xgboost"
    native_file = "xgboost_model.json"

    def job_conf(self, config):
        """``spark.task.cpus`` = ``train.xgboost_worker_threads`` (0: the cores of an executor), since
        xgboost.spark runs a worker per task slot with ``nthread`` = ``spark.task.cpus``: on 2
        cores, 1 worker of 2 threads trained in 117 s what 2 workers of 1 thread did in 160 s
        (docs/benchmarks.md, session 15). Unset when the cluster does not say its executor size."""
        from smp_spark.session import planned_executor_cores

        threads = config.train.xgboost_worker_threads or planned_executor_cores(config)
        return {"spark.task.cpus": str(threads)} if threads and threads > 1 else {}

    def train(self, spark, config, data, out_dir, start=None):
        from smp_spark.models.trees import train_xgboost

        return train_xgboost(spark, config, data, out_dir, start)

    def loader(self):
        from xgboost.spark import SparkXGBRegressorModel

        return SparkXGBRegressorModel


class CatBoost(Model):
    name = "catboost"
    native_file = "catboost_model.cbm"

    def train(self, spark, config, data, out_dir, start=None):
        from smp_spark.models.trees import train_catboost

        return train_catboost(spark, config, data, out_dir, start)

    def predict_input(self, spark, folder, data):
        from smp_spark.models.trees import predict_with_catboost

        return predict_with_catboost(spark, os.path.join(folder, self.native_file), data.rows, data.categorical_slots)


class Fusion(Model):
    name = "fusion"
    native_file = "fusion_model.pt"

    def input_config(self, config):
        from smp_spark.models.fusion import with_embeddings

        return with_embeddings(config)

    def train(self, spark, config, data, out_dir, start=None):
        from smp_spark.models.fusion import train_fusion

        return train_fusion(spark, config, data, out_dir, start)

    def predict_input(self, spark, folder, data):
        from smp_spark.models.fusion import predict_with_fusion

        return predict_with_fusion(folder, data)


MODELS: dict[str, Model] = {m.name: m for m in (LightGBM(), XGBoost(), CatBoost(), Fusion())}


def model(name: str) -> Model:
    if name not in MODELS:
        raise InputError(f"unknown model '{name}': one of {', '.join(MODELS)}")
    return MODELS[name]


def save_layout(folder: str, slot_names: list[str]) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LAYOUT_FILE), "w") as f:
        json.dump({"slots": slot_names}, f)


def trained_slots(folder: str, name: str) -> list[str]:
    path = os.path.join(folder, LAYOUT_FILE)
    if not os.path.exists(path):
        raise InputError(f"{path} is missing: retrain {name} (models saved before layouts were recorded)")
    with open(path) as f:
        return json.load(f)["slots"]


def slot_widths(slots: list[str]) -> dict[str, int]:
    """Vector feature -> its number of slots in a layout (``<vector>_<i>`` slot names)."""
    widths: dict[str, int] = {}
    for slot in slots:
        found = re.fullmatch(r"(.+)_(\d+)", slot)
        if found:
            widths[found.group(1)] = max(widths.get(found.group(1), 0), int(found.group(2)) + 1)
    return widths


def check_layout(trained: list[str], slot_names: list[str], folder: str, name: str) -> None:
    """Fail unless ``slot_names`` is exactly ``trained``, the layout the model in ``folder`` was
    trained on."""
    if trained == slot_names:
        return
    if len(trained) != len(slot_names):
        where = f"{len(trained)} input slots at training, {len(slot_names)} now"
    else:
        i = next(i for i, (a, b) in enumerate(zip(trained, slot_names)) if a != b)
        where = f"slot {i} was '{trained[i]}' at training, is '{slot_names[i]}' now"
    raise InputError(f"{name} in {folder} was trained on another feature layout ({where}): retrain it on this gold")
