"""The embedding vectors' covariance for their PCA: Spark ML's ``RowMatrix`` against the numpy sums
of ``vector_pca.array_covariance``, side by side on a lake's training posts (issue 13, target 5).

    .venv/bin/python benchmarks/vector_pca_speed.py [--set paths.lake=...] [--rounds 2]

For each embedding column the features job fits a PCA of (the image class scores of
``gold/image_embeddings``, the sentence vectors of ``gold/text_embeddings``): seconds of each way
in alternating rounds, the largest difference between the two covariance matrices relative to
their largest entry, and the cosine of each of the top components (up to sign) and of the
explained variances between the two fits.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smp_spark import catalog  # noqa: E402
from smp_spark.cli import run_job  # noqa: E402
from smp_spark.features.embeddings import EMBEDDINGS  # noqa: E402
from smp_spark.features.split import TRAIN  # noqa: E402
from smp_spark.features.vector_pca import array_covariance, pca_model, rowmatrix_covariance  # noqa: E402
from smp_spark.lake import read_table  # noqa: E402


def spark_ml_covariance(vectors, column: str) -> np.ndarray:
    """The covariance as ``fit_pca`` (and Spark ML's PCA) sums it: ``RowMatrix.computeCovariance``."""
    from pyspark.ml.functions import array_to_vector

    return rowmatrix_covariance(vectors.select(array_to_vector(column).alias("_in")), "_in")


def main(config, args, spark):
    from pyspark.sql import functions as F

    rounds = args.rounds
    gold = read_table(spark, config.table(catalog.FEATURES.name))
    train = gold.filter(F.col("split") == TRAIN).select("Pid")
    tables = [(catalog.IMAGE_EMBEDDINGS.name, "class_scores", config.features.image_pca_components),
              (EMBEDDINGS, "embedding", config.features.text_embedding_pca_components)]  # fmt: skip
    print("| vectors | way | round | seconds |\n|---|---|---|---|")
    for table, column, k in tables:
        vectors = read_table(spark, config.table(table)).join(train, "Pid", "left_semi")
        results = {}
        for r in range(1, rounds + 1):
            for way, fn in (("RowMatrix", spark_ml_covariance), ("numpy in the tasks", array_covariance)):
                started = time.time()
                results[way] = fn(vectors, column)
                print(f"| {column} | {way} | {r} | {time.time() - started:.1f} |", flush=True)
        theirs, ours = results["RowMatrix"], results["numpy in the tasks"]
        scale = np.abs(theirs).max()
        a, b = (pca_model(spark, c, k, "_in", "_pca") for c in (theirs, ours))
        cosines = np.abs((a.pc.toArray() * b.pc.toArray()).sum(axis=0))
        explained = np.abs(a.explainedVariance.toArray() - b.explainedVariance.toArray()).max()
        print(
            f"{column}: {theirs.shape[0]} dimensions; max |difference| / max |entry| = "
            f"{np.abs(theirs - ours).max() / scale:.2e}; top-{k} components' |cosine| min {cosines.min():.6f}; "
            f"explained variance max difference {explained:.2e}",
            flush=True,
        )


if __name__ == "__main__":
    run_job(
        "vector_pca_speed",
        main,
        add_args=lambda p: p.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two ways"),
    )
