"""Category features: stable indices, frequency encodings and out-of-fold target encodings."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark.features.family import FeatureFamily
from smp_spark.features.manifest import CATEGORICAL, NUMERIC, FeatureSpec
from smp_spark.features.split import TRAIN

LEVELS = {"category": "Category", "subcategory": "Subcategory", "concept": "Concept"}
INDEX_SPECS = [
    FeatureSpec(
        f"{name}_idx",
        CATEGORICAL,
        "category",
        column,
        "fitted on the training split; unseen values -> a reserved last index",
    )
    for name, column in LEVELS.items()
]
ENCODING_SPECS = [
    spec
    for name, column in LEVELS.items()
    for spec in (
        FeatureSpec(f"{name}_freq", NUMERIC, "category", column, "share of training posts"),
        FeatureSpec(
            f"{name}_te", NUMERIC, "category", f"{column}, label", "training labels only; out-of-fold for training rows"
        ),
    )
]


def category_indexer() -> StringIndexer:
    """Category / Subcategory / Concept -> ``*_idx``, most frequent first (ties alphabetical), so
    the same training data always gives the same indices; unseen or null -> the last index.

    Window: fitted on the rows it is given (the training split)."""
    return StringIndexer(
        inputCols=list(LEVELS.values()),
        outputCols=[f"{name}_idx" for name in LEVELS],
        handleInvalid="keep",
        stringOrderType="frequencyDesc",
    )


def fit_encodings(posts: DataFrame, folds: int, seed: int) -> DataFrame:
    """Per category level and value: training-split post count, label sum, and the same per fold.

    Input: ``Pid``, ``split``, ``label``, the three levels. Output: a small table
    ``level, value, fold, n, label_sum`` (``fold`` = -1 for the whole training split).
    Window: training split only.
    """
    train = posts.filter(F.col("split") == TRAIN).withColumn("fold", fold_of("Pid", folds, seed))
    tables = []
    for name, column in LEVELS.items():
        by_fold = train.groupBy(F.col(column).alias("value"), "fold").agg(
            F.count(F.lit(1)).alias("n"), F.sum(exact("label")).alias("label_sum")
        )
        total = by_fold.groupBy("value").agg(F.sum("n").alias("n"), F.sum("label_sum").alias("label_sum"))
        tables += [
            by_fold.withColumn("level", F.lit(name)),
            total.withColumn("fold", F.lit(-1)).withColumn("level", F.lit(name)),
        ]
    out = tables[0]
    for table in tables[1:]:
        out = out.unionByName(table)
    return out.select("level", "value", F.col("fold").cast("int"), "n", "label_sum")


def exact(column: str):
    """A label as a decimal: sums of decimals do not depend on the order Spark adds them in."""
    return F.col(column).cast("decimal(24,6)")


def fold_of(key: str, folds: int, seed: int):
    return F.pmod(F.xxhash64(F.col(key), F.lit(seed)), F.lit(folds)).cast("int")


def apply_encodings(posts: DataFrame, encodings: DataFrame, folds: int, seed: int, smoothing: float) -> DataFrame:
    """Adds ``<level>_freq`` and ``<level>_te`` for every post.

    ``_freq`` is the value's share of training posts (0 when unseen). ``_te`` is the smoothed mean
    training label of the value: ``(label_sum + m * prior) / (n + m)``; for a training row its own
    fold is left out (out-of-fold), for any other row (valid, test, new posts) all training rows
    count. Window: training labels only.
    """
    totals = encodings.filter(F.col("fold") == -1)
    overall = (
        totals.filter(F.col("level") == "category").agg(F.sum("n").alias("n"), F.sum("label_sum").alias("s")).first()
    )
    n_train, prior = overall["n"], float(overall["s"]) / overall["n"]
    out = posts.withColumn("_fold", F.when(F.col("split") == TRAIN, fold_of("Pid", folds, seed)).otherwise(-2))
    for name, column in LEVELS.items():
        total = totals.filter(F.col("level") == name).select(
            F.col("value").alias(column), F.col("n").alias("_n"), F.col("label_sum").alias("_s")
        )
        own = encodings.filter((F.col("level") == name) & (F.col("fold") >= 0)).select(
            F.col("value").alias(column),
            F.col("fold").alias("_fold"),
            F.col("n").alias("_fn"),
            F.col("label_sum").alias("_fs"),
        )
        out = out.join(F.broadcast(total), column, "left").join(F.broadcast(own), [column, "_fold"], "left")
        n = F.coalesce("_n", F.lit(0)) - F.coalesce("_fn", F.lit(0))
        s = (F.coalesce("_s", F.lit(0)) - F.coalesce("_fs", F.lit(0))).cast("double")
        out = out.withColumns(
            {
                f"{name}_freq": F.coalesce("_n", F.lit(0)) / F.lit(float(n_train)),
                f"{name}_te": F.when(
                    n + F.lit(smoothing) > 0, (s + F.lit(smoothing * prior)) / (n + F.lit(smoothing))
                ).otherwise(F.lit(prior)),  # an unseen value with no smoothing: the prior
            }
        ).drop("_n", "_s", "_fn", "_fs")
    return out.drop("_fold")


@dataclass
class CategoryState:
    indexer: PipelineModel  # the fitted StringIndexer
    encodings: DataFrame  # fit_encodings' table
    # the encoding settings it was fitted with: scoring applies these, whatever its config says
    folds: int
    seed: int
    smoothing: float


class CategoryFamily(FeatureFamily):
    """Indices, frequencies and out-of-fold target encodings of the three category levels."""

    name = "category"

    def specs(self, config):
        return [*INDEX_SPECS, *ENCODING_SPECS]

    def fit(self, rows, inputs, config):
        f = config.features
        indexer = Pipeline(stages=[category_indexer()]).fit(rows.filter(F.col("split") == TRAIN))
        encodings = fit_encodings(rows, f.encoding_folds, f.encoding_seed)
        return CategoryState(indexer, encodings, f.encoding_folds, f.encoding_seed, f.encoding_smoothing)

    def apply(self, rows, inputs, state, config):
        out = state.indexer.transform(rows).withColumns({s.name: F.col(s.name).cast("int") for s in INDEX_SPECS})
        return apply_encodings(out, state.encodings, state.folds, state.seed, state.smoothing)

    def save(self, state, path):
        state.indexer.write().overwrite().save(f"{path}/indexer")
        state.encodings.write.format("delta").mode("overwrite").save(f"{path}/encodings")
        settings = [(state.folds, state.seed, float(state.smoothing))]
        frame = state.encodings.sparkSession.createDataFrame(settings, "folds int, seed long, smoothing double")
        frame.coalesce(1).write.mode("overwrite").json(f"{path}/settings")

    def load(self, spark, path):
        encodings = spark.read.format("delta").load(f"{path}/encodings")
        settings = spark.read.schema("folds int, seed long, smoothing double").json(f"{path}/settings").first()
        return CategoryState(
            PipelineModel.load(f"{path}/indexer"), encodings, settings["folds"], settings["seed"], settings["smoothing"]
        )

    @staticmethod
    def vocabularies(state: CategoryState) -> dict[str, int]:
        """``*_idx`` -> the fitted labels plus the reserved index for unseen / null values."""
        model = state.indexer.stages[0]
        return {column: len(labels) + 1 for column, labels in zip(model.getOutputCols(), model.labelsArray)}
