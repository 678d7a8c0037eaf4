"""Image features: the file's metadata from ``bronze/images``, colour statistics and a PCA of the
EfficientNet-Lite0 class scores from ``gold/image_embeddings``.

"Not available" stays distinct from every value: a release that lists URLs (the 2019 style, no
local file) gives null everywhere, ``has_image`` included; a listed file that is missing or broken
gives ``has_image`` 0 and null for the rest.
"""

from __future__ import annotations

from pyspark.ml.feature import PCAModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.features.family import FeatureFamily
from smp_spark.features.image_embeddings import STATS
from smp_spark.features.manifest import CATEGORICAL, NUMERIC, VECTOR, FeatureSpec
from smp_spark.features.vector_pca import fit_vector_pca, load_pca, project, save_pca

FORMATS = ("jpeg", "png", "gif", "webp", "bmp", "tiff", "mpo")  # image_format index; others -> len(FORMATS)
SOURCE = "bronze/images"
META_SPECS = [
    FeatureSpec("has_image", NUMERIC, "image", f"{SOURCE}.status", modality="image"),
    FeatureSpec("image_width", NUMERIC, "image", f"{SOURCE}.width (as displayed)", modality="image"),
    FeatureSpec("image_height", NUMERIC, "image", f"{SOURCE}.height (as displayed)", modality="image"),
    FeatureSpec("image_aspect_ratio", NUMERIC, "image", f"{SOURCE}.width, height", modality="image"),
    FeatureSpec("image_pixels_log", NUMERIC, "image", f"{SOURCE}.width, height", modality="image"),
    FeatureSpec("image_file_size_log", NUMERIC, "image", f"{SOURCE}.file_size", modality="image"),
    FeatureSpec("image_format", CATEGORICAL, "image", f"{SOURCE}.format", modality="image"),
]
STAT_SPECS = [FeatureSpec(f"image_{s}", NUMERIC, "image", f"image_embeddings.{s}", modality="image") for s in STATS]
PCA_SPEC = FeatureSpec(
    "image_pca",
    VECTOR,
    "image",
    "image_embeddings.class_scores",
    "PCA fitted on the training split's images",
    modality="image",
)


def image_metadata(rows: DataFrame, images: DataFrame) -> DataFrame:
    """Input: rows (``Pid``), ``bronze/images``. Output: ``has_image`` (1 usable file, 0 listed
    but unusable, null for a URL or no row), ``image_width``, ``image_height`` (as displayed),
    ``image_aspect_ratio`` (width / height), ``image_pixels_log`` and ``image_file_size_log``
    (log1p), ``image_format`` (index into :data:`FORMATS`). Window: the post itself."""
    meta = images.select("Pid", "status", "format", "width", "height", "file_size")
    ok = F.col("status") == "ok"

    def when_ok(value):
        return F.when(ok, value)

    fmt = F.coalesce(*[F.when(F.col("format") == f, F.lit(i)) for i, f in enumerate(FORMATS)], F.lit(len(FORMATS)))
    return (
        rows.join(meta, "Pid", "left")
        .withColumns(
            {
                "has_image": F.when(F.col("status").isNull() | (F.col("status") == "url"), None).otherwise(
                    ok.cast("int")
                ),
                "image_width": when_ok(F.col("width")),
                "image_height": when_ok(F.col("height")),
                "image_aspect_ratio": when_ok(F.col("width") / F.col("height")),
                "image_pixels_log": when_ok(F.log1p(F.col("width") * F.col("height"))),
                "image_file_size_log": when_ok(F.log1p("file_size")),
                "image_format": when_ok(fmt),
            }
        )
        .drop("status", "format", "width", "height", "file_size")
    )


def image_content(rows: DataFrame, embeddings: DataFrame, pca: PCAModel | None) -> DataFrame:
    """Input: rows (``Pid``), ``gold/image_embeddings``, a fitted PCA. Output: ``image_<stat>`` for
    each colour statistic and ``image_pca`` (array<float>); null for a post without a scored
    image. Window: the post itself (the PCA: training split)."""
    if pca is None:  # no training image at all: every value is "not available"
        nulls = {f"image_{s}": F.lit(None).cast("double") for s in STATS}
        return rows.withColumns({**nulls, PCA_SPEC.name: F.lit(None).cast("array<float>")})
    scored = embeddings.join(rows.select("Pid"), "Pid", "left_semi")
    projected = project(scored, "class_scores", pca, PCA_SPEC.name, keep=list(STATS)).select(
        "Pid", *[F.col(s).cast("double").alias(f"image_{s}") for s in STATS], PCA_SPEC.name
    )
    return rows.join(projected, "Pid", "left")


class ImageFamily(FeatureFamily):
    name = "image"

    def specs(self, config):
        content = [*STAT_SPECS, PCA_SPEC] if config.features.image_embeddings else []
        return [*META_SPECS, *content]

    def tables(self, config):
        return [catalog.IMAGES, *([catalog.IMAGE_EMBEDDINGS] if config.features.image_embeddings else [])]

    def fit(self, rows, inputs, config):
        if not config.features.image_embeddings:
            return None
        embeddings = inputs[catalog.IMAGE_EMBEDDINGS.name]
        return fit_vector_pca(rows, embeddings, "class_scores", config.features.image_pca_components)

    def apply(self, rows, inputs, state, config):
        out = image_metadata(rows, inputs[catalog.IMAGES.name])
        if not config.features.image_embeddings:
            return out
        return image_content(out, inputs[catalog.IMAGE_EMBEDDINGS.name], state)

    def save(self, state, path):
        save_pca(state, path)

    def load(self, spark, path):
        return load_pca(spark, path)
