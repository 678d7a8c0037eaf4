"""Write and read the gold feature table, its manifest, and the fitted feature state."""

from __future__ import annotations

import json

from delta.tables import DeltaTable
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.errors import InputError
from smp_spark.features.build import BronzeInputs, FeatureState
from smp_spark.features.embeddings import EMBEDDINGS
from smp_spark.features.manifest import FeatureSpec, manifest_frame
from smp_spark.lake import read_table, table_version

GOLD = "gold/features"
MANIFEST = "gold/feature_manifest"


def read_bronze(spark: SparkSession, config: Config) -> BronzeInputs:
    """The bronze tables, and the text embeddings when ``features.text_embeddings`` is on.

    Fails with the command to run when a table is missing or posts lack their embedding.
    """

    def table(name: str) -> DataFrame:
        path = config.table(name)
        if not DeltaTable.isDeltaTable(spark, path):
            step = "jobs/embed_text.py (make embeddings)" if name == EMBEDDINGS else "jobs/ingest.py (make ingest)"
            raise InputError(f"no Delta table at {path}: run {step} first")
        return read_table(spark, path)

    inputs = BronzeInputs(
        table("bronze/posts"),
        table("bronze/users"),
        table("bronze/post_groups"),
        table("bronze/groups"),
        table("bronze/scrape_status"),
    )
    if config.features.text_embeddings:
        inputs.text_embeddings = table(EMBEDDINGS)
        missing = inputs.posts.join(inputs.text_embeddings, "Pid", "left_anti").count()
        if missing:
            raise InputError(
                f"{missing} posts have no text embedding in {config.table(EMBEDDINGS)}: run "
                "jobs/embed_text.py (make embeddings), or --set features.text_embeddings=false"
            )
    return inputs


def state_path(config: Config, gold_version: int) -> str:
    """Where the feature state fitted for a gold version lives (the scorer loads it from here)."""
    return config.table(f"artifacts/features/v{gold_version}")


def write_gold(
    spark: SparkSession, config: Config, gold: DataFrame, state: FeatureState, specs: list[FeatureSpec]
) -> int:
    """Write the gold table as a new Delta version, then its manifest and fitted state.

    Returns the new gold version. The commit's user metadata records the split protocol, so a
    model trained on it can say which split it was evaluated on.
    """
    metadata = json.dumps({"protocol": config.features.protocol, "features": len(specs)})
    (
        gold.write.format("delta")
        .mode("overwrite")
        .option("overwriteSchema", "true")
        .option("userMetadata", metadata)
        .save(config.table(GOLD))
    )
    version = table_version(spark, config.table(GOLD))
    state.pipeline.write().overwrite().save(f"{state_path(config, version)}/pipeline")
    state.encodings.write.format("delta").mode("overwrite").save(f"{state_path(config, version)}/encodings")
    (
        manifest_frame(spark, specs, gold.columns)
        .withColumn("gold_version", F.lit(version))
        .write.format("delta")
        .mode("overwrite")
        .option("overwriteSchema", "true")
        .save(config.table(MANIFEST))
    )
    return version


def read_state(spark: SparkSession, config: Config, gold_version: int) -> FeatureState:
    root = state_path(config, gold_version)
    return FeatureState(PipelineModel.load(f"{root}/pipeline"), read_table(spark, f"{root}/encodings"))
