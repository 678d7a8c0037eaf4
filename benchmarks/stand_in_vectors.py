"""Fill a lake's two embedding tables with stand-in vectors, to measure the stages after them.

    .venv/bin/python benchmarks/stand_in_vectors.py --set paths.lake=/tmp/lake680 [--set ...]

At 680K posts the real text and image stages take about 2.5 hours on these 2-core machines; the
stages after them (features, the four models, evaluation) cost the same whatever the vectors hold:
their time and memory depend on the tables' shapes (384 floats a text, 1,000 class scores and four
statistics an image, one row per post with a usable image). This writes those tables, through the
stages' own cache code (:func:`update_cache`, so the schema and the row set are the real ones),
with pseudo-random values seeded by each content hash: unit-length text vectors, normal class
scores, uniform statistics. Every row names its encoder ``stand-in``, so a real embedding run on
the lake encodes every content again instead of keeping them. The accuracy of models trained on
such a lake means nothing; its timings and memory are what it is for.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smp_spark import catalog  # noqa: E402
from smp_spark.cli import run_job  # noqa: E402
from smp_spark.features.embedding_cache import CachedStage, update_cache  # noqa: E402
from smp_spark.features.embeddings import EMBEDDINGS, text_keys  # noqa: E402
from smp_spark.features.image_embeddings import CLASSES, STATS, VALUES, usable_images  # noqa: E402
from smp_spark.lake import read_table  # noqa: E402

ENCODER = "stand-in (benchmarks/stand_in_vectors.py)"


def _rng(key: int) -> np.random.Generator:
    return np.random.default_rng(int(key) & 0xFFFFFFFF)


def text_vectors(frame: pd.DataFrame) -> pd.DataFrame:
    vectors = []
    for key in frame["text_hash"]:
        v = _rng(key).standard_normal(384).astype("float32")
        vectors.append((v / np.linalg.norm(v)).tolist())
    return pd.DataFrame({"text_hash": frame["text_hash"], "embedding": vectors})


def image_values(frame: pd.DataFrame) -> pd.DataFrame:
    out = {"image_hash": frame["image_hash"].to_numpy(), "class_scores": []}
    stats = np.empty((len(frame), len(STATS)), dtype="float32")
    for i, key in enumerate(frame["image_hash"]):
        rng = _rng(key)
        out["class_scores"].append(rng.standard_normal(CLASSES).astype("float32").tolist())
        stats[i] = rng.random(len(STATS))
    for i, name in enumerate(STATS):
        out[name] = stats[:, i]
    return pd.DataFrame(out)


def main(config, args, spark):
    started = time.time()
    posts = read_table(spark, config.table(catalog.POSTS.name))
    texts = text_keys(posts)
    stage = CachedStage(config.table(EMBEDDINGS), "text_hash", "embedding array<float>", ENCODER)
    done = update_cache(spark, stage, texts, text_vectors, rows_per_task=20000)
    print(f"text: {done} in {time.time() - started:.1f}s")
    started = time.time()
    images = usable_images(read_table(spark, config.table(catalog.IMAGES.name)))
    stage = CachedStage(config.table(catalog.IMAGE_EMBEDDINGS.name), "image_hash", VALUES, ENCODER)
    done = update_cache(spark, stage, images, image_values, rows_per_task=10000)
    print(f"images: {done} in {time.time() - started:.1f}s")


if __name__ == "__main__":
    run_job("stand_in_vectors", main)
