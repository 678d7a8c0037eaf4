"""MAE, RMSE and Spearman rank correlation (SRC) per model and split, computed in Spark.

Inputs are prediction rows ``model, Pid, split, label, prediction`` (the ``gold/model_predictions``
table the trainers write). Baselines come beside the models: the training split's median label as a
constant prediction, and, for generated data, the generator's oracle (``oracle_train.csv``).
"""

from __future__ import annotations

import math

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from smp_spark.features.split import TRAIN

PREDICTIONS = "gold/model_predictions"
MEDIAN_BASELINE = "median baseline"
ORACLE = "oracle (generator)"


def average_ranks(df: DataFrame, column: str, group: list[str]) -> DataFrame:
    """Adds ``<column>_rank``: the 1-based rank of ``column`` within ``group``, ties sharing their
    average rank (as scipy.stats.rankdata). Ranks are computed over distinct values: the window
    holds one row per distinct value of a group, not one per post."""
    counts = df.groupBy(*group, column).agg(F.count(F.lit(1)).alias("_ties"))
    before = Window.partitionBy(*group).orderBy(column).rowsBetween(Window.unboundedPreceding, -1)
    ranked = counts.withColumn(
        f"{column}_rank", F.coalesce(F.sum("_ties").over(before), F.lit(0)) + (F.col("_ties") + 1) / 2.0
    ).drop("_ties")
    return df.join(ranked, [*group, column])


def metrics(predictions: DataFrame) -> list[dict]:
    """One dict per (model, split), sorted: n, MAE, RMSE, SRC (None when predictions are constant).

    The sums are exact (decimals; ranks are whole or half numbers, so twice a rank is an integer),
    so the same predictions always give the same metrics to the last bit, whatever order Spark adds
    the rows in. Only these few sums per group reach the driver.
    """
    group = ["model", "split"]
    ranked = average_ranks(average_ranks(predictions, "label", group), "prediction", group)
    error = F.col("prediction") - F.col("label")
    x, y = F.col("label_rank") * 2, F.col("prediction_rank") * 2

    def exact_sum(column, scale: int = 0):
        return F.sum(column.cast(f"decimal(38,{scale})"))

    sums = ranked.groupBy(*group).agg(
        F.count(F.lit(1)).alias("n"),
        exact_sum(F.abs(error), 15).alias("abs_error"),
        exact_sum(error * error, 15).alias("squared_error"),
        exact_sum(x).alias("sx"),
        exact_sum(y).alias("sy"),
        exact_sum(x * y).alias("sxy"),
        exact_sum(x * x).alias("sxx"),
        exact_sum(y * y).alias("syy"),
    )
    rows = []
    for r in sums.orderBy(*group).collect():
        n = r["n"]
        sx, sy, sxy, sxx, syy = (int(r[k]) for k in ("sx", "sy", "sxy", "sxx", "syy"))
        spread = (n * sxx - sx * sx) * (n * syy - sy * sy)
        src = (n * sxy - sx * sy) / math.sqrt(spread) if spread > 0 else None
        rows.append(
            {
                "model": r["model"],
                "split": r["split"],
                "n": n,
                "mae": float(r["abs_error"]) / n,
                "rmse": math.sqrt(float(r["squared_error"]) / n),
                "src": src,
            }
        )
    return rows


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
    import json
    import os

    from smp_spark.ingest.files import list_files
    from smp_spark.lake import read_table, require_table
    from smp_spark.models.run import model_dir
    from smp_spark.report import write_report

    require_table(spark, config.table(PREDICTIONS), "a training job, e.g. jobs/train_xgboost.py (make train-xgboost)")
    table = read_table(spark, config.table(PREDICTIONS))
    runs = table.select("model", "gold_version", "run_id").distinct().orderBy("model").collect()
    predictions = table.select("model", "Pid", "split", "label", "prediction")
    everything = predictions.unionByName(median_baseline(predictions))
    notes = [
        f"Split protocol: **{config.features.protocol}**"
        + (" (the research's random split: leaky, for comparison only)" if config.features.protocol == "seed" else ""),
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
    from smp_spark.ablation import ablation_markdown

    extra = ablation_markdown(spark, config, versions)
    page = write_report(
        folder, f"smp-spark evaluation ({label})", rows, everything, errors, importance_files, notes, extra
    )
    with open(os.path.join(folder, "metrics.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return rows, page
