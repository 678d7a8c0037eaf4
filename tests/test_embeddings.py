"""Text embeddings: the real all-MiniLM-L6-v2 from its package, cached by Pid in Delta."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark.sql import functions as F

from smp_spark.features.embeddings import DIMENSIONS, cleaned_text, encode, update_embeddings
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
    assert update_embeddings(spark, posts, table, batch_size=8)["texts_encoded"] == 0  # a rerun encodes nothing
    changed = posts.withColumn("Title", F.when(F.col("Pid") == 3, F.lit("a dog")).otherwise(F.col("Title")))
    assert update_embeddings(spark, changed, table, batch_size=8)["texts_encoded"] == 1


def test_bfloat16_vectors_match_float32():
    texts = ["sunset at the beach with friends", "macro photo of a red flower in spring rain", "city"]
    exact = np.asarray(encode(texts, 2, "float32"))
    fast = np.asarray(encode(texts, 2, "bfloat16"))
    cosine = (exact * fast).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(fast, axis=1)
    assert cosine.min() > 0.999
    assert not np.array_equal(exact, fast)  # the autocast really ran in bfloat16
