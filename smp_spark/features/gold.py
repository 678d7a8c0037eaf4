"""Write and read the gold feature table, its manifest, and the fitted feature state."""

from __future__ import annotations

import json
from dataclasses import asdict

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import FAMILY_NAMES, Config
from smp_spark.errors import InputError
from smp_spark.faults import crash_point
from smp_spark.features.build import FeatureState
from smp_spark.features.family import Inputs
from smp_spark.features.manifest import FeatureSpec, manifest_frame
from smp_spark.features.registry import active_families, input_tables
from smp_spark.lake import read_table, sync_table, table_version

GOLD = catalog.FEATURES.name
MANIFEST = catalog.MANIFEST.name
SWITCHES = {  # a cached stage's table -> the setting that turns its features off
    catalog.TEXT_EMBEDDINGS.name: "features.text_embeddings",
    catalog.IMAGE_EMBEDDINGS.name: "features.image_embeddings",
}


NOT_FITTED = ("reuse_state",)  # features settings that do not change what a build fits


def fit_settings(config: Config) -> dict:
    """The ``features`` settings a gold commit records: a later build keeps its state only under the
    same ones (:mod:`smp_spark.features.reuse`)."""
    return {k: v for k, v in asdict(config.features).items() if k not in NOT_FITTED}


def read_inputs(spark: SparkSession, config: Config, lake: Config | None = None) -> Inputs:
    """Posts, users and every table the feature families read under ``config``, from the lake of
    ``lake`` (default: ``config``'s).

    Fails with the command to run when a table is missing or posts lack a cached embedding."""
    lake = lake or config
    tables = [catalog.POSTS, catalog.USERS, *input_tables(config)]
    inputs: Inputs = {}
    for table in tables:
        path = lake.table(table.name)
        if not DeltaTable.isDeltaTable(spark, path):
            off = f", or --set {SWITCHES[table.name]}=false" if table.name in SWITCHES else ""
            raise InputError(f"no Delta table at {path}: run {table.producer} first{off}")
        inputs[table.name] = read_table(spark, path)
    if config.features.text_embeddings:
        embeddings = inputs[catalog.TEXT_EMBEDDINGS.name]
        missing = inputs[catalog.POSTS.name].join(embeddings, "Pid", "left_anti").count()
        if missing:
            raise InputError(
                f"{missing} posts have no text embedding in {lake.table(catalog.TEXT_EMBEDDINGS.name)}: run "
                f"{catalog.TEXT_EMBEDDINGS.producer}, or --set features.text_embeddings=false"
            )
    if config.features.image_embeddings:
        usable = inputs[catalog.IMAGES.name].filter(F.col("status") == "ok")
        missing = usable.join(inputs[catalog.IMAGE_EMBEDDINGS.name], "Pid", "left_anti").count()
        if missing:
            raise InputError(
                f"{missing} usable images have no row in {lake.table(catalog.IMAGE_EMBEDDINGS.name)}: run "
                f"{catalog.IMAGE_EMBEDDINGS.producer}, or --set features.image_embeddings=false"
            )
    return inputs


def read_bronze(spark: SparkSession, config: Config) -> Inputs:
    """The inputs of a gold build from the training lake (see :func:`read_inputs`)."""
    return read_inputs(spark, config)


def state_path(config: Config, gold_version: int) -> str:
    """Where the feature state fitted for a gold version lives (the scorer loads it from here)."""
    return config.table(f"artifacts/features/v{gold_version}")


def next_version(spark: SparkSession, path: str) -> int:
    return table_version(spark, path) + 1 if DeltaTable.isDeltaTable(spark, path) else 0


def write_gold(
    spark: SparkSession,
    config: Config,
    gold: DataFrame,
    state: FeatureState,
    specs: list[FeatureSpec],
    fitted_on: int | None = None,
) -> int:
    """Write the fitted state and the manifest of the next gold version, then commit the gold table.

    State first, gold last: a killed build never leaves a gold version without its state and
    manifest (a later build overwrites the orphaned ones). Returns the new gold version. The
    commit's user metadata records the split protocol, so a model trained on it can say which
    split it was evaluated on, its ``features`` settings, and ``fitted_on``: the gold version whose
    build fitted ``state`` (this one unless the state was kept from an earlier version).
    """
    path = config.table(GOLD)
    version = next_version(spark, path)
    root = state_path(config, version)
    for i, family in enumerate(active_families(config)):
        family.save(state[family.name], f"{root}/{family.name}")
        if i == 0:
            crash_point("gold:state-partly-written")
    crash_point("gold:state-written")
    manifest = manifest_frame(spark, specs, gold.columns).withColumn("gold_version", F.lit(version))
    sync_table(spark, manifest, config.table(MANIFEST), ["gold_version", "name"], scope={"gold_version": str(version)})
    crash_point("gold:manifest-written")
    metadata = json.dumps(
        {
            "protocol": config.features.protocol,
            "families": config.features.families,
            "features": len(specs),
            "settings": fit_settings(config),
            "fitted_on": version if fitted_on is None else fitted_on,
        }
    )
    (
        gold.write.format("delta")
        .mode("overwrite")
        .option("overwriteSchema", "true")
        .option("userMetadata", metadata)
        .save(path)
    )
    crash_point("gold:committed")
    written = table_version(spark, path)
    if written != version:  # another writer committed in between: the state is under the wrong name
        raise InputError(f"{path} moved to version {written} while this build wrote version {version}: rerun it")
    return version


PROTOCOL_NOTES = {
    "seed": " (a random split stratified by Category with a hashed Pid draw, like the research's but not "
    "its exact rows; leaky, for comparison only)",
}


def gold_metadata(spark: SparkSession, config: Config, gold_version: int) -> dict:
    """The user metadata a gold version was committed with (``protocol``, ``features``); empty when
    its commit is no longer in the Delta log (log retention)."""
    return gold_commits(spark, config).get(gold_version, {})


def gold_commits(spark: SparkSession, config: Config) -> dict[int, dict]:
    """Every gold version still in the Delta log -> the user metadata it was committed with (one
    read of the log's history: a row per commit, small)."""
    history = DeltaTable.forPath(spark, config.table(GOLD)).history().select("version", "userMetadata")
    return {int(r[0]): json.loads(r[1]) if r[1] else {} for r in history.collect()}


def gold_protocol(spark: SparkSession, config: Config, gold_version: int) -> str:
    """The split protocol a gold version was built with, from its own commit (never the current
    config): ``chronological``, ``seed``, or ``unknown`` when the commit no longer says."""
    return metadata_protocol(gold_metadata(spark, config, gold_version))


def metadata_protocol(metadata: dict) -> str:
    """The protocol a gold commit's metadata names (``unknown`` when it names none)."""
    return metadata.get("protocol", "unknown")


def metadata_families(metadata: dict) -> list[str]:
    """The families a gold commit's metadata names (every family for a commit from before gold
    recorded them)."""
    return list(metadata.get("families", FAMILY_NAMES))


def read_state(spark: SparkSession, config: Config, gold_version: int) -> FeatureState:
    """The state of every family ``config`` switches on (the scorer takes the ones a gold version
    was built with from its commit, :func:`gold_metadata`)."""
    root = state_path(config, gold_version)
    return {family.name: family.load(spark, f"{root}/{family.name}") for family in active_families(config)}


def read_manifest(spark: SparkSession, config: Config, gold_version: int) -> DataFrame:
    """The manifest rows of one gold version."""
    return read_table(spark, config.table(MANIFEST)).filter(F.col("gold_version") == gold_version)
