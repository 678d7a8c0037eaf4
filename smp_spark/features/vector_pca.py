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
``PCAModel``, transformed, saved and loaded as before. The embedding vectors' PCA
(:func:`fit_vector_pca`) sums its covariance with numpy in the tasks instead of ``RowMatrix``
(:func:`array_covariance`). Single node: the eigendecomposition of one d x d matrix in the driver.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    is whatever its LAPACK returns."""
    return pca_model(rows.sparkSession, rowmatrix_covariance(rows, input_col), k, input_col, output_col)


def rowmatrix_covariance(rows: DataFrame, input_col: str) -> np.ndarray:
    """Spark ML's covariance of the vector column ``input_col`` (``RowMatrix.computeCovariance``),
    the vectors cached for its passes."""
    cached = rows.select(input_col).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return RowMatrix(MLUtils.convertVectorColumnsFromML(cached, input_col)).computeCovariance().toArray()
    finally:
        cached.unpersist()


def pca_model(spark, covariance: np.ndarray, k: int, input_col: str, output_col: str) -> PCAModel:
    """The ``PCAModel`` of the top ``k`` eigenvectors of ``covariance`` (numpy's ``eigh``)."""
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
    sc = spark.sparkContext
    # PCAModel's constructor is private[ml] in Scala, public in bytecode: what Spark ML's own fit
    # calls; the tests hold the result against Spark ML's PCA on the pinned Spark 3.5
    java_model = sc._jvm.org.apache.spark.ml.feature.PCAModel(
        estimator.uid,
        _py2java(sc, DenseMatrix(dims, k, components.ravel(order="F").tolist())),  # column-major
        _py2java(sc, DenseVector(explained.tolist())),
    )
    return estimator._copyValues(PCAModel(java_model))


Moments = tuple  # (count, mean (d,), centred sum of squares (d, d)), float64; count 0: nothing seen


def merge_moments(a: Moments, b: Moments) -> Moments:
    """The moments of two disjoint sets of rows together (Chan, Golub and LeVeque's pairwise
    update: each part is centred on its own mean, so no large sums cancel)."""
    (na, ma, sa), (nb, mb, sb) = a, b
    if na == 0 or nb == 0:
        return b if na == 0 else a
    n = na + nb
    d = mb - ma
    return n, ma + d * (nb / n), sa + sb + np.outer(d, d * (na * nb / n))


def _partition_moments(column: str):
    def moments(batches):
        total: Moments = (0, None, None)
        for batch in batches:
            values = batch[column].dropna()
            widths = values.map(len).unique()
            if len(widths) > 1:
                raise FeatureError(f"'{column}' holds vectors of different lengths: {sorted(widths)}")
            if len(values):
                x = np.stack(values.to_numpy()).astype(np.float64)
                mean = x.mean(axis=0)
                x -= mean
                total = merge_moments(total, (len(x), mean, x.T @ x))
        if total[0]:
            yield pd.DataFrame({"n": [total[0]], "mean": [total[1].tobytes()], "m2": [total[2].tobytes()]})

    return moments


def _decode(row) -> Moments:
    mean = np.frombuffer(row.mean)
    return row.n, mean, np.frombuffer(row.m2).reshape(len(mean), len(mean))


def array_covariance(rows: DataFrame, column: str) -> np.ndarray | None:
    """The sample covariance (divided by n - 1) of the ``array`` column ``column`` over its
    non-null rows; None when there are none. One pass: each task sums its rows' moments with
    numpy's BLAS (``X^T X`` of each Arrow batch, centred) and the partitions' d x d sums are merged
    in a tree (:func:`merge_moments`); Spark ML's ``RowMatrix`` adds one row at a time in the JVM
    instead (198 s for the 1,000 image class scores of 544K posts)."""
    summary = rows.select(column).mapInPandas(_partition_moments(column), "n long, mean binary, m2 binary")
    n, _, m2 = summary.rdd.map(_decode).treeAggregate((0, None, None), merge_moments, merge_moments, depth=2)
    if n == 0:
        return None
    if n < 2:
        raise FeatureError(f"cannot fit a PCA on '{column}' from a single vector")
    return m2 / (n - 1)


def fit_vector_pca(rows: DataFrame, embeddings: DataFrame, column: str, components: int) -> PCAModel | None:
    """PCA of ``column`` over the training split's posts (None when none of them has a vector,
    e.g. a release of image URLs), its covariance from :func:`array_covariance`."""
    train = rows.filter(F.col("split") == TRAIN).select("Pid")
    covariance = array_covariance(embeddings.join(train, "Pid", "left_semi"), column)
    if covariance is None:
        return None
    return pca_model(rows.sparkSession, covariance, components, "_in", "_pca")


def project(embeddings: DataFrame, column: str, pca: PCAModel, name: str, keep: list[str] = ()) -> DataFrame:
    """``Pid``, the ``keep`` columns and ``name`` (the projection, ``array<float>``) per embedded post."""
    projected = pca.transform(embeddings.withColumn("_in", array_to_vector(column)))
    return projected.select("Pid", *keep, vector_to_array("_pca", "float32").alias(name))


def save_pca(pca: PCAModel | None, path: str) -> None:
    if pca is not None:
        pca.write().overwrite().save(path)


def load_pca(spark, path: str) -> PCAModel | None:
    return PCAModel.load(path) if is_dir(spark, path) else None
