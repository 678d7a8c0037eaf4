"""MAE, RMSE and Spearman rank correlation (SRC) per model and split, computed in Spark.

Inputs are prediction rows ``model, Pid, split, label, prediction`` (the ``gold/model_predictions``
table the trainers write). A null or NaN prediction is never averaged away: :func:`metrics` fails,
naming the model and how many. Everything here is pure computation; ``evaluate`` adds the
baselines and the report.
"""

from __future__ import annotations

import math

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.errors import EvaluationError

PREDICTIONS = catalog.MODEL_PREDICTIONS.name
MEDIAN_BASELINE = "median baseline"
ORACLE = "oracle (generator)"


def average_ranks(df: DataFrame, column: str, group: list[str]) -> DataFrame:
    """Adds ``<column>_rank``: the 1-based rank of ``column`` within ``group``, ties sharing their
    average rank (as scipy.stats.rankdata): the mean of a tie's first rank (``rank()``) and its
    last (the rows up to and including the value: a range frame counts the ties as peers). Both
    come from one window, so one sort of each group and no join back to the rows (a count per
    distinct value joined back took three shuffles and 1.4-2x as long, docs/benchmarks.md,
    session 34)."""
    ordered = Window.partitionBy(*group).orderBy(column)
    through_ties = ordered.rangeBetween(Window.unboundedPreceding, Window.currentRow)
    last = F.count(F.lit(1)).over(through_ties)
    return df.withColumn(f"{column}_rank", (F.rank().over(ordered) + last) / 2.0)


def check_predictions(predictions: DataFrame) -> None:
    """Fail when any prediction or label is null, NaN or infinite, naming the model and how many."""

    def bad(column: str):
        value = F.col(column)
        return value.isNull() | F.isnan(value) | (F.abs(value) == float("inf"))

    counts = (
        predictions.groupBy("model")
        .agg(
            F.sum(bad("prediction").cast("long")).alias("bad_predictions"),
            F.sum(bad("label").cast("long")).alias("bad_labels"),
        )
        .filter((F.col("bad_predictions") > 0) | (F.col("bad_labels") > 0))
        .orderBy("model")
        .collect()
    )
    if counts:
        found = "; ".join(
            f"model '{r['model']}': {r['bad_predictions']} null/NaN/infinite predictions, {r['bad_labels']} labels"
            for r in counts
        )
        raise EvaluationError(f"cannot evaluate: {found}. Retrain the model or fix its input rows.")


def metrics(predictions: DataFrame) -> list[dict]:
    """One dict per (model, split), sorted: n, MAE, RMSE, SRC (None when predictions are constant).

    Fails (:class:`EvaluationError`) on a null or NaN prediction. The sums are exact (decimals;
    ranks are whole or half numbers, so twice a rank is an integer), so the same predictions always
    give the same metrics to the last bit, whatever order Spark adds the rows in. Only these few
    sums per group reach the driver.
    """
    check_predictions(predictions)
    group = ["model", "split"]
    ranked = average_ranks(average_ranks(predictions, "label", group), "prediction", group)
    # the windows leave a partition per few groups (one task may sort a whole training split):
    # spread the rows again so the decimal sums below run on every core
    ranked = ranked.repartition(max(2, predictions.sparkSession.sparkContext.defaultParallelism) * 4)
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
