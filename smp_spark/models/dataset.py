"""The gold table as model input: one ``features`` vector per post, and the names of its slots."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.features.gold import GOLD
from smp_spark.features.manifest import CATEGORICAL, VECTOR, FeatureSpec
from smp_spark.features.registry import ALL_SPECS
from smp_spark.features.split import TRAIN, VALID
from smp_spark.lake import read_table, require_table, table_version

VALID_FLAG = "is_valid"


@dataclass
class ModelInput:
    """Gold rows with an assembled ``features`` vector and ``is_valid``; which gold version."""

    rows: DataFrame  # Pid, split, label, features, is_valid
    slot_names: list[str]  # the name of every slot of ``features``
    categorical_slots: list[int]
    gold_version: int
    # the same rows before assembly: Pid, split, label and each input column (vectors as arrays), so
    # a pass that needs a few slots reads those columns, not every slot of ``features``
    inputs: DataFrame
    slot_inputs: list[tuple[str, int | None]]  # slot -> (column, index in it)

    def slot_value(self, slot: int) -> Column:
        """Slot ``slot`` of ``features`` as a double column of :attr:`inputs`: null where the slot
        holds NaN (a null feature, a null vector, a NaN value)."""
        column, index = self.slot_inputs[slot]
        value = (F.col(column) if index is None else F.col(column)[index]).cast("double")
        return F.nanvl(value, F.lit(None).cast("double"))

    def float_features(self) -> DataFrame:
        """``Pid, split, label, features``: the slots of ``features`` as an ``array<float>`` built
        from :attr:`inputs` in Spark SQL, without the vector: a null scalar or vector gives NaN
        slots, as the assembler's. The same floats as ``vector_to_array(features, "float32")`` at
        half the width of the vector's doubles and without its two conversions."""
        nan = F.lit(float("nan")).cast("float")
        widths: dict[str, int] = {}
        for column, index in self.slot_inputs:
            if index is not None:
                widths[column] = index + 1
        scalars = [F.coalesce(F.col(c).cast("float"), nan) for c, index in self.slot_inputs if index is None]
        vectors = [F.coalesce(F.col(c).cast("array<float>"), F.array_repeat(nan, w)) for c, w in widths.items()]
        features = F.concat(F.array(*scalars), *vectors) if vectors else F.array(*scalars)
        return self.inputs.select("Pid", "split", "label", features.alias("features"))


def _vector_width(rows: DataFrame, column: str) -> int:
    first = rows.select(column).filter(F.col(column).isNotNull()).first()
    return len(first[0]) if first else 0


def model_specs(columns: list[str], config: Config) -> list[FeatureSpec]:
    """The features of a gold table (its ``columns``) a model under ``config`` takes: those of the
    ``train.modalities`` and of the ``features.families`` switched on."""
    specs = [
        s
        for s in ALL_SPECS
        if s.name in columns and s.modality in config.train.modalities and s.family in config.features.families
    ]
    return [s for s in specs if config.train.use_embeddings or s.family != "embedding"]


def model_input(spark: SparkSession, config: Config, gold_version: int | None = None) -> ModelInput:
    """Read a gold version (the latest by default) and assemble its features."""
    version = resolve_gold_version(spark, config, gold_version)
    return assemble(read_table(spark, config.table(GOLD), version), config, version)


def resolve_gold_version(spark: SparkSession, config: Config, gold_version: int | None = None) -> int:
    """``gold_version``, or the latest version of the gold table when None (which must exist)."""
    path = config.table(GOLD)
    require_table(spark, path, "jobs/build_features.py (make features)")
    return table_version(spark, path) if gold_version is None else gold_version


def assemble(gold: DataFrame, config: Config, gold_version: int, widths: dict[str, int] | None = None) -> ModelInput:
    """Gold-shaped rows -> ``features`` vectors (the same slots for training and scoring).

    Nulls become NaN, which LightGBM and XGBoost treat as missing. Gold stores every vector
    feature (the TF-IDF PCAs, the image PCA, the embeddings) as ``array<float>``; each becomes the
    slots ``<name>_0`` .. ``<name>_<width-1>`` here, and a null array NaN in all of them. Only
    features of the ``train.modalities`` are taken; the raw text and image embeddings only with
    ``train.use_embeddings``. ``widths`` (vector name -> slots) fixes the vector widths, as a
    trained model's layout does for scoring (a batch whose images are all missing still gets the
    image slots); by default they are read off the rows (the first non-null value).
    """
    specs = model_specs(gold.columns, config)
    scalars = [s.name for s in specs if s.kind != VECTOR]
    vector_specs = [s.name for s in specs if s.kind == VECTOR]
    if widths is None:
        widths = {name: _vector_width(gold, name) for name in vector_specs}
    widths = {name: widths.get(name, 0) for name in vector_specs}
    vectors = [c for c, width in widths.items() if width]  # a vector null in every row has no slots
    specs = [s for s in specs if s.kind != VECTOR or widths[s.name]]

    def vector(column: str):
        if not dict(gold.dtypes)[column].startswith("array"):
            return F.col(column)  # a Spark ML vector: gold versions written before vectors were arrays
        # the width as ML metadata: with handleInvalid="keep" the assembler must know it up front
        as_vector = F.when(F.col(column).isNotNull(), array_to_vector(column))  # null (no image) -> NaN slots
        return as_vector.alias(column, metadata={"ml_attr": {"num_attrs": widths[column]}})

    prepared = gold.select(
        "Pid",
        "split",
        "label",
        *[F.col(c).cast("double").alias(c) for c in scalars],
        *[vector(c) for c in vectors],
    )
    slot_names = list(scalars) + [f"{c}_{i}" for c in vectors for i in range(widths[c])]
    assembled = VectorAssembler(inputCols=scalars + vectors, outputCol="features", handleInvalid="keep").transform(
        prepared
    )
    rows = assembled.select("Pid", "split", "label", "features", (F.col("split") == VALID).alias(VALID_FLAG))
    categorical = [scalars.index(s.name) for s in specs if s.kind == CATEGORICAL]
    arrays = [F.col(c) if dict(gold.dtypes)[c].startswith("array") else vector_to_array(c).alias(c) for c in vectors]
    inputs = gold.select("Pid", "split", "label", *[F.col(c).cast("double").alias(c) for c in scalars], *arrays)
    slot_inputs = [(c, None) for c in scalars] + [(c, i) for c in vectors for i in range(widths[c])]
    return ModelInput(rows, slot_names, categorical, gold_version, inputs, slot_inputs)


def fit_rows(data: ModelInput) -> DataFrame:
    """Training and validation rows (the trainers early-stop on the validation ones)."""
    return data.rows.filter(F.col("split").isin(TRAIN, VALID))
