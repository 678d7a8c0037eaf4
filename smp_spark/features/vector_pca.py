"""A PCA of a cached embedding vector, fitted on the training split's posts: the trees' view of a
pretrained vector (the 1000 image class scores, the 384-d sentence vector), as the research's
trees took 600 GloVe dimensions.

Input: rows (``Pid``, ``split``) and an embeddings table (``Pid`` + an ``array<float>`` column).
Output: ``<name>`` as ``array<float>`` of the fitted width; null for a post with no vector.
Window: the PCA sees the training split's vectors only.
"""

from __future__ import annotations

from pyspark.ml.feature import PCA, PCAModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark.features.split import TRAIN
from smp_spark.ingest.files import is_dir


def fit_vector_pca(rows: DataFrame, embeddings: DataFrame, column: str, components: int) -> PCAModel | None:
    """PCA of ``column`` over the training split's posts (None when none of them has a vector,
    e.g. a release of image URLs)."""
    train = rows.filter(F.col("split") == TRAIN).select("Pid")
    vectors = embeddings.join(train, "Pid", "left_semi").select(array_to_vector(column).alias("_in"))
    if vectors.limit(1).count() == 0:
        return None
    return PCA(k=components, inputCol="_in", outputCol="_pca").fit(vectors)


def project(embeddings: DataFrame, column: str, pca: PCAModel, name: str, keep: list[str] = ()) -> DataFrame:
    """``Pid``, the ``keep`` columns and ``name`` (the projection, ``array<float>``) per embedded post."""
    projected = pca.transform(embeddings.withColumn("_in", array_to_vector(column)))
    return projected.select("Pid", *keep, vector_to_array("_pca", "float32").alias(name))


def save_pca(pca: PCAModel | None, path: str) -> None:
    if pca is not None:
        pca.write().overwrite().save(path)


def load_pca(spark, path: str) -> PCAModel | None:
    return PCAModel.load(path) if is_dir(spark, path) else None
