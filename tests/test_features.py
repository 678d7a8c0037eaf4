"""Feature families on hand-made frames with exact values, and the gold table on generated data."""

from __future__ import annotations

import math

import pytest
from pyspark.sql import functions as F

from smp_spark.features import category, geo, social, temporal, text, user
from smp_spark.features.build import build_gold, feature_specs
from smp_spark.features.gold import GOLD, read_bronze, write_gold
from smp_spark.lake import read_table, table_version


def rows_by_pid(df):
    return {r["Pid"]: r for r in df.collect()}


def test_time_features_are_utc_and_parse_both_first_taken_formats(spark):
    df = spark.createDataFrame(
        [
            (1, 1457239452, 1457239452 - 10 * 86400, "1904010100"),
            (2, 1457239452, None, "2013-04-02 17:52:16"),
            (3, 1457239452, None, "2015010112"),
            (4, 1457239452, None, "garbage"),
        ],
        "Pid long, Postdate long, photo_firstdate long, photo_firstdatetaken string",
    )
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")  # must not matter
    try:
        got = rows_by_pid(temporal.time_features(df))
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    first = got[1]  # 2016-03-06 04:44:12 UTC, a Sunday, ISO week 9
    assert (first.hour, first.day, first.weekday, first.week_hour, first.iso_week, first.month) == (4, 6, 6, 148, 9, 3)
    assert first.account_age_days == pytest.approx(10.0)
    assert first.days_since_first_taken is None  # 1904: Flickr's placeholder year
    assert got[2].days_since_first_taken == 1069 and got[2].account_age_days is None
    assert got[3].days_since_first_taken == 430
    assert got[4].days_since_first_taken is None


def test_missing_location_stays_missing(spark):
    df = spark.createDataFrame(
        [(1, 0.0, 0.0, 0), (2, 52.52, 13.37, 16), (3, None, None, None), (4, 10.0, 0.0, 3)],
        "Pid long, Latitude double, Longitude double, Geoaccuracy long",
    )
    got = rows_by_pid(geo.geo_features(df))
    assert (got[1].has_geo, got[1].latitude, got[1].geoaccuracy) == (0, None, None)
    assert (got[2].has_geo, got[2].latitude, got[2].longitude, got[2].geoaccuracy) == (1, 52.52, 13.37, 16)
    assert got[3].has_geo == 0 and got[3].longitude is None
    assert got[4].has_geo == 1


def test_text_stats(spark):
    df = spark.createDataFrame(
        [(1, None, "a bb  ccc", "video"), (2, "Sunset at sea", "", "photo")],
        "Pid long, Title string, Alltags string, Mediatype string",
    )
    got = rows_by_pid(text.text_stats(df))
    assert (got[1].title_len, got[1].title_words, got[1].tag_count, got[1].tags_len, got[1].is_video) == (0, 0, 3, 9, 1)
    assert (got[2].title_len, got[2].title_words, got[2].tag_count, got[2].is_video) == (13, 3, 0, 0)


def test_vocabulary_counts_terms_keeps_frequent_documents_and_breaks_ties_by_term(spark):
    """Term counts over all rows: w 4, y 3, x 2, z 2; rows holding them: y 3, w x z 2 each. The
    top three are w, y and then x before z (a tie, broken by the term); w is the most frequent
    term but in only 2 rows, so a minimum of 3 rows (or of half the 5 rows) keeps y alone."""
    from smp_spark.errors import FeatureError

    grams = spark.createDataFrame(
        [(["x", "y"],), (["x", "y"],), (["y", "z"],), (["z", "w", "w", "w"],), (["w"],)], "g array<string>"
    )
    assert text.fit_vocabulary(grams, "g", "tf", 3, 2.0).vocabulary == ["w", "y", "x"]
    assert text.fit_vocabulary(grams, "g", "tf", 3, 3.0).vocabulary == ["y"]
    assert text.fit_vocabulary(grams, "g", "tf", 3, 0.5).vocabulary == ["y"]
    counted = text.fit_vocabulary(grams, "g", "tf", 2, 1.0).transform(grams).collect()
    assert [r.tf.toArray().tolist() for r in counted] == [[0, 1], [0, 1], [0, 1], [3, 0], [1, 0]]
    with pytest.raises(FeatureError, match="no term of 'g' is in at least 4 rows"):
        text.fit_vocabulary(grams, "g", "tf", 3, 4.0)


def test_pca_recovers_hand_made_components_and_matches_spark_ml_up_to_sign(spark):
    """Rows a*u + b*v + (0, 0, 5), a = +-2 and b = +-1, with u = (0.6, 0.8, 0), v = (0.8, -0.6, 0): a and b are
    uncorrelated with sample variances 16/3 and 4/3, the third coordinate is constant. So the
    components are u and v (each's largest loading positive), explaining 0.8 and 0.2, and the
    (uncentred, as Spark ML's) projection of a row is its (a, b). On random sparse data the
    components are Spark ML PCA's own up to sign."""
    import numpy as np
    from pyspark.ml.feature import PCA
    from pyspark.ml.linalg import Vectors

    from smp_spark.errors import FeatureError
    from smp_spark.features.vector_pca import fit_pca

    ab = [(2, 1), (2, -1), (-2, 1), (-2, -1)]
    rows = [(Vectors.dense([0.6 * a + 0.8 * b, 0.8 * a - 0.6 * b, 5.0]),) for a, b in ab]
    df = spark.createDataFrame(rows, ["v"])
    pca = fit_pca(df, "v", 2, "p")
    assert np.allclose(pca.pc.toArray(), [[0.6, 0.8], [0.8, -0.6], [0.0, 0.0]], atol=1e-12)
    assert np.allclose(pca.explainedVariance.toArray(), [0.8, 0.2], atol=1e-12)
    assert (pca.getK(), pca.getInputCol(), pca.getOutputCol()) == (2, "v", "p")
    projected = [list(r.p) for r in pca.transform(df).collect()]
    assert np.allclose(projected, [[a, b] for a, b in ab], atol=1e-12)

    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))
    sparse = spark.createDataFrame(
        [(Vectors.sparse(12, {i: float(v) for i, v in enumerate(r) if abs(v) > 1.0}),) for r in x], ["v"]
    )
    ours, theirs = fit_pca(sparse, "v", 4, "p"), PCA(k=4, inputCol="v", outputCol="p").fit(sparse)
    assert np.allclose(np.abs(ours.pc.toArray()), np.abs(theirs.pc.toArray()), atol=1e-9)
    assert np.allclose(ours.explainedVariance.toArray(), theirs.explainedVariance.toArray(), atol=1e-12)
    with pytest.raises(FeatureError, match="13 components on 'v': its vectors have 12 dimensions"):
        fit_pca(sparse, "v", 13, "p")


def test_array_covariance_is_the_sample_covariance_of_the_non_null_vectors(spark):
    """(1, 2), (3, 6), (5, 10) around a large offset, spread over partitions with a null row: mean (3, 6), centred
    rows (-2, -4), (0, 0), (2, 4), so the covariance over n - 1 = 2 is [[4, 8], [8, 16]]. On random vectors it is
    Spark ML RowMatrix's covariance; vectors of two widths are an error naming them; no vector at all is None."""
    import numpy as np
    from pyspark.mllib.linalg import Vectors as MLlibVectors
    from pyspark.mllib.linalg.distributed import RowMatrix

    from smp_spark.errors import FeatureError
    from smp_spark.features.vector_pca import array_covariance

    schema = "Pid long, v array<float>"
    offset = 1_000_000.0
    rows = [(1, [offset + 1, 2.0]), (2, None), (3, [offset + 3, 6.0]), (4, [offset + 5, 10.0])]
    df = spark.createDataFrame(rows, schema).repartition(3, "Pid")
    assert np.allclose(array_covariance(df, "v"), [[4.0, 8.0], [8.0, 16.0]], rtol=0, atol=1e-9)

    x = np.random.default_rng(3).normal(size=(500, 7)).astype(np.float32) @ np.diag(np.arange(1, 8, dtype=np.float32))
    random = spark.createDataFrame([(i, r.tolist()) for i, r in enumerate(x)], schema).repartition(4)
    theirs = RowMatrix(spark.sparkContext.parallelize([MLlibVectors.dense(r) for r in x.astype(float)], 3))
    assert np.allclose(array_covariance(random, "v"), theirs.computeCovariance().toArray(), rtol=1e-10, atol=1e-10)

    ragged = spark.createDataFrame([(1, [1.0, 2.0]), (2, [1.0, 2.0, 3.0])], schema).coalesce(1)
    with pytest.raises(Exception, match=r"'v' holds vectors of different lengths: \[2, 3\]"):
        array_covariance(ragged, "v")
    assert array_covariance(spark.createDataFrame([(1, None)], schema), "v") is None
    with pytest.raises(FeatureError, match="from a single vector"):
        array_covariance(spark.createDataFrame([(1, [1.0, 2.0])], schema), "v")


def test_user_history_reads_only_strictly_earlier_training_labels(spark):
    df = spark.createDataFrame(
        [
            (1, "a", 100, "train", 2.0),
            (2, "a", 200, "train", 4.0),
            (3, "a", 200, "train", 100.0),
            (4, "a", 300, "valid", 50.0),
            (5, "a", 400, "test", 70.0),
            (6, "b", 250, "train", 9.0),
        ],
        "Pid long, Uid string, Postdate long, split string, label double",
    )
    got = rows_by_pid(user.user_history(df))
    assert (got[1].user_prev_posts, got[1].user_prev_mean_label, got[1].user_prev_last_label) == (0, None, None)
    # posts 2 and 3 share a second: neither is earlier than the other
    for pid in (2, 3):
        assert (got[pid].user_prev_posts, got[pid].user_prev_mean_label, got[pid].user_prev_last_label) == (1, 2.0, 2.0)
    assert got[4].user_prev_posts == 3 and got[4].user_prev_mean_label == pytest.approx(106 / 3)
    # the valid label 50 is never read; the latest training label breaks the tie by Pid
    assert got[5].user_prev_posts == 4 and got[5].user_prev_train_labels == 3
    assert got[5].user_prev_mean_label == pytest.approx(106 / 3) and got[5].user_prev_last_label == 100.0
    assert got[5].user_days_since_prev_post == pytest.approx(100 / 86400)
    assert got[6].user_prev_posts == 0


def test_not_scraped_is_distinct_from_no_groups(spark):
    posts = spark.createDataFrame([(1,), (2,), (3,), (4,)], "Pid long")
    post_groups = spark.createDataFrame([(1, "g1"), (1, "g2")], "Pid long, group_id string")
    groups = spark.createDataFrame(
        [("g1", 9, 100), ("g2", 99, 10)], "group_id string, member_count long, pool_count long"
    )
    status = spark.createDataFrame([(1, "ok"), (2, "ok"), (3, "failed")], "Pid long, status string")
    got = rows_by_pid(social.group_features(posts, post_groups, groups, status))
    assert got[1].group_count == 2 and got[1].group_members_max_log == pytest.approx(4.60517, rel=1e-4)
    assert got[1].group_pool_mean_log == pytest.approx(4.02535, rel=1e-4)  # log1p(55)
    assert (got[2].groups_scraped, got[2].group_count, got[2].group_members_mean_log) == (1, 0.0, 0.0)
    for pid in (3, 4):  # failed and never scraped: unknown, not zero
        assert (got[pid].groups_scraped, got[pid].group_count, got[pid].group_pool_max_log) == (0, None, None)


def test_target_encoding_is_out_of_fold_for_training_rows_and_ignores_other_labels(spark):
    rows = [(i, "train", "A", "x", "c", float(i)) for i in range(1, 21)]
    rows += [(100, "test", "A", "x", "c", 1000.0), (101, "test", "Z", "x", "c", 1000.0)]
    df = spark.createDataFrame(
        rows, "Pid long, split string, Category string, Subcategory string, Concept string, label double"
    )
    enc = category.fit_encodings(df, folds=3, seed=7)
    got = rows_by_pid(category.apply_encodings(df, enc, folds=3, seed=7, smoothing=0.0))
    folds = rows_by_pid(df.withColumn("fold", category.fold_of("Pid", 3, 7)))
    for pid in range(1, 21):
        others = [p for p in range(1, 21) if folds[p].fold != folds[pid].fold]
        assert got[pid].category_te == pytest.approx(sum(others) / len(others))
    assert got[100].category_te == pytest.approx(10.5) and got[100].category_freq == 1.0
    assert got[101].category_freq == 0.0 and got[101].category_te == pytest.approx(10.5)  # unseen -> prior


@pytest.fixture(scope="module")
def gold(spark, generated_lake):
    """One build of the session's generated lake: its inputs, gold rows and fitted state."""
    inputs = read_bronze(spark, generated_lake)
    df, state = build_gold(inputs, generated_lake)
    return inputs, df.localCheckpoint(), state


def test_gold_has_one_row_per_bronze_post_and_every_manifest_feature(gold, generated_lake):
    inputs, df, _ = gold
    assert df.count() == inputs["bronze/posts"].count() == df.select("Pid").distinct().count()
    assert df.columns[:5] == ["Pid", "Uid", "Postdate", "split", "label"]
    assert set(df.columns[5:]) == {s.name for s in feature_specs(generated_lake)}
    shares = {r["split"]: r["count"] for r in df.groupBy("split").count().collect()}
    total = sum(shares.values())
    assert shares["train"] / total == pytest.approx(0.8, abs=0.02) and shares["valid"] / total == pytest.approx(
        0.1, abs=0.02
    )
    bounds = {
        r["split"]: (r["lo"], r["hi"])
        for r in df.groupBy("split").agg(F.min("Postdate").alias("lo"), F.max("Postdate").alias("hi")).collect()
    }
    assert bounds["train"][1] < bounds["valid"][0] and bounds["valid"][1] < bounds["test"][0]  # chronological


def _features(df):
    return sorted(map(tuple, df.drop("label").collect()), key=lambda r: r[0])


def _same(a, b) -> bool:
    """Equal, with floats equal up to summation order (1e-9 relative) and the entries of vectors,
    stored as float32 arrays, up to two float32 steps or 1e-12 (a last-bit difference in the double
    before rounding can round to a neighbouring float32)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(math.isclose(x, y, rel_tol=2.4e-7, abs_tol=1e-12) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):  # math.isclose: pytest.approx is ~50x slower here
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _differing_columns(df1, df2) -> set[str]:
    cols = df1.drop("label").columns
    return {
        cols[i] for r1, r2 in zip(_features(df1), _features(df2)) for i in range(len(cols)) if not _same(r1[i], r2[i])
    }


def test_features_are_deterministic(spark, gold_lake, gold):
    """This module's build and the session's (conftest's gold_lake: the same bronze tables, built
    and written on its own) hold the same features."""
    _, first, _ = gold
    again = read_table(spark, gold_lake.table(GOLD), 0)
    assert again.columns == first.columns and again.count() == first.count()
    assert not _differing_columns(again, first)


def test_write_gold_makes_a_new_version_with_manifest_and_state(spark, generated_lake, gold, tmp_path):
    from smp_spark.config import load_config
    from smp_spark.features.gold import read_state

    _, df, state = gold
    cfg = load_config("test", [f"paths.lake={tmp_path / 'lake'}"])
    assert write_gold(spark, cfg, df, state, feature_specs(generated_lake)) == 0
    assert table_version(spark, cfg.table(GOLD)) == 0
    reread = read_state(spark, cfg, 0)
    assert reread["text"].tfidf.stages and reread["category"].indexer.stages and reread["time"] is None
    _crash_at_every_point_of_a_gold_write(spark, cfg, df, state, feature_specs(generated_lake))
    # every version written (0, the one committed before its crash point, and the last) has its manifest
    manifest = spark.read.format("delta").load(cfg.table("gold/feature_manifest"))
    names = {s.name for s in feature_specs(generated_lake)}
    for version in (0, 1, 2):
        assert {r.name for r in manifest.filter(F.col("gold_version") == version).collect()} == names


def _crash_at_every_point_of_a_gold_write(spark, cfg, df, state, specs):
    """A build killed anywhere in write_gold never leaves a visible gold version without its whole
    state and manifest, and the next build succeeds (the crash is raised in-process at the same
    points a SIGKILL would hit: write_gold runs no cleanup, so the files left are the same)."""
    import os

    from smp_spark.faults import Crashed
    from smp_spark.features.gold import read_manifest, read_state
    from smp_spark.models.dataset import model_input

    def whole(version):
        assert table_version(spark, cfg.table(GOLD)) == version
        assert read_manifest(spark, cfg, version).count() == len(specs)
        reread = read_state(spark, cfg, version)
        assert reread["text"].tfidf.stages and reread["category"].encodings.count() > 0
        assert model_input(spark, cfg).gold_version == version

    os.environ["SMP_CRASH_MODE"] = "raise"
    try:
        for point in ("gold:state-partly-written", "gold:state-written", "gold:manifest-written"):
            os.environ["SMP_CRASH_AT"] = point
            with pytest.raises(Crashed):
                write_gold(spark, cfg, df, state, specs)
            whole(0)  # the crashed version 1 is not visible; version 0 still is, whole
        os.environ["SMP_CRASH_AT"] = "gold:committed"
        with pytest.raises(Crashed):
            write_gold(spark, cfg, df, state, specs)
        whole(1)  # committed last: everything it needs was written before
    finally:
        os.environ.pop("SMP_CRASH_AT", None)
        os.environ.pop("SMP_CRASH_MODE", None)
    assert write_gold(spark, cfg, df, state, specs) == 2
    whole(2)


def test_training_rows_ignore_everything_about_valid_and_test_posts(spark, generated_lake, gold):
    """Every fitted state (TF-IDF + PCA, category indices, frequencies and target encodings, the
    image PCA, label aggregates) sees the training split only. One build with every valid/test
    post rewritten: label 0, title and tags swapped (words the training vocabulary knows, so
    their vectors must move), unseen category / subcategory / concept, other class scores,
    brightness and width. No training row's feature may move; the later rows' must."""
    inputs, first, _ = gold
    splits = first.select("Pid", "split")
    later = F.col("split") != "train"

    def rewrite(column, value):
        return F.when(later, value).otherwise(F.col(column))

    posts = (
        inputs["bronze/posts"]
        .join(splits, "Pid")
        .withColumns(
            {
                "label": rewrite("label", F.lit(0.0)),
                "Title": rewrite("Title", F.col("Alltags")),
                "Alltags": rewrite("Alltags", F.col("Title")),
                "Category": rewrite("Category", F.lit("Unseen")),
                "Subcategory": rewrite("Subcategory", F.lit("Unseen sub")),
                "Concept": rewrite("Concept", F.lit("unseen concept")),
            }
        )
        .drop("split")
    )
    embeddings = (
        inputs["gold/image_embeddings"]
        .join(splits, "Pid")
        .withColumn("class_scores", rewrite("class_scores", F.transform("class_scores", lambda x: x * -3 + 1)))
        .withColumn("brightness", rewrite("brightness", F.lit(0.5)))
        .drop("split")
    )
    images = inputs["bronze/images"].join(splits, "Pid").withColumn("width", rewrite("width", F.col("height")))
    changed_inputs = {
        **inputs,
        "bronze/posts": posts,
        "gold/image_embeddings": embeddings,
        "bronze/images": images.drop("split"),
    }
    changed, _ = build_gold(changed_inputs, generated_lake)
    train = F.col("split") == "train"
    assert not _differing_columns(changed.filter(train), first.filter(train))
    moved = _differing_columns(changed.filter(~train), first.filter(~train))
    expected = {"title_svd", "tags_svd", "tag_count", "category_idx", "category_te", "concept_freq"}
    expected |= {"image_pca", "image_brightness", "image_width", "image_aspect_ratio"}
    assert expected <= moved
