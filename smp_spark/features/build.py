"""Bronze tables -> one gold row per post: the split, the label and every feature family.

Two halves, so the scoring job can reuse the second on new posts:
- :func:`fit_feature_state`: what each family learns from the training split (TF-IDF + PCA,
  category indices and encodings, the image PCA);
- :func:`add_features`: every family's features for a set of posts, given that state.
Both loop over the families of :data:`smp_spark.features.registry.FAMILIES` that
``features.families`` switches on.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.errors import InputError
from smp_spark.features.family import Inputs
from smp_spark.features.registry import active_families, feature_specs
from smp_spark.features.split import chronological_split, research_split
from smp_spark.ingest.bronze import USER_COLUMNS as BRONZE_USER_COLUMNS

KEY_COLUMNS = ["Pid", "Uid", "Postdate", "split", "label"]
SCRAPED_USER_COLUMNS = ["contacts_count", "public_groups_count"]  # keyed by user alone, from bronze/users
FeatureState = dict[str, Any]  # family name -> what it fitted (None when it fits nothing)


def with_split(posts: DataFrame, config: Config) -> DataFrame:
    """Adds ``split`` by the configured protocol (chronological by default)."""
    f = config.features
    if f.protocol == "seed":
        return research_split(posts, f.split_seed)
    return chronological_split(posts, f.train_fraction, f.valid_fraction)


def join_users(posts: DataFrame, users: DataFrame) -> DataFrame:
    """Posts (with their own point-in-time profile columns) joined to the scraped user statistics."""
    missing = [c for c in BRONZE_USER_COLUMNS if c not in posts.columns]
    if missing:
        raise InputError(
            f"bronze/posts has no {missing[0]} column: the lake was ingested before posts kept their own "
            "user profile; rerun jobs/ingest.py (make ingest)"
        )
    return posts.join(users.select("Uid", *SCRAPED_USER_COLUMNS), "Uid", "left")


def fit_feature_state(rows: DataFrame, inputs: Inputs, config: Config) -> FeatureState:
    """Each family's fit on the training split of ``rows`` (posts with ``split`` and ``label``)."""
    return {family.name: family.fit(rows, inputs, config) for family in active_families(config)}


def add_features(rows: DataFrame, inputs: Inputs, state: FeatureState, config: Config) -> DataFrame:
    """Every feature for ``rows`` (posts joined to users, with ``split`` and ``label``).

    User history reads ``rows`` themselves, so ``rows`` must hold the user's earlier posts too.
    Returns the gold columns: ``Pid, Uid, Postdate, split, label`` and the manifest's features.
    """
    out = rows
    for family in active_families(config):
        out = family.apply(out, inputs, state[family.name], config)
    return out.select(*KEY_COLUMNS, *[spec.name for spec in feature_specs(config)])


def build_gold(inputs: Inputs, config: Config, state: FeatureState | None = None) -> tuple[DataFrame, FeatureState]:
    """The gold feature rows of every bronze post, and the state fitted on the training split (or
    ``state``, an earlier gold version's kept by :mod:`smp_spark.features.reuse`)."""
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
    if state is None:
        state = fit_feature_state(rows, inputs, config)
    return add_features(rows, inputs, state, config), state


__all__ = ["FeatureState", "add_features", "build_gold", "feature_specs", "fit_feature_state", "join_users"]
