"""The next-day rebuild: keep the feature state of the latest gold version rather than fit it again.

With ``features.reuse_state`` a gold build takes the state the latest gold version was built with
(TF-IDF + PCA, category indices and encodings, the image PCA) as long as it is still a fit on
training posts only:

- both builds use the chronological protocol and the same ``features`` settings;
- no post moves away from training: every post that was in the training split is still in it, and
  every post that was in the valid split is in train or valid (a release of later posts passes;
  one that adds posts in the middle of the training window does not).

Then the posts gold held before keep their feature values (per-post aggregates read strictly
earlier posts), and the models may continue from the ones trained on the day before's gold
(``train.warm_start``, :mod:`smp_spark.models.warm_start`). Otherwise the build fits again and
says why. Each gold commit records its settings and ``fitted_on``, the gold version whose build
fitted its state.
"""

from __future__ import annotations

from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.features.build import FeatureState, with_split
from smp_spark.features.family import Inputs
from smp_spark.features.gold import GOLD, fit_settings, gold_metadata, metadata_protocol, read_state
from smp_spark.features.split import TEST, TRAIN, VALID
from smp_spark.lake import read_table, table_version


@dataclass(frozen=True)
class ReusedState:
    version: int  # the gold version it is taken from
    fitted_on: int  # the gold version whose build fitted it
    state: FeatureState


def reusable_state(spark: SparkSession, config: Config, inputs: Inputs) -> tuple[ReusedState | None, str]:
    """The latest gold version's state when this build may keep it, else None; and why, in words."""
    if not config.features.reuse_state:
        return None, "features.reuse_state is off"
    path = config.table(GOLD)
    if not DeltaTable.isDeltaTable(spark, path):
        return None, "there is no earlier gold version"
    version = table_version(spark, path)
    metadata = gold_metadata(spark, config, version)
    if config.features.protocol != "chronological" or metadata_protocol(metadata) != "chronological":
        return None, "only a chronological split keeps later posts out of an earlier fit"
    if "settings" not in metadata:
        return None, f"gold version {version} does not record its feature settings (built before they were recorded)"
    now = fit_settings(config)
    changed = sorted(k for k in now.keys() | metadata["settings"].keys() if now.get(k) != metadata["settings"].get(k))
    if changed:
        key = changed[0]
        return None, (
            f"features.{key} was {metadata['settings'].get(key)!r} for gold version {version}, is {now.get(key)!r} now"
        )
    before = read_table(spark, path, version).select("Postdate", "split")
    moved = moved_away_from_training(before, with_split(inputs[catalog.POSTS.name], config))
    if moved:
        return None, moved
    fitted_on = int(metadata.get("fitted_on", version))
    return ReusedState(version, fitted_on, read_state(spark, config, version)), (
        f"keeping the state of gold version {version} (fitted by version {fitted_on}'s build)"
    )


def moved_away_from_training(before: DataFrame, now: DataFrame) -> str | None:
    """None when no post of ``before`` (``Postdate, split``) moves away from training in ``now``;
    else what moved. The splits are Postdate ranges (posts of one second share a split), so the
    latest training / valid post before is compared with the earliest valid-or-test / test post now.
    """
    last = {r["split"]: r["t"] for r in before.groupBy("split").agg(F.max("Postdate").alias("t")).collect()}
    first = {r["split"]: r["t"] for r in now.groupBy("split").agg(F.min("Postdate").alias("t")).collect()}
    later = [t for t in (first.get(VALID), first.get(TEST)) if t is not None]
    if last.get(TRAIN) is not None and later and last[TRAIN] >= min(later):
        return f"training posts up to Postdate {last[TRAIN]} would now reach valid or test (from {min(later)})"
    if last.get(VALID) is not None and first.get(TEST) is not None and last[VALID] >= first[TEST]:
        return f"valid posts up to Postdate {last[VALID]} would now reach test (from {first[TEST]})"
    return None
