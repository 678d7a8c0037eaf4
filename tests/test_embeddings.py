"""Text embeddings: the real all-MiniLM-L6-v2 from its package, cached by Pid in Delta."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.features.embedding_cache import CachedStage, update_cache
from smp_spark.features.embeddings import DIMENSIONS, cleaned_text, encode, encoder_name, update_embeddings
from smp_spark.lake import read_table, sync_table
from smp_spark.precision import choose_text_precision
from tests.open_tables import assert_opens_elsewhere


def test_cleaned_text_drops_urls_noise_tags_and_punctuation(spark):
    df = spark.createDataFrame([("Sunset!! at https://x.io/a", "beach 2015 sea ??")], "Title string, Alltags string")
    assert df.select(cleaned_text(F.col("Title"), F.col("Alltags"))).first()[0] == "sunset at beach sea"


def test_embeddings_are_computed_once_and_match_the_model(spark, tmp_path):
    posts = spark.createDataFrame(
        [(1, "red car", "car red"), (2, "red car", "car red"), (3, "a cat", "cat pet"), (4, None, None)],
        "Pid long, Title string, Alltags string",
    )
    table = str(tmp_path / "text_embeddings")
    first = update_embeddings(spark, posts, table, batch_size=8, precision="float32")
    assert first == {"posts": 4, "texts_encoded": 3}  # posts 1 and 2 share one text
    rows = {r.Pid: np.array(r.embedding) for r in spark.read.format("delta").load(table).collect()}
    assert sorted(rows) == [1, 2, 3, 4] and all(v.shape == (DIMENSIONS,) for v in rows.values())
    np.testing.assert_allclose(rows[3], encode(["a cat cat pet"], 8)[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rows[1], rows[2])
    # the table opens in another engine (delta-rs) with the same vectors, stored as float32 arrays
    elsewhere = assert_opens_elsewhere(spark, table, ["Pid"], sample=None)
    assert elsewhere.schema.field("embedding").type == pa.list_(pa.float32())
    assert update_embeddings(spark, posts, table, 8, "float32")["texts_encoded"] == 0  # a rerun encodes nothing
    changed = posts.withColumn("Title", F.when(F.col("Pid") == 3, F.lit("a dog")).otherwise(F.col("Title")))
    assert update_embeddings(spark, changed, table, 8, "float32")["texts_encoded"] == 1
    # another precision: every text again, not the float32 vectors under an int8 configuration
    assert update_embeddings(spark, changed, table, 8, "int8") == {"posts": 4, "texts_encoded": 3}
    rows = {r.Pid: r for r in spark.read.format("delta").load(table).collect()}
    assert {r.encoder for r in rows.values()} == {"all-MiniLM-L6-v2 int8 recipe 2"}
    np.testing.assert_allclose(rows[1].embedding, encode(["red car car red"], 8, "int8")[0], rtol=1e-6)
    assert update_embeddings(spark, changed, table, 8, "int8")["texts_encoded"] == 0


def sql_plans(spark, after: int = -1) -> tuple[int, list[str]]:
    """The physical plans of the SQL queries this session ran with an id above ``after`` (Spark's
    own record, the SQL tab's), and the highest id."""
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty()
    runs = spark._jsparkSession.sharedState().statusStore().executionsList()
    runs = [runs.apply(i) for i in range(runs.size())]
    plans = [r.physicalPlanDescription() for r in runs if r.executionId() > after]
    return max([after, *(r.executionId() for r in runs)]), plans


def broadcast_inputs(plan: str) -> list[str]:
    """The ``Input`` line of every BroadcastExchange in a plan (Spark's formatted explain)."""
    return re.findall(r"^\(\d+\) BroadcastExchange\n(Input \[\d+\]: .*)$", plan, flags=re.M)


def test_the_encoded_values_are_never_broadcast(spark, tmp_path):
    """The planner sizes an array column from ``mapInPandas`` at 4 bytes a row, and so it chose
    to broadcast 680,000 images' class scores (2.7 GB) through the driver, which failed (session
    23). No query of the cache may broadcast the values; the keys may be."""
    stage = CachedStage(str(tmp_path / "cache"), "content_hash", "cached_vector array<float>", "test encoder")
    rows = [(p, p % 4, f"text {p % 4}") for p in range(12)]
    # read from a Delta table, as the stages read bronze: the planner knows its size (a frame made
    # from a Python list has none, and nothing built on it would be broadcast)
    spark.createDataFrame(rows, "Pid long, content_hash long, text string").write.format("delta").save(
        str(tmp_path / "posts")
    )
    wanted = spark.read.format("delta").load(str(tmp_path / "posts"))

    def encode(frame: pd.DataFrame) -> pd.DataFrame:
        vectors = [[h * 1.5] * 3 for h in frame["content_hash"]]
        return pd.DataFrame({"content_hash": frame["content_hash"], "cached_vector": vectors})

    last, _ = sql_plans(spark)
    assert update_cache(spark, stage, wanted, encode, rows_per_task=2) == {"posts": 12, "encoded": 4, "failed": 0}
    _, plans = sql_plans(spark, last)
    broadcasts = [line for plan in plans for line in broadcast_inputs(plan)]
    assert broadcasts, "no broadcast at all: the check would see none either"
    assert not [line for line in broadcasts if "cached_vector#" in line]
    rows = {r.Pid: r.cached_vector for r in spark.read.format("delta").load(stage.table).collect()}
    assert rows == {p: [p % 4 * 1.5] * 3 for p in range(12)}


def test_a_grown_cache_merges_only_the_changed_posts(spark, tmp_path):
    """The next day's posts: only their rows are written, the posts gone (or whose new content
    failed to encode) are deleted, and every kept row keeps its value."""
    stage = CachedStage(str(tmp_path / "cache"), "content_hash", "cached_vector array<float>", "test encoder")

    def encode(frame: pd.DataFrame) -> pd.DataFrame:  # content 9 cannot be encoded
        vectors = [None if h == 9 else [h * 1.5] for h in frame["content_hash"]]
        return pd.DataFrame({"content_hash": frame["content_hash"], "cached_vector": vectors})

    def wanted(rows):
        return spark.createDataFrame(rows, "Pid long, content_hash long, text string")

    day1 = [(p, p, f"text {p}") for p in range(6)]
    assert update_cache(spark, stage, wanted(day1), encode, rows_per_task=2) == {"posts": 6, "encoded": 6, "failed": 0}
    # day 2: posts 0-2 as they were; post 3's content now fails; post 4 gone; post 5's content is
    # now post 2's (copied, not encoded); new post 6 (content 7) and new post 7 (fails)
    day2 = [*day1[:3], (3, 9, "text 9"), (5, 2, "text 2"), (6, 7, "text 7"), (7, 9, "text 9")]
    assert update_cache(spark, stage, wanted(day2), encode, rows_per_task=2) == {"posts": 7, "encoded": 2, "failed": 1}
    rows = {r.Pid: r.cached_vector for r in read_table(spark, stage.table).collect()}
    assert rows == {0: [0.0], 1: [1.5], 2: [3.0], 5: [3.0], 6: [10.5]}
    merged = DeltaTable.forPath(spark, stage.table).history(1).first().operationMetrics
    counts = [
        merged[f"num{what}"] for what in ("SourceRows", "TargetRowsInserted", "TargetRowsUpdated", "TargetRowsDeleted")
    ]
    assert counts == ["4", "1", "1", "2"]  # posts 6; 5; 3 and 4: nothing else was written


def test_a_cache_written_before_rows_named_their_encoder_is_encoded_again(spark, tmp_path, capsys):
    table = str(tmp_path / "text_embeddings")
    old = spark.createDataFrame([(1, 7, [0.5] * DIMENSIONS)], "Pid long, text_hash long, embedding array<float>")
    sync_table(spark, old, table, ["Pid"])  # as the cache wrote it before
    posts = spark.createDataFrame([(1, "red car", "car")], "Pid long, Title string, Alltags string")
    assert update_embeddings(spark, posts, table, 8, "float32") == {"posts": 1, "texts_encoded": 1}
    assert "written before its rows named their encoder" in capsys.readouterr().out
    (row,) = spark.read.format("delta").load(table).collect()
    assert row.encoder == "all-MiniLM-L6-v2 float32" and row.embedding != [0.5] * DIMENSIONS


@pytest.mark.parametrize("runtime", ["OpenVINO", "torch"])
def test_bfloat16_vectors_match_float32_and_barely_depend_on_their_batch(runtime, monkeypatch):
    from smp_spark.features import text_bf16

    assert text_bf16.runtime() == "OpenVINO"  # make setup installs it: the stage's path
    monkeypatch.setattr(text_bf16, "runtime", lambda: runtime)  # where OpenVINO is missing: torch
    texts = ["sunset at the beach with friends", "macro photo of a red flower in spring rain", "city"]
    exact = np.asarray(encode(texts, 2, "float32"))
    fast = np.asarray(encode(texts, 2, "bfloat16"))
    cosine = (exact * fast).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(fast, axis=1)
    assert cosine.min() > 0.999
    assert not np.array_equal(exact, fast)  # the bfloat16 weights really ran
    assert encoder_name("bfloat16") == f"all-MiniLM-L6-v2 bfloat16 weights, {runtime}"
    # the shortest text padded to the longest's length in one batch, and alone: its own word
    # pieces only (the mask), so the same vector up to bfloat16's rounding
    alone = np.asarray(encode(texts[2:], 2, "bfloat16"))[0]
    together = np.asarray(encode(texts, 3, "bfloat16"))[2]
    assert (alone * together).sum() > 0.9999


def test_the_text_stage_picks_bfloat16_only_with_amx_tiles():
    def never():
        raise AssertionError("no bfloat16 flag: the probe must not run")

    amx = frozenset({"avx512_bf16", "amx_bf16"})
    assert choose_text_precision(amx, lambda: 5.9, onnxruntime=True) == "bfloat16"  # session 27's Xeon
    assert choose_text_precision(amx, lambda: 1.0, onnxruntime=True) == "int8"  # tiles, but slow here
    assert choose_text_precision(frozenset({"avx512_bf16"}), lambda: 2.15, onnxruntime=True) == "int8"  # AMD EPYC
    assert choose_text_precision(frozenset({"avx512_bf16"}), lambda: 2.15, onnxruntime=False) == "bfloat16"
    assert choose_text_precision(frozenset({"avx2"}), never, onnxruntime=True) == "int8"
    assert choose_text_precision(frozenset({"avx2"}), never, onnxruntime=False) == "float32"


@pytest.mark.parametrize("precision", ["int8", "bfloat16"])
def test_the_fast_vectors_hold_to_float32_on_generated_posts(spark, generated_lake, precision):
    """The shipped int8 ONNX Runtime graph and the bfloat16 model against the float32
    sentence-transformers model on the generated lake's texts (issue 13's bar: mean cosine at
    least 0.99, none below 0.95)."""
    posts = read_table(spark, generated_lake.table(catalog.POSTS.name))
    texts = posts.select(cleaned_text(F.col("Title"), F.col("Alltags")).alias("text")).limit(300)
    texts = [r.text for r in texts.collect()]
    exact = np.asarray(encode(texts, 32, "float32"))
    fast = np.asarray(encode(texts, 32, precision))
    assert fast.shape == (len(texts), DIMENSIONS) and fast.dtype == np.float64  # lists of floats, as float32 gives
    cosine = (exact * fast).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(fast, axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.95, (cosine.mean(), cosine.min())
    assert 1 - cosine.min() > 1e-6  # the fast model really ran (float32 runtimes differ by ~1e-12 here)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)  # unit length, as the model's Normalize
    if precision == "int8":  # one text per run: a text's vector depends on no other text
        alone = np.asarray(encode(texts[7:8], 32, "int8"))
        np.testing.assert_array_equal(alone[0], fast[7])
