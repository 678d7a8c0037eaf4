"""Time features, in UTC whatever the session time zone."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from smp_spark.features.family import FeatureFamily
from smp_spark.features.manifest import CATEGORICAL, NUMERIC, FeatureSpec

SECONDS_PER_DAY = 86_400

SPECS = [
    FeatureSpec("hour", CATEGORICAL, "time", "Postdate"),
    FeatureSpec("day", CATEGORICAL, "time", "Postdate"),
    FeatureSpec("weekday", CATEGORICAL, "time", "Postdate"),
    FeatureSpec("week_hour", CATEGORICAL, "time", "Postdate"),
    FeatureSpec("iso_week", CATEGORICAL, "time", "Postdate"),
    FeatureSpec("month", CATEGORICAL, "time", "Postdate"),
    FeatureSpec("account_age_days", NUMERIC, "time", "Postdate, users.photo_firstdate"),
    FeatureSpec("days_since_first_taken", NUMERIC, "time", "Postdate, users.photo_firstdatetaken"),
]


def _utc_date(seconds: Column) -> Column:
    """The UTC calendar date of a Unix time, computed without the session time zone."""
    return F.date_from_unix_date(F.floor(seconds / SECONDS_PER_DAY).cast("int"))


def parse_first_taken(text: Column) -> Column:
    """``photo_firstdatetaken`` as a date: ``YYYYMMDDHH`` digits or a ``YYYY-MM-DD HH:MM:SS``
    string. Flickr's placeholder years (before 1970) and unparseable text give null."""
    digits = F.to_date(F.substring(text, 1, 8), "yyyyMMdd")
    dated = F.to_date(F.substring(text, 1, 10), "yyyy-MM-dd")
    parsed = F.when(text.rlike(r"^\d{10}$"), digits).otherwise(dated)
    return F.when(F.year(parsed) >= 1970, parsed)


def time_features(posts: DataFrame) -> DataFrame:
    """Post-time features in UTC.

    Input: ``Postdate`` (Unix seconds), ``photo_firstdate`` (Unix seconds of the user's first
    upload), ``photo_firstdatetaken``. Output: ``hour``, ``day`` (of month), ``weekday``
    (Monday = 0), ``week_hour`` = weekday * 24 + hour, ``iso_week``, ``month``,
    ``account_age_days``, ``days_since_first_taken``. Window: the post itself.
    """
    date = _utc_date(F.col("Postdate"))
    hour = F.floor(F.pmod(F.col("Postdate"), SECONDS_PER_DAY) / 3600).cast("int")
    weekday = F.pmod(F.dayofweek(date) + 5, 7)  # Spark: Sunday = 1; ours: Monday = 0
    return posts.withColumns(
        {
            "hour": hour,
            "day": F.dayofmonth(date),
            "weekday": weekday,
            "week_hour": weekday * 24 + hour,
            "iso_week": F.weekofyear(date),
            "month": F.month(date),
            "account_age_days": (F.col("Postdate") - F.col("photo_firstdate")) / SECONDS_PER_DAY,
            "days_since_first_taken": F.datediff(date, parse_first_taken(F.col("photo_firstdatetaken"))).cast("double"),
        }
    )


class TimeFamily(FeatureFamily):
    name = "time"

    def specs(self, config):
        return SPECS

    def apply(self, rows, inputs, state, config):
        return time_features(rows)
