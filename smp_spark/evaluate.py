"""Evaluation of every trained model: the metrics of ``smp_spark.metrics`` beside the baselines, and
the report.

Inputs are the ``gold/model_predictions`` rows the trainers write. Baselines come beside the
models: the training split's median label as a constant prediction, and, for generated data, the
generator's oracle (``oracle_train.csv``). The split protocol is read from the gold versions the
models were trained on, never from the current config.
"""

from __future__ import annotations

import json
import os

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark.ablation import ablation_markdown
from smp_spark.features.gold import PROTOCOL_NOTES, gold_protocol
from smp_spark.features.split import TRAIN
from smp_spark.ingest.files import list_files
from smp_spark.lake import read_table, require_table
from smp_spark.metrics import MEDIAN_BASELINE, ORACLE, PREDICTIONS, metrics
from smp_spark.models.run import model_dir
from smp_spark.report import write_report

__all__ = ["MEDIAN_BASELINE", "ORACLE", "PREDICTIONS", "evaluate_all", "metrics"]


def median_baseline(predictions: DataFrame) -> DataFrame:
    """A constant prediction: the median label of the training split, for every split."""
    posts = predictions.select("Pid", "split", "label").dropDuplicates(["Pid"])
    median = posts.filter(F.col("split") == TRAIN).agg(F.percentile_approx("label", 0.5, 1_000_000)).first()[0]
    return posts.select(
        F.lit(MEDIAN_BASELINE).alias("model"), "Pid", "split", "label", F.lit(float(median)).alias("prediction")
    )


def oracle_rows(predictions: DataFrame, oracle: DataFrame) -> DataFrame:
    """The generator's noiseless prediction for each post (``oracle``: Pid, oracle)."""
    posts = predictions.select("Pid", "split", "label").dropDuplicates(["Pid"])
    return posts.join(oracle, "Pid").select(
        F.lit(ORACLE).alias("model"), "Pid", "split", "label", F.col("oracle").cast("double").alias("prediction")
    )


def error_by(predictions: DataFrame, posts: DataFrame, column: str) -> DataFrame:
    """MAE per model, split and value of a post column (e.g. Category)."""
    joined = predictions.join(posts.select("Pid", column), "Pid")
    return joined.groupBy("model", "split", column).agg(
        F.count(F.lit(1)).alias("n"), F.avg(F.abs(F.col("prediction") - F.col("label"))).alias("mae")
    )


def evaluate_all(spark, config) -> tuple[list[dict], str]:
    """Metrics of every model in ``gold/model_predictions`` beside the baselines, and the report.

    Returns the metric rows and the report page's path (``<reports>/gold_v<version>/index.md``).
    """

    require_table(spark, config.table(PREDICTIONS), "a training job, e.g. jobs/train_xgboost.py (make train-xgboost)")
    table = read_table(spark, config.table(PREDICTIONS))
    runs = table.select("model", "gold_version", "run_id").distinct().orderBy("model").collect()
    predictions = table.select("model", "Pid", "split", "label", "prediction")
    everything = predictions.unionByName(median_baseline(predictions))
    protocols = {v: gold_protocol(spark, config, v) for v in sorted({r["gold_version"] for r in runs})}
    notes = [
        "Split protocol (from each gold version's commit): "
        + ", ".join(f"gold v{v}: **{p}**" + (PROTOCOL_NOTES.get(p, "")) for v, p in protocols.items()),
        "",
        "| model | gold version | MLflow run |",
        "|---|---|---|",
        *[f"| {r['model']} | {r['gold_version']} | {r['run_id']} |" for r in runs],
    ]
    oracle_dir = os.path.dirname(config.path("raw").rstrip("/"))
    oracle_files = list_files(spark, oracle_dir, "oracle_train.csv")
    if oracle_files:
        oracle = (
            spark.read.option("header", "true")
            .csv(oracle_files[0].path)
            .select(F.col("Pid").cast("long"), F.col("oracle").cast("double"))
        )
        everything = everything.unionByName(oracle_rows(predictions, oracle))
    everything = everything.localCheckpoint()
    rows = metrics(everything)
    posts = read_table(spark, config.table("bronze/posts"))
    errors = [r.asDict() for r in error_by(everything.filter(F.col("split") == "test"), posts, "Category").collect()]
    versions = {r["gold_version"] for r in runs}
    label = "gold_v" + "_".join(str(v) for v in sorted(versions))
    folder = os.path.join(config.path("reports"), label)
    importance_files = {
        r["model"]: os.path.join(model_dir(config, r["model"], r["gold_version"]), "importances.json") for r in runs
    }
    importance_files = {m: f for m, f in importance_files.items() if os.path.exists(f)}
    extra = ablation_markdown(spark, config, versions)
    page = write_report(
        folder, f"smp-spark evaluation ({label})", rows, everything, errors, importance_files, notes, extra
    )
    with open(os.path.join(folder, "metrics.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return rows, page
