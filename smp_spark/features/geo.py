"""Geo features: coordinates with "no location" kept missing, never 0."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark.features.family import FeatureFamily
from smp_spark.features.manifest import CATEGORICAL, NUMERIC, FeatureSpec

SPECS = [
    FeatureSpec("has_geo", NUMERIC, "geo", "Latitude, Longitude, Geoaccuracy"),
    FeatureSpec("latitude", NUMERIC, "geo", "Latitude"),
    FeatureSpec("longitude", NUMERIC, "geo", "Longitude"),
    FeatureSpec("geoaccuracy", CATEGORICAL, "geo", "Geoaccuracy"),
]


def geo_features(posts: DataFrame) -> DataFrame:
    """Location of the post.

    Input: ``Latitude``, ``Longitude``, ``Geoaccuracy``. SMPD writes "no location" as 0 / 0 / 0
    (or an empty string). Output: ``has_geo`` (0/1), and ``latitude``, ``longitude``,
    ``geoaccuracy`` that are null without a location. Window: the post itself.
    """
    lat, lon, acc = F.col("Latitude"), F.col("Longitude"), F.col("Geoaccuracy")
    located = lat.isNotNull() & lon.isNotNull() & ~((lat == 0) & (lon == 0)) & (F.coalesce(acc, F.lit(1)) > 0)
    return posts.withColumns(
        {
            "has_geo": located.cast("int"),
            "latitude": F.when(located, lat),
            "longitude": F.when(located, lon),
            "geoaccuracy": F.when(located, acc).cast("int"),
        }
    )


class GeoFamily(FeatureFamily):
    name = "geo"

    def specs(self, config):
        return SPECS

    def apply(self, rows, inputs, state, config):
        return geo_features(rows)
