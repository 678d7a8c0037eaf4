"""The feature-family contract: what every family of gold features declares and does.

A family names its features (:class:`FeatureSpec` with their windows), the tables it reads besides
the post rows, what it fits on the training split (if anything), how that state is saved beside a
gold version, and how it computes its columns. The gold build and the scorer loop over
:data:`smp_spark.features.registry.FAMILIES`; a new family is one module with a subclass and one
entry in that list.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from smp_spark.catalog import Table
from smp_spark.config import Config
from smp_spark.features.manifest import FeatureSpec

Inputs = dict[str, DataFrame]  # catalog table name -> its rows (the lake's, or a scored batch's)


class FeatureFamily(ABC):
    name: str

    @abstractmethod
    def specs(self, config: Config) -> list[FeatureSpec]:
        """The features this family adds under ``config`` (a switched-off input adds none)."""

    def tables(self, config: Config) -> list[Table]:
        """The tables it reads besides the post rows (posts joined to users, with split and label)."""
        return []

    def fit(self, rows: DataFrame, inputs: Inputs, config: Config) -> Any:
        """What it learns from the training split of ``rows``; None when it learns nothing."""
        return None

    @abstractmethod
    def apply(self, rows: DataFrame, inputs: Inputs, state: Any, config: Config) -> DataFrame:
        """``rows`` with this family's columns added (every row kept, in any order)."""

    def save(self, state: Any, path: str) -> None:
        """Write the fitted state under ``path`` (a folder of its own); nothing when it fits nothing."""
        if state is not None:
            raise NotImplementedError(f"family {self.name} fitted a state but does not say how to save it")

    def load(self, spark: SparkSession, path: str) -> Any:
        """Read what :meth:`save` wrote."""
        return None
