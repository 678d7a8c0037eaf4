"""Batch scoring: a folder of new posts (SMPD test-release format, no labels) -> predictions.

New posts go through the same ingest rules (bad rows quarantined under ``<lake>/scoring``), the
feature state fitted for the model's gold version (TF-IDF + PCA, category indices and encodings),
and user history read from the training lake (the user's earlier posts and their training labels).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.errors import InputError
from smp_spark.evaluate import PREDICTIONS as TRAINING_PREDICTIONS
from smp_spark.features.build import add_features, join_users
from smp_spark.features.embeddings import EMBEDDINGS, update_embeddings
from smp_spark.features.family import Inputs
from smp_spark.features.gold import GOLD, read_inputs, read_state
from smp_spark.features.image_embeddings import SPEC as IMAGE_EMBEDDING
from smp_spark.features.image_embeddings import update_image_embeddings
from smp_spark.ingest import build_bronze, write_bronze
from smp_spark.lake import read_table, require_table, sync_table
from smp_spark.models.dataset import assemble
from smp_spark.models.fusion import predict_with_fusion, with_embeddings
from smp_spark.models.run import model_dir
from smp_spark.models.trees import predict_with_catboost

SCORES = "gold/predictions"
SCORING_LAKE = "scoring"  # bronze tables and quarantine of scored batches, under the lake
NEW = "score"  # the split name of new posts


def scoring_config(config: Config) -> Config:
    """The same config with its lake moved to ``<lake>/scoring`` for the new posts' bronze tables."""
    return replace(config, paths=replace(config.paths, lake=config.table(SCORING_LAKE)))


def trained_gold_version(spark: SparkSession, config: Config, model: str) -> int:
    """The gold version ``model`` was last trained on (from ``gold/model_predictions``)."""
    require_table(spark, config.table(TRAINING_PREDICTIONS), f"jobs/train_{model}.py (make train-{model})")
    rows = (
        read_table(spark, config.table(TRAINING_PREDICTIONS))
        .filter(F.col("model") == model)
        .select("gold_version")
        .distinct()
        .collect()
    )
    if not rows:
        raise InputError(
            f"no trained '{model}' model in {config.table(TRAINING_PREDICTIONS)}: run "
            f"jobs/train_{model}.py (make train-{model}) first"
        )
    return int(rows[0][0])


def gold_config(spark: SparkSession, config: Config, gold_version: int) -> Config:
    """``config`` with the cached stages switched as they were for that gold version (its columns
    say which embeddings it was built with), so scoring computes exactly its features."""
    columns = read_table(spark, config.table(GOLD), gold_version).columns
    features = replace(
        config.features,
        text_embeddings="text_embedding" in columns,
        image_embeddings=IMAGE_EMBEDDING.name in columns,
    )
    return replace(config, features=features)


def feature_rows(spark: SparkSession, config: Config, batch: Config, gold_version: int) -> DataFrame:
    """Gold-shaped feature rows of the new posts of ``batch`` (the scoring lake), computed with the
    training lake's fitted state for ``gold_version``.

    The user-history window sees the training posts (with the split and labels of that gold
    version) followed by the new posts, so a new post's history is its user's earlier posts. The
    new posts' texts and images go through the same cached embedding stages, into the scoring lake.
    """
    config = gold_config(spark, config, gold_version)
    batch = replace(batch, features=config.features)
    f = config.features
    new_posts = read_table(spark, batch.table(catalog.POSTS.name))
    if f.text_embeddings:
        update_embeddings(spark, new_posts, batch.table(EMBEDDINGS), f.embedding_batch_size, f.embedding_precision)
    if f.image_embeddings:
        images = read_table(spark, batch.table(catalog.IMAGES.name))
        update_image_embeddings(spark, images, batch.table(catalog.IMAGE_EMBEDDINGS.name), batch)
    new: Inputs = read_inputs(spark, config, lake=batch)
    gold = read_table(spark, config.table(GOLD), gold_version).select("Pid", "split", "label")
    history = read_table(spark, config.table(catalog.POSTS.name)).drop("label", "_row_hash").join(gold, "Pid")
    users = read_table(spark, config.table(catalog.USERS.name))
    new_users = new[catalog.USERS.name]
    users = new_users.unionByName(users.join(new_users.select("Uid"), "Uid", "left_anti"), allowMissingColumns=True)
    batch_posts = (
        new[catalog.POSTS.name]
        .drop("_row_hash")
        .withColumn("split", F.lit(NEW))
        .withColumn("label", F.lit(None).cast("double"))
    )
    rows = join_users(history.unionByName(batch_posts.select(*history.columns)), users)
    state = read_state(spark, config, gold_version)
    features = add_features(rows, {**new, catalog.USERS.name: users}, state, config)
    return features.filter(F.col("split") == NEW)


def predict(spark: SparkSession, config: Config, model: str, gold_version: int, rows: DataFrame) -> DataFrame:
    """``Pid, prediction`` from the saved model of ``model`` for that gold version."""
    folder = model_dir(config, model, gold_version)
    if model == "fusion":
        return predict_with_fusion(folder, assemble(rows, with_embeddings(config), gold_version)).select(
            "Pid", "prediction"
        )
    data = assemble(rows, config, gold_version)
    if model == "catboost":
        scored = predict_with_catboost(spark, os.path.join(folder, "catboost_model.cbm"), data.rows)
    else:
        if model == "lightgbm":
            from synapse.ml.lightgbm import LightGBMRegressionModel as Loader
        else:
            from xgboost.spark import SparkXGBRegressorModel as Loader
        scored = Loader.load(os.path.join(folder, "spark_model")).transform(data.rows)
    return scored.select("Pid", F.col("prediction").cast("double"))


def score_folder(spark: SparkSession, config: Config, folder: str, scraped: str, model: str) -> tuple[DataFrame, int]:
    """Ingest ``folder`` (and its scraped tables), featurise, predict; write ``gold/predictions``.

    Returns the predictions written for this batch and the gold version used.
    """
    version = trained_gold_version(spark, config, model)  # before ingesting: fail fast without a model
    batch = scoring_config(config)
    bronze = build_bronze(spark, batch, folder, scraped)
    write_bronze(spark, batch, bronze)
    predictions = predict(spark, config, model, version, feature_rows(spark, config, batch, version))
    out = predictions.select(
        F.lit(model).alias("model"), "Pid", "prediction", F.lit(version).alias("gold_version")
    ).localCheckpoint()
    sync_table(spark, out, config.table(SCORES), ["model", "Pid"], scope={"model": model})
    return out, version


def write_submission(predictions: DataFrame, path: str) -> int:
    """The SMP Challenge submission file. Single node: the JSON document is assembled on the
    driver from one (post id, score) pair per post."""
    rows = predictions.select("Pid", "prediction").orderBy("Pid").collect()
    document = {
        "version": "VERSION 1.0",
        "result": [{"post_id": f"post{r['Pid']}", "popularity_score": round(float(r["prediction"]), 4)} for r in rows],
        "external_data": {"used": "true", "details": "scraped Flickr group tables (social network effect)"},
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(document, f)
    return len(rows)
