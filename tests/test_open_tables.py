"""Every Delta table the project writes opens in another engine (delta-rs, the ``deltalake``
package: no Spark, no JVM) and holds what Spark reads; vectors are stored as ``array<float>``.

Here: every bronze table, the quarantine and the ingest log, the image embeddings, the gold features, their
manifest and the fitted category encodings. Tables that only a training or a scoring run writes are
checked in the test that already writes them, so nothing is trained twice:
``gold/model_predictions``, ``gold/predictions`` (with the scoring lake's tables) and
``gold/ablation`` in tests/test_trees.py, ``gold/text_embeddings`` in tests/test_embeddings.py,
``scraped/*`` in tests/test_scrape.py.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.features.gold import read_state, state_path
from smp_spark.lake import read_table, table_version
from smp_spark.models.dataset import model_input
from tests.open_tables import assert_opens_elsewhere, read_elsewhere, same_value


def list_lengths(column: pa.ChunkedArray) -> list[int]:
    """The length of every non-null list of ``column``."""
    return pc.list_value_length(column).drop_null().to_pylist()


@pytest.mark.parametrize("table", [*catalog.BRONZE, catalog.INGEST_LOG], ids=str)
def test_bronze_and_quarantine_tables_open_in_deltalake(spark, generated_lake, table):
    opened = assert_opens_elsewhere(spark, generated_lake.table(table.name), table.keys)
    assert opened.num_rows > 0  # the generated release fills every table, quarantine included


def test_image_embeddings_open_in_deltalake(spark, generated_lake):
    table = assert_opens_elsewhere(
        spark, generated_lake.table(catalog.IMAGE_EMBEDDINGS.name), catalog.IMAGE_EMBEDDINGS.keys, sample=50
    )
    scores = table.column("class_scores")
    assert scores.type.value_type == pa.float32() and set(list_lengths(scores)) == {1000}


@pytest.fixture(scope="module")
def gold_elsewhere(spark, gold_lake):
    """The latest gold table as delta-rs reads it, checked against Spark's reading."""
    path = gold_lake.table(catalog.FEATURES.name)
    return assert_opens_elsewhere(spark, path, catalog.FEATURES.keys)


def test_gold_features_open_in_deltalake_with_every_vector_a_float_array(spark, gold_lake, gold_elsewhere):
    manifest = read_table(spark, gold_lake.table(catalog.MANIFEST.name))
    version = table_version(spark, gold_lake.table(catalog.FEATURES.name))
    kinds = {r.name: r.kind for r in manifest.filter(F.col("gold_version") == version).collect()}
    vectors = {name for name, kind in kinds.items() if kind == "vector"}
    assert {"title_svd", "tags_svd", "image_pca", "image_embedding"} <= vectors
    schema = gold_elsewhere.schema
    assert {f.name for f in schema if pa.types.is_list(f.type)} == vectors
    assert all(schema.field(name).type.value_type == pa.float32() for name in vectors)
    f = gold_lake.features
    widths = {"title_svd": f.svd_components, "tags_svd": f.svd_components, "image_pca": f.image_pca_components}
    for name, width in widths.items():
        assert set(list_lengths(gold_elsewhere.column(name))) == {width}, name
    # every row's small vectors, as both engines read them
    small = ["Pid", *widths]
    by_spark = {r.Pid: r for r in read_table(spark, gold_lake.table(catalog.FEATURES.name)).select(*small).collect()}
    assert len(by_spark) == gold_elsewhere.num_rows
    for row in gold_elsewhere.select(small).to_pylist():
        assert all(same_value(row[c], by_spark[row["Pid"]][c]) for c in widths), row["Pid"]


def test_gold_text_vectors_are_the_fitted_pca_rounded_to_float32(spark, gold_lake, gold_elsewhere):
    """The stored ``title_svd`` / ``tags_svd`` are the saved TF-IDF + PCA pipeline's output for the
    post's text, to float32 precision: nothing lost but the rounding."""
    version = table_version(spark, gold_lake.table(catalog.FEATURES.name))
    pipeline = read_state(spark, gold_lake, version)["text"].tfidf
    posts = read_table(spark, gold_lake.table(catalog.POSTS.name))
    projected = pipeline.transform(posts).select(
        "Pid", vector_to_array("title_svd").alias("title"), vector_to_array("tags_svd").alias("tags")
    )
    exact = {r.Pid: r for r in projected.collect()}
    stored = gold_elsewhere.select(["Pid", "title_svd", "tags_svd"]).to_pylist()
    assert len(stored) == len(exact)
    title = np.array([r["title_svd"] for r in stored], dtype=np.float32)
    tags = np.array([r["tags_svd"] for r in stored], dtype=np.float32)
    title_exact = np.array([exact[r["Pid"]].title for r in stored])
    tags_exact = np.array([exact[r["Pid"]].tags for r in stored])
    assert np.abs(title_exact).max() > 0.1 and np.abs(tags_exact).max() > 0.1  # not all zeros
    np.testing.assert_array_equal(title, title_exact.astype(np.float32))
    np.testing.assert_array_equal(tags, tags_exact.astype(np.float32))


def test_models_take_the_arrays_as_the_same_named_slots(spark, gold_lake, gold_elsewhere):
    """``assemble`` turns each array into ``<name>_0`` .. ``<name>_<width-1>``, values unchanged
    (a null image PCA: NaN in its slots)."""
    data = model_input(spark, gold_lake)
    f = gold_lake.features
    widths = {"title_svd": f.svd_components, "tags_svd": f.svd_components, "image_pca": f.image_pca_components}
    for name, width in widths.items():
        slots = [i for i, s in enumerate(data.slot_names) if s.rsplit("_", 1)[0] == name]
        assert [data.slot_names[i] for i in slots] == [f"{name}_{i}" for i in range(width)]
        assert slots == list(range(slots[0], slots[0] + width))  # side by side, in order
    features = {
        r.Pid: r.f for r in data.rows.select("Pid", vector_to_array("features").alias("f")).orderBy("Pid").collect()
    }
    stored = gold_elsewhere.select(["Pid", *widths]).to_pylist()
    assert len(features) == len(stored)
    for row in stored:
        for name, width in widths.items():
            first = data.slot_names.index(f"{name}_0")
            got = features[row["Pid"]][first : first + width]
            want = [float("nan")] * width if row[name] is None else row[name]
            assert same_value(got, want), (row["Pid"], name)


def test_feature_manifest_and_fitted_encodings_open_in_deltalake(spark, gold_lake, gold_elsewhere):
    manifest = assert_opens_elsewhere(spark, gold_lake.table(catalog.MANIFEST.name), catalog.MANIFEST.keys)
    names = set(manifest.column("name").to_pylist())
    assert names == set(gold_elsewhere.column_names[5:])  # a row per feature column
    version = table_version(spark, gold_lake.table(catalog.FEATURES.name))
    encodings = f"{state_path(gold_lake, version)}/category/encodings"
    assert_opens_elsewhere(spark, encodings, ("level", "value", "fold"))


def test_a_spark_ml_vector_column_is_what_deltalake_refuses(spark, tmp_path):
    """Why the vectors are arrays: the same values as a Spark ML vector make the table unreadable."""
    from pyspark.ml.functions import array_to_vector

    rows = spark.createDataFrame([(1, [0.5, 1.5])], "Pid long, v array<double>")
    rows.withColumn("v", array_to_vector("v")).write.format("delta").save(str(tmp_path / "vector"))
    rows.withColumn("v", F.col("v").cast("array<float>")).write.format("delta").save(str(tmp_path / "array"))
    with pytest.raises(Exception, match="udt"):
        read_elsewhere(str(tmp_path / "vector"))
    assert read_elsewhere(str(tmp_path / "array")).to_pylist() == [{"Pid": 1, "v": [0.5, 1.5]}]
