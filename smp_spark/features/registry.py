"""The feature-family registry: every family the gold table is built from, in build order.

Build (:mod:`smp_spark.features.build`), the stored state (:mod:`smp_spark.features.gold`) and
scoring loop over :data:`FAMILIES`; adding a family is one module and one entry here.
"""

from __future__ import annotations

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.features.category import CategoryFamily
from smp_spark.features.family import FeatureFamily
from smp_spark.features.geo import GeoFamily
from smp_spark.features.image import ImageFamily
from smp_spark.features.manifest import FeatureSpec
from smp_spark.features.pretrained import EmbeddingFamily
from smp_spark.features.social import SocialFamily
from smp_spark.features.temporal import TimeFamily
from smp_spark.features.text import TextFamily
from smp_spark.features.user import UserFamily

FAMILIES: list[FeatureFamily] = [
    TimeFamily(),
    GeoFamily(),
    TextFamily(),
    UserFamily(),
    SocialFamily(),
    CategoryFamily(),
    ImageFamily(),
    EmbeddingFamily(),
]
# every spec a gold table can hold (the defaults switch every input on): select by its columns
ALL_SPECS: list[FeatureSpec] = [spec for family in FAMILIES for spec in family.specs(Config())]


def active_families(config: Config) -> list[FeatureFamily]:
    """The families ``features.families`` switches on, in build order."""
    return [family for family in FAMILIES if family.name in config.features.families]


def feature_specs(config: Config) -> list[FeatureSpec]:
    """The features a gold build under ``config`` produces, family by family (the manifest)."""
    return [spec for family in active_families(config) for spec in family.specs(config)]


def input_tables(config: Config) -> list[catalog.Table]:
    """Every table the switched-on families read under ``config``, each once."""
    seen: dict[str, catalog.Table] = {}
    for family in active_families(config):
        for table in family.tables(config):
            seen.setdefault(table.name, table)
    return list(seen.values())


def family(name: str) -> FeatureFamily:
    return next(f for f in FAMILIES if f.name == name)
