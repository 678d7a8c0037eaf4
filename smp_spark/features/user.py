"""User features: the profile, and point-in-time history of the user's earlier posts."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from smp_spark.features.family import FeatureFamily
from smp_spark.features.manifest import CATEGORICAL, NUMERIC, FeatureSpec
from smp_spark.features.split import TRAIN

PROFILE_WINDOW = "the post's own user record (point in time)"
PROFILE_SPECS = [
    FeatureSpec("photo_count_log", NUMERIC, "user", "posts.photo_count", PROFILE_WINDOW),
    FeatureSpec("ispro", CATEGORICAL, "user", "posts.ispro", PROFILE_WINDOW),
    FeatureSpec("canbuypro", CATEGORICAL, "user", "posts.canbuypro", PROFILE_WINDOW),
    FeatureSpec("timezone_offset", NUMERIC, "user", "posts.timezone_offset", PROFILE_WINDOW),
    FeatureSpec("timezone_id", CATEGORICAL, "user", "posts.timezone_id", PROFILE_WINDOW),
    FeatureSpec("user_description_nonzero", NUMERIC, "user", "posts.user_description", PROFILE_WINDOW),
    FeatureSpec("has_location_description", NUMERIC, "user", "posts.location_description", PROFILE_WINDOW),
]
HISTORY_WINDOW = "the user's posts strictly before this one (labels: training split only)"
HISTORY_SPECS = [
    FeatureSpec("user_prev_posts", NUMERIC, "user", "posts.Postdate", HISTORY_WINDOW),
    FeatureSpec("user_days_since_prev_post", NUMERIC, "user", "posts.Postdate", HISTORY_WINDOW),
    FeatureSpec("user_prev_train_labels", NUMERIC, "user", "posts.label", HISTORY_WINDOW),
    FeatureSpec("user_prev_mean_label", NUMERIC, "user", "posts.label", HISTORY_WINDOW),
    FeatureSpec("user_prev_last_label", NUMERIC, "user", "posts.label", HISTORY_WINDOW),
]


def user_profile(posts: DataFrame) -> DataFrame:
    """Profile fields of the post's user, from the post's own user record (point in time).

    Input: ``photo_count``, ``ispro``, ``canbuypro``, ``timezone_offset``, ``timezone_id``,
    ``user_description``, ``location_description``. Output: ``photo_count_log`` = log1p,
    ``ispro``, ``canbuypro``, ``timezone_offset``, ``timezone_id`` (an integer, null when not
    numeric), ``user_description_nonzero`` (share of non-zero values; SMPD zero-fills unknown
    users), ``has_location_description``. Window: the user record of this post (never a later post's).
    """
    description = F.col("user_description")
    return posts.withColumns(
        {
            "photo_count_log": F.log1p("photo_count"),
            "ispro": F.col("ispro").cast("int"),
            "canbuypro": F.col("canbuypro").cast("int"),
            "timezone_id": F.col("timezone_id").cast("int"),
            "user_description_nonzero": F.when(
                F.size(description) > 0,
                F.size(F.filter(description, lambda v: v != 0)) / F.size(description),
            ),
            "has_location_description": F.col("location_description").isNotNull().cast("int"),
        }
    )


def user_history(posts: DataFrame) -> DataFrame:
    """Point-in-time history of the post's user.

    Input: ``Pid``, ``Uid``, ``Postdate``, ``split``, ``label``. Output: ``user_prev_posts`` (the user's
    posts strictly earlier in time, any split: no label is read), ``user_days_since_prev_post``,
    ``user_prev_train_labels`` (how many of those earlier posts are in the training split),
    ``user_prev_mean_label`` and ``user_prev_last_label`` (mean and latest label of those
    earlier training posts; null when there are none). Window: strictly earlier posts only (a post
    at the same second is not earlier), and only training-split labels, so no valid or test label
    and nothing from the future ever reaches a feature.
    """
    earlier = Window.partitionBy("Uid").orderBy("Postdate").rangeBetween(Window.unboundedPreceding, -1)
    train_label = F.when(F.col("split") == TRAIN, F.col("label"))
    return (
        posts.withColumn("_train_label", train_label)
        .withColumns(
            {
                "user_prev_posts": F.count(F.lit(1)).over(earlier),
                "user_days_since_prev_post": (F.col("Postdate") - F.max("Postdate").over(earlier)) / 86_400,
                "user_prev_train_labels": F.count("_train_label").over(earlier),
                # a decimal sum: the same result whatever order same-second rows arrive in
                "user_prev_mean_label": F.avg(F.col("_train_label").cast("decimal(24,6)")).over(earlier).cast("double"),
                # latest earlier training label; posts at the same second are ordered by Pid (deterministic)
                "user_prev_last_label": F.max_by(
                    "_train_label", F.when(F.col("_train_label").isNotNull(), F.struct("Postdate", "Pid"))
                ).over(earlier),
            }
        )
        .drop("_train_label")
    )


class UserFamily(FeatureFamily):
    """The user's profile and point-in-time history (``rows`` must hold the user's earlier posts)."""

    name = "user"

    def specs(self, config):
        return [*PROFILE_SPECS, *HISTORY_SPECS]

    def apply(self, rows, inputs, state, config):
        return user_history(user_profile(rows))
