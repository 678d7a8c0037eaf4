"""PCA of vectors: Spark ML's, with the eigendecomposition in numpy; and a PCA of a cached
embedding vector, fitted on the training split's posts: the trees' view of a pretrained vector (the
1000 image class scores, the 384-d sentence vector), as the research's trees took 600 GloVe
dimensions.

Input: rows (``Pid``, ``split``) and an embeddings table (``Pid`` + an ``array<float>`` column).
Output: ``<name>`` as ``array<float>`` of the fitted width; null for a post with no vector.
Window: the PCA sees the training split's vectors only.

:func:`fit_pca` is Spark ML's ``PCA`` with one step moved. Spark ML sums the d x d covariance
matrix in tasks (``RowMatrix.computeCovariance``), then takes its SVD in the driver's JVM through
``dev.ludovic.netlib``, which without a native LAPACK on the machine (``make setup`` installs no
system package) is pure Java: 26 s for the 2,000 TF-IDF columns at 680K posts. Here the same
covariance goes to the driver's Python and numpy's own OpenBLAS takes its symmetric
eigendecomposition (about 4 s with the matrix's trip to Python); the result is a genuine
``PCAModel``, transformed, saved and loaded as before. Single node: the eigendecomposition of one
d x d matrix in the driver.
"""

from __future__ import annotations

import numpy as np
from pyspark import StorageLevel
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCA, PCAModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.mllib.linalg.distributed import RowMatrix
from pyspark.mllib.util import MLUtils
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark.errors import FeatureError
from smp_spark.features.split import TRAIN
from smp_spark.ingest.files import is_dir


def fit_pca(rows: DataFrame, input_col: str, k: int, output_col: str) -> PCAModel:
    """Spark ML's ``PCA(k, input_col, output_col).fit(rows)``, the SVD of the covariance done by
    numpy (see the module's docstring). The same components up to sign; the sign is fixed so that
    each component's largest loading is positive (as scikit-learn's ``svd_flip``), where Spark ML's
    is whatever its LAPACK returns. The vectors are cached for the covariance's passes."""
    cached = rows.select(input_col).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        covariance = RowMatrix(MLUtils.convertVectorColumnsFromML(cached, input_col)).computeCovariance().toArray()
    finally:
        cached.unpersist()
    dims = covariance.shape[0]
    if not 0 < k <= dims:
        raise FeatureError(f"cannot fit a PCA of {k} components on '{input_col}': its vectors have {dims} dimensions")
    values, eigenvectors = np.linalg.eigh(covariance)  # ascending eigenvalues of a symmetric matrix
    values = np.clip(values, 0.0, None)  # a PSD matrix's rounding-level negatives
    top = np.argsort(-values, kind="stable")[:k]
    components = eigenvectors[:, top]
    largest = components[np.argmax(np.abs(components), axis=0), np.arange(k)]
    components = components * np.where(largest < 0, -1.0, 1.0)
    explained = values[top] / values.sum() if values.sum() > 0 else np.zeros(k)
    estimator = PCA(k=k, inputCol=input_col, outputCol=output_col)
    sc = rows.sparkSession.sparkContext
    # PCAModel's constructor is private[ml] in Scala, public in bytecode: what Spark ML's own fit
    # calls; the tests hold the result against Spark ML's PCA on the pinned Spark 3.5
    java_model = sc._jvm.org.apache.spark.ml.feature.PCAModel(
        estimator.uid,
        _py2java(sc, DenseMatrix(dims, k, components.ravel(order="F").tolist())),  # column-major
        _py2java(sc, DenseVector(explained.tolist())),
    )
    return estimator._copyValues(PCAModel(java_model))


def fit_vector_pca(rows: DataFrame, embeddings: DataFrame, column: str, components: int) -> PCAModel | None:
    """PCA of ``column`` over the training split's posts (None when none of them has a vector,
    e.g. a release of image URLs)."""
    train = rows.filter(F.col("split") == TRAIN).select("Pid")
    vectors = embeddings.join(train, "Pid", "left_semi").select(array_to_vector(column).alias("_in"))
    if vectors.limit(1).count() == 0:
        return None
    return fit_pca(vectors, "_in", components, "_pca")


def project(embeddings: DataFrame, column: str, pca: PCAModel, name: str, keep: list[str] = ()) -> DataFrame:
    """``Pid``, the ``keep`` columns and ``name`` (the projection, ``array<float>``) per embedded post."""
    projected = pca.transform(embeddings.withColumn("_in", array_to_vector(column)))
    return projected.select("Pid", *keep, vector_to_array("_pca", "float32").alias(name))


def save_pca(pca: PCAModel | None, path: str) -> None:
    if pca is not None:
        pca.write().overwrite().save(path)


def load_pca(spark, path: str) -> PCAModel | None:
    return PCAModel.load(path) if is_dir(spark, path) else None
