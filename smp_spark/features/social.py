"""Social-network-effect features from the scraped group tables."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.features.family import FeatureFamily
from smp_spark.features.manifest import NUMERIC, FeatureSpec

WINDOW = "scrape-time group data (2023 for real SMPD: after the post, see docs/data.md)"
GROUP_SPECS = [
    FeatureSpec("groups_scraped", NUMERIC, "social", "scrape_status.status", WINDOW),
    FeatureSpec("group_count", NUMERIC, "social", "post_groups", WINDOW),
    FeatureSpec("group_count_log", NUMERIC, "social", "post_groups", WINDOW),
    FeatureSpec("group_members_mean_log", NUMERIC, "social", "groups.member_count", WINDOW),
    FeatureSpec("group_members_max_log", NUMERIC, "social", "groups.member_count", WINDOW),
    FeatureSpec("group_members_sum_log", NUMERIC, "social", "groups.member_count", WINDOW),
    FeatureSpec("group_pool_mean_log", NUMERIC, "social", "groups.pool_count", WINDOW),
    FeatureSpec("group_pool_max_log", NUMERIC, "social", "groups.pool_count", WINDOW),
]
USER_SPECS = [
    FeatureSpec("user_contacts_log", NUMERIC, "social", "users.contacts_count", WINDOW),
    FeatureSpec("user_public_groups_log", NUMERIC, "social", "users.public_groups_count", WINDOW),
]


def group_features(posts: DataFrame, post_groups: DataFrame, groups: DataFrame, scrape_status: DataFrame) -> DataFrame:
    """The research's ``groups`` / ``group_impact`` / ``group_weight``, fixed.

    Input: posts (``Pid``), ``bronze/post_groups`` (Pid, group_id), ``bronze/groups`` (group_id,
    member_count, pool_count), ``bronze/scrape_status`` (Pid, status). Output per post:
    ``groups_scraped`` (1 when the photo was scraped ``ok``), ``group_count`` (+ ``_log``),
    log1p of the mean / max / sum of the groups' member counts and of the mean / max pool count.
    A post scraped ``ok`` in no group gets 0; a post never scraped (or not_found / failed) gets
    null, so "not scraped" stays distinct from "in no groups". Window: the scraped tables.
    """
    per_post = (
        post_groups.join(groups, "group_id")
        .groupBy("Pid")
        .agg(
            F.count(F.lit(1)).alias("_n"),
            F.avg("member_count").alias("_m_mean"),
            F.max("member_count").alias("_m_max"),
            F.sum("member_count").alias("_m_sum"),
            F.avg("pool_count").alias("_p_mean"),
            F.max("pool_count").alias("_p_max"),
        )
    )
    ok = scrape_status.filter(F.col("status") == "ok").select("Pid", F.lit(1).alias("_ok"))
    out = posts.join(ok, "Pid", "left").join(per_post, "Pid", "left")
    scraped = F.col("_ok").isNotNull()

    def when_scraped(value):
        return F.when(scraped, F.coalesce(value, F.lit(0.0)))

    return out.withColumns(
        {
            "groups_scraped": scraped.cast("int"),
            "group_count": when_scraped(F.col("_n")),
            "group_count_log": when_scraped(F.log1p("_n")),
            "group_members_mean_log": when_scraped(F.log1p("_m_mean")),
            "group_members_max_log": when_scraped(F.log1p("_m_max")),
            "group_members_sum_log": when_scraped(F.log1p("_m_sum")),
            "group_pool_mean_log": when_scraped(F.log1p("_p_mean")),
            "group_pool_max_log": when_scraped(F.log1p("_p_max")),
        }
    ).drop("_ok", "_n", "_m_mean", "_m_max", "_m_sum", "_p_mean", "_p_max")


def user_social(posts: DataFrame) -> DataFrame:
    """The scraped user table's counts, log1p; null when the user was not scraped.

    Input: ``contacts_count``, ``public_groups_count`` (joined from ``bronze/users``).
    Output: ``user_contacts_log``, ``user_public_groups_log``. Window: the scraped user table.
    """
    return posts.withColumns(
        {
            "user_contacts_log": F.log1p("contacts_count"),
            "user_public_groups_log": F.log1p("public_groups_count"),
        }
    )


class SocialFamily(FeatureFamily):
    """The scraped group tables (the social network effect) and the scraped user counts."""

    name = "social"

    def specs(self, config):
        return [*GROUP_SPECS, *USER_SPECS]

    def tables(self, config):
        return [catalog.POST_GROUPS, catalog.GROUPS, catalog.SCRAPE_STATUS]

    def apply(self, rows, inputs, state, config):
        tables = [inputs[t.name] for t in self.tables(config)]
        return group_features(user_social(rows), *tables)
