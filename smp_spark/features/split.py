"""Train / valid / test split of the posts."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

TRAIN, VALID, TEST = "train", "valid", "test"


def stable_uniform(key: str, seed: int):
    """A per-row number in [0, 1) from a hash of ``key``: the same on any partitioning or rerun."""
    return F.pmod(F.xxhash64(F.col(key), F.lit(seed)), F.lit(1_000_003)) / F.lit(1_000_003.0)


def chronological_split(posts: DataFrame, train_fraction: float, valid_fraction: float) -> DataFrame:
    """Adds ``split``: the earliest ``train_fraction`` of posts by Postdate are train, the next
    ``valid_fraction`` valid, the rest test. Cut points are Postdate quantiles, so posts at the same
    second always share a split.

    Input: ``Postdate``. Output: ``split``. Window: all posts (only their Postdates).
    """
    cuts = posts.agg(
        F.percentile_approx("Postdate", [train_fraction, train_fraction + valid_fraction], 1_000_000).alias("q")
    ).first()["q"]
    return posts.withColumn(
        "split",
        F.when(F.col("Postdate") <= cuts[0], TRAIN).when(F.col("Postdate") <= cuts[1], VALID).otherwise(TEST),
    )


def research_split(posts: DataFrame, seed: int, test_fraction: float = 0.2, valid_fraction: float = 0.1) -> DataFrame:
    """Adds ``split`` the way the research did (LEAKY, for comparison only): a random 80/20 split
    stratified by Category (seed 42 by default), ignoring time and users; ``valid_fraction`` of
    the training part is held out for early stopping.

    Input: ``Pid``, ``Category``. Output: ``split``. Window: all posts.
    """
    draw = stable_uniform("Pid", seed)
    rank = F.percent_rank().over(Window.partitionBy("Category").orderBy(draw, "Pid"))
    return posts.withColumn(
        "split",
        F.when(rank >= 1 - test_fraction, TEST)
        .when(stable_uniform("Pid", seed + 1) < valid_fraction, VALID)
        .otherwise(TRAIN),
    )
