"""Bronze tables -> one gold row per post: the split, the label and every feature family.

Two halves, so the scoring job can reuse the second on new posts:
- :func:`fit_feature_state`: what is learnt from the training split (TF-IDF + PCA, category
  indices, category encodings);
- :func:`add_features`: every feature of a set of posts, given that state.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.features import category, embeddings, geo, social, temporal, text, user
from smp_spark.features.manifest import FeatureSpec
from smp_spark.features.split import TRAIN, chronological_split, research_split
from smp_spark.ingest.bronze import USER_COLUMNS as BRONZE_USER_COLUMNS

KEY_COLUMNS = ["Pid", "Uid", "Postdate", "split", "label"]
USER_COLUMNS = [*BRONZE_USER_COLUMNS, "contacts_count", "public_groups_count"]  # + the scraped user stats


def feature_specs(with_embeddings: bool = False) -> list[FeatureSpec]:
    """Every feature the gold table carries, family by family (the manifest)."""
    return [
        *temporal.SPECS,
        *text.STAT_SPECS,
        *text.SVD_SPECS,
        *([embeddings.SPEC] if with_embeddings else []),
        *category.INDEX_SPECS,
        *category.ENCODING_SPECS,
        *user.PROFILE_SPECS,
        *user.HISTORY_SPECS,
        *social.GROUP_SPECS,
        *social.USER_SPECS,
        *geo.SPECS,
    ]


@dataclass
class BronzeInputs:
    posts: DataFrame
    users: DataFrame
    post_groups: DataFrame
    groups: DataFrame
    scrape_status: DataFrame
    text_embeddings: DataFrame | None = None  # gold/text_embeddings, when the stage is enabled


@dataclass
class FeatureState:
    """Everything fitted on the training split."""

    pipeline: PipelineModel  # TF-IDF + PCA per text, category indices
    encodings: DataFrame  # category frequency / target statistics (category.fit_encodings)


def with_split(posts: DataFrame, config: Config) -> DataFrame:
    """Adds ``split`` by the configured protocol (chronological by default)."""
    f = config.features
    if f.protocol == "seed":
        return research_split(posts, f.split_seed)
    return chronological_split(posts, f.train_fraction, f.valid_fraction)


def join_users(posts: DataFrame, users: DataFrame) -> DataFrame:
    return posts.join(users.select("Uid", *USER_COLUMNS), "Uid", "left")


def fit_feature_state(rows: DataFrame, config: Config) -> FeatureState:
    """Fit on the training split of ``rows`` (posts with ``split`` and ``label``)."""
    f = config.features
    train = rows.filter(F.col("split") == TRAIN)
    stages = text.tfidf_pipeline(f.tfidf_vocab, f.tfidf_min_df, f.svd_components).getStages()
    pipeline = Pipeline(stages=[*stages, category.category_indexer()]).fit(train)
    encodings = category.fit_encodings(rows, f.encoding_folds, f.encoding_seed)
    return FeatureState(pipeline=pipeline, encodings=encodings)


def add_features(rows: DataFrame, inputs: BronzeInputs, state: FeatureState, config: Config) -> DataFrame:
    """Every feature for ``rows`` (posts joined to users, with ``split`` and ``label``).

    User history reads ``rows`` themselves, so ``rows`` must hold the user's earlier posts too.
    Returns the gold columns: ``Pid, Uid, Postdate, split, label`` and the manifest's features.
    """
    f = config.features
    out = temporal.time_features(rows)
    out = geo.geo_features(out)
    out = text.text_stats(out)
    out = user.user_profile(out)
    out = social.user_social(out)
    out = user.user_history(out)
    out = social.group_features(out, inputs.post_groups, inputs.groups, inputs.scrape_status)
    out = text.apply_tfidf(state.pipeline, out)
    out = out.withColumns({spec.name: F.col(spec.name).cast("int") for spec in category.INDEX_SPECS})
    out = category.apply_encodings(out, state.encodings, f.encoding_folds, f.encoding_seed, f.encoding_smoothing)
    with_embeddings = inputs.text_embeddings is not None
    if with_embeddings:
        vectors = inputs.text_embeddings.select("Pid", F.col("embedding").alias(embeddings.SPEC.name))
        out = out.join(vectors, "Pid", "left")
    return out.select(*KEY_COLUMNS, *[spec.name for spec in feature_specs(with_embeddings)])


def build_gold(inputs: BronzeInputs, config: Config) -> tuple[DataFrame, FeatureState]:
    """The gold feature rows of every bronze post, and the state fitted on the training split."""
    # a layout fixed by Pid alone: fitted vocabularies and sums then do not depend on how the
    # bronze tables happened to be partitioned
    partitions = int(inputs.posts.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    rows = (
        with_split(join_users(inputs.posts, inputs.users), config)
        .repartition(partitions, "Pid")
        .sortWithinPartitions("Pid")
        .localCheckpoint()
    )
    state = fit_feature_state(rows, config)
    return add_features(rows, inputs, state, config), state
