"""The feature manifest: every gold-table feature with its type, family and source."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from pyspark.sql import DataFrame, SparkSession

NUMERIC, CATEGORICAL, VECTOR = "numeric", "categorical", "vector"
Kind = Literal["numeric", "categorical", "vector"]
Modality = Literal["tabular", "text", "image"]  # what train.modalities switches on and off


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    # numeric | categorical (an integer index; the trees declare it) | vector: a fixed-width
    # array<float> column (never a Spark ML vector, a udt other engines cannot read), turned into
    # model slots <name>_0, <name>_1, ... by smp_spark.models.dataset.assemble
    kind: Kind
    family: str  # time | text | embedding | category | user | social | geo | image
    source: str  # the bronze columns it is computed from
    window: str = "the post itself"  # which rows it may read: its time window
    modality: Modality = "tabular"


def manifest_frame(spark: SparkSession, specs: list[FeatureSpec], gold_columns: list[str]) -> DataFrame:
    """The manifest as a DataFrame (name, kind, family, source, window, modality), in gold-table
    column order."""
    position = {name: i for i, name in enumerate(gold_columns)}
    rows = [asdict(s) for s in sorted(specs, key=lambda s: position[s.name])]
    schema = "name string, kind string, family string, source string, window string, modality string"
    return spark.createDataFrame(rows, schema)
