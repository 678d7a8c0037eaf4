"""Bronze tables -> one gold row per post: the split, the label and every feature family.

Two halves, so the scoring job can reuse the second on new posts:
- :func:`fit_feature_state`: what each family learns from the training split (TF-IDF + PCA,
  category indices and encodings, the image PCA);
- :func:`add_features`: every family's features for a set of posts, given that state.
Both loop over :data:`smp_spark.features.registry.FAMILIES`.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.features.family import Inputs
from smp_spark.features.registry import FAMILIES, feature_specs
from smp_spark.features.split import chronological_split, research_split
from smp_spark.ingest.bronze import USER_COLUMNS as BRONZE_USER_COLUMNS

KEY_COLUMNS = ["Pid", "Uid", "Postdate", "split", "label"]
USER_COLUMNS = [*BRONZE_USER_COLUMNS, "contacts_count", "public_groups_count"]  # + the scraped user stats
FeatureState = dict[str, Any]  # family name -> what it fitted (None when it fits nothing)


def with_split(posts: DataFrame, config: Config) -> DataFrame:
    """Adds ``split`` by the configured protocol (chronological by default)."""
    f = config.features
    if f.protocol == "seed":
        return research_split(posts, f.split_seed)
    return chronological_split(posts, f.train_fraction, f.valid_fraction)


def join_users(posts: DataFrame, users: DataFrame) -> DataFrame:
    return posts.join(users.select("Uid", *USER_COLUMNS), "Uid", "left")


def fit_feature_state(rows: DataFrame, inputs: Inputs, config: Config) -> FeatureState:
    """Each family's fit on the training split of ``rows`` (posts with ``split`` and ``label``)."""
    return {family.name: family.fit(rows, inputs, config) for family in FAMILIES}


def add_features(rows: DataFrame, inputs: Inputs, state: FeatureState, config: Config) -> DataFrame:
    """Every feature for ``rows`` (posts joined to users, with ``split`` and ``label``).

    User history reads ``rows`` themselves, so ``rows`` must hold the user's earlier posts too.
    Returns the gold columns: ``Pid, Uid, Postdate, split, label`` and the manifest's features.
    """
    out = rows
    for family in FAMILIES:
        out = family.apply(out, inputs, state[family.name], config)
    return out.select(*KEY_COLUMNS, *[spec.name for spec in feature_specs(config)])


def build_gold(inputs: Inputs, config: Config) -> tuple[DataFrame, FeatureState]:
    """The gold feature rows of every bronze post, and the state fitted on the training split."""
    posts = inputs[catalog.POSTS.name]
    # a layout fixed by Pid alone: fitted vocabularies and sums then do not depend on how the
    # bronze tables happened to be partitioned
    partitions = int(posts.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    rows = (
        with_split(join_users(posts, inputs[catalog.USERS.name]), config)
        .repartition(partitions, "Pid")
        .sortWithinPartitions("Pid")
        .localCheckpoint()
    )
    state = fit_feature_state(rows, inputs, config)
    return add_features(rows, inputs, state, config), state


__all__ = ["FeatureState", "add_features", "build_gold", "feature_specs", "fit_feature_state", "join_users"]
