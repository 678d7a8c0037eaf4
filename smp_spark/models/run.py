"""One training run of a model (a tree or the fusion net): fit, save, track, and record its predictions."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.console import Phases, format_table
from smp_spark.features.gold import gold_protocol
from smp_spark.features.registry import ALL_SPECS
from smp_spark.lake import sync_table
from smp_spark.metrics import PREDICTIONS, metrics
from smp_spark.models.dataset import model_input
from smp_spark.models.registry import model, save_layout
from smp_spark.models.trees import TrainedModel
from smp_spark.models.warm_start import previous_model
from smp_spark.tracking import log_metrics, log_params, training_run


def model_dir(config: Config, name: str, gold_version: int) -> str:
    return os.path.join(config.path("models"), name, f"gold_v{gold_version}")


def recorded_rows(predictions: DataFrame, name: str, run_id: str, gold_version: int) -> DataFrame:
    """``gold/model_predictions`` rows of one run (materialised: they are scored and written)."""
    return predictions.select(
        F.lit(name).alias("model"),
        "Pid",
        "split",
        "label",
        "prediction",
        F.lit(run_id).alias("run_id"),
        F.lit(gold_version).alias("gold_version"),
    ).localCheckpoint()


def train_and_record(spark: SparkSession, config: Config, name: str) -> tuple[TrainedModel, list[dict]]:
    """Train ``name`` on the latest gold version; write its predictions to ``gold/model_predictions``
    (replacing that model's previous rows) and log the run to MLflow. Returns the model (its
    ``extra["phases"]``: the seconds of each phase) and its metrics per split."""
    kind = model(name)
    phases = Phases()
    with phases("open gold (schema, vector widths)"):
        data = model_input(spark, kind.input_config(config))
        out_dir = model_dir(config, name, data.gold_version)
        slots = data.slot_names
        manifest = [asdict(s) for s in ALL_SPECS if any(n == s.name or n.startswith(f"{s.name}_") for n in slots)]
        protocol = gold_protocol(spark, config, data.gold_version)
        start, why = previous_model(spark, config, kind, data)
    print(f"{name}: {why}" if start else f"{name}: training from scratch ({why})", flush=True)
    with training_run(config, name, data.gold_version, manifest, protocol) as run:
        with phases("fit (reads and assembles its rows)"):
            trained = kind.train(spark, config, data, out_dir, start)
            save_layout(out_dir, data.slot_names)
        with phases("predict every post"):
            predictions = recorded_rows(trained.predictions, name, run.info.run_id, data.gold_version)
        with phases("metrics"):
            scores = metrics(predictions)
        with phases("save the model, MLflow"):
            log_params({**trained.params, "best_iteration": trained.best_iteration, "slots": len(data.slot_names)})
            log_metrics(scores)
            _log_models(trained, out_dir)
        with phases("write gold/model_predictions"):
            sync_table(spark, predictions, config.table(PREDICTIONS), ["model", "Pid"], scope={"model": name})
    trained.extra["phases"] = phases.as_dict()
    print(format_table(["phase", "seconds"], phases.rows()))
    return trained, scores


def _log_models(trained: TrainedModel, out_dir: str) -> None:
    import mlflow

    if trained.importances:  # the fusion net has none
        with open(os.path.join(out_dir, "importances.json"), "w") as f:
            json.dump(dict(sorted(trained.importances.items(), key=lambda kv: -kv[1])), f, indent=1)
    if trained.spark_model is not None:
        trained.spark_model.write().overwrite().save(os.path.join(out_dir, "spark_model"))
    mlflow.log_artifacts(out_dir, artifact_path="model")


def training_job(name: str) -> None:
    """The whole ``jobs/train_<name>.py`` (a tree or the fusion net): parse arguments, train, record,
    print the scores."""
    from smp_spark.cli import run_job

    def main(config, args, spark):
        trained, scores = train_and_record(spark, config, name)
        print(
            format_table(
                ["split", "posts", "MAE", "RMSE", "SRC"],
                [(r["split"], r["n"], f"{r['mae']:.4f}", f"{r['rmse']:.4f}", f"{r['src']:.4f}") for r in scores],
            )
        )
        print(f"{name}: best iteration {trained.best_iteration}; native model {trained.native_path}")

    run_job(f"train_{name}", main, job_conf=model(name).job_conf)
