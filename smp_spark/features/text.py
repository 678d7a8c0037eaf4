"""Text features: lengths and counts, and TF-IDF of 1-2 grams reduced by PCA (Spark ML).

The PCA projections are stored as ``array<float>``, never as Spark ML vectors: a vector is a
``udt`` column, which is not in the Delta protocol, so no other engine (delta-rs, DuckDB, Polars)
could open the gold table. The models turn arrays back into vectors
(:func:`smp_spark.models.dataset.assemble`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.ml import PipelineModel, Transformer
from pyspark.ml.feature import IDF, CountVectorizerModel, NGram, PCAModel, RegexTokenizer, SQLTransformer
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.errors import FeatureError
from smp_spark.features.family import FeatureFamily
from smp_spark.features.manifest import NUMERIC, VECTOR, FeatureSpec
from smp_spark.features.split import TRAIN
from smp_spark.features.vector_pca import fit_pca, fit_vector_pca, load_pca, project, save_pca
from smp_spark.ingest.files import is_dir

STAT_SPECS = [
    FeatureSpec("title_len", NUMERIC, "text", "Title", modality="text"),
    FeatureSpec("title_words", NUMERIC, "text", "Title", modality="text"),
    FeatureSpec("tags_len", NUMERIC, "text", "Alltags", modality="text"),
    FeatureSpec("tag_count", NUMERIC, "text", "Alltags", modality="text"),
    FeatureSpec("is_video", NUMERIC, "text", "Mediatype"),
]
TEXTS = {"title": "Title", "tags": "Alltags"}  # feature prefix -> bronze column
EMBEDDING_PCA_SPEC = FeatureSpec(
    "text_embedding_pca",
    VECTOR,
    "text",
    "text_embeddings.embedding",
    "PCA fitted on the training split's sentence vectors",
    "text",
)
SVD_SPECS = [
    FeatureSpec(f"{prefix}_svd", VECTOR, "text", column, "TF-IDF and PCA fitted on the training split", "text")
    for prefix, column in TEXTS.items()
]


def _token_count(text) -> F.Column:
    trimmed = F.trim(F.coalesce(text, F.lit("")))
    return F.when(trimmed == "", 0).otherwise(F.size(F.split(trimmed, r"\s+")))


def text_stats(posts: DataFrame) -> DataFrame:
    """Character lengths and token counts.

    Input: ``Title``, ``Alltags``, ``Mediatype``. Output: ``title_len``, ``title_words``,
    ``tags_len``, ``tag_count`` (a missing text counts as empty), ``is_video``.
    Window: the post itself.
    """
    return posts.withColumns(
        {
            "title_len": F.length(F.coalesce("Title", F.lit(""))),
            "title_words": _token_count(F.col("Title")),
            "tags_len": F.length(F.coalesce("Alltags", F.lit(""))),
            "tag_count": _token_count(F.col("Alltags")),
            "is_video": (F.coalesce(F.col("Mediatype"), F.lit("")) == "video").cast("int"),
        }
    )


def _grams(prefix: str, column: str) -> list[Transformer]:
    """``column`` -> ``_<prefix>_grams``: its lower-cased word tokens and their bigrams."""
    return [
        SQLTransformer(statement=f"SELECT *, coalesce({column}, '') AS _{prefix}_text FROM __THIS__"),
        RegexTokenizer(
            inputCol=f"_{prefix}_text",
            outputCol=f"_{prefix}_uni",
            pattern=r"[^\p{L}\p{N}]+",
            toLowercase=True,
            minTokenLength=1,
        ),
        NGram(n=2, inputCol=f"_{prefix}_uni", outputCol=f"_{prefix}_bi"),
        SQLTransformer(statement=f"SELECT *, concat(_{prefix}_uni, _{prefix}_bi) AS _{prefix}_grams FROM __THIS__"),
    ]


def fit_vocabulary(
    grams: DataFrame, column: str, output_col: str, vocab_size: int, min_df: float
) -> CountVectorizerModel:
    """Spark ML's ``CountVectorizer(vocabSize, minDF).fit``, with its ties broken.

    Input: ``column``, an array of terms per row. Output: a model whose transform adds
    ``output_col``, the term counts over the vocabulary. Window: the rows given.

    The vocabulary is the ``vocab_size`` terms most frequent over all rows among those in at
    least ``min_df`` rows (a fraction of the rows when below 1), most frequent first; equal counts
    go in the terms' order. Spark ML's own fit orders equal counts as its tasks happen to finish,
    so two fits on the same 544K training titles kept different sets of 2,000 terms, and the
    features changed from one build to the next.
    """
    threshold = min_df if min_df >= 1.0 else min_df * grams.count()

    def tally(terms, count: int, row: int) -> F.Column:
        return F.transform(
            terms, lambda t: F.struct(t.alias("term"), F.lit(count).alias("n"), F.lit(row).alias("rows"))
        )

    # one pass and one aggregation: each term once per occurrence (a count) and once per row holding it
    both = F.concat(tally(F.col(column), 1, 0), tally(F.array_distinct(column), 0, 1))
    counts = (
        grams.select(F.explode(both).alias("t"))
        .groupBy("t.term")
        .agg(F.sum("t.n").alias("n"), F.sum("t.rows").alias("rows"))
    )
    top = counts.filter(F.col("rows") >= threshold).orderBy(F.desc("n"), "term").limit(vocab_size)
    vocabulary = [r.term for r in top.collect()]
    if not vocabulary:
        raise FeatureError(f"no term of '{column}' is in at least {min_df:g} rows: the TF-IDF vocabulary is empty")
    return CountVectorizerModel.from_vocabulary(vocabulary, inputCol=column, outputCol=output_col)


def fit_tfidf(train: DataFrame, vocab_size: int, min_df: float, components: int) -> PipelineModel:
    """Per text (Title, Alltags): lower-cased word tokens, their bigrams, TF-IDF over the
    ``vocab_size`` most frequent 1-2 grams, and PCA to ``components`` dimensions.

    Input: ``Title``, ``Alltags``. Output: a model whose transform adds ``title_svd``,
    ``tags_svd`` (Spark ML vectors, which :func:`apply_tfidf` turns into arrays). Window: fitted
    on the rows it is given; ``build_features`` gives it the training split only.

    The stages are fitted one by one rather than as a ``Pipeline``, so that the term counts are
    computed once and cached for the IDF and the PCA passes (a ``Pipeline`` tokenizes the texts
    again for every pass); the vocabulary is :func:`fit_vocabulary`'s, the PCA :func:`fit_pca`'s.
    """
    stages: list[Transformer] = []
    for prefix, column in TEXTS.items():
        tokenize = _grams(prefix, column)
        grams = PipelineModel(tokenize).transform(train.select(column))
        counts = fit_vocabulary(grams, f"_{prefix}_grams", f"_{prefix}_tf", vocab_size, min_df)
        tf = counts.transform(grams).select(f"_{prefix}_tf").persist(StorageLevel.MEMORY_AND_DISK)
        idf = IDF(inputCol=f"_{prefix}_tf", outputCol=f"_{prefix}_tfidf").fit(tf)
        pca = fit_pca(idf.transform(tf), f"_{prefix}_tfidf", components, f"{prefix}_svd")
        tf.unpersist()
        stages += [*tokenize, counts, idf, pca]
    return PipelineModel(stages)


def apply_tfidf(model: PipelineModel, posts: DataFrame) -> DataFrame:
    """``title_svd`` and ``tags_svd`` (``array<float>``, ``features.svd_components`` long) for every
    post, from a fitted :func:`fit_tfidf`: its PCA output rounded to float32."""
    out = model.transform(posts)
    out = out.withColumns({f"{prefix}_svd": vector_to_array(f"{prefix}_svd", "float32") for prefix in TEXTS})
    return out.drop(*[c for c in out.columns if c.startswith(("_title_", "_tags_"))])


@dataclass
class TextState:
    tfidf: PipelineModel  # TF-IDF + PCA of Title and Alltags
    embedding_pca: PCAModel | None  # PCA of the sentence vectors (None without the text stage)


class TextFamily(FeatureFamily):
    """Lengths and counts, the TF-IDF + PCA vectors and a PCA of the sentence vector (each fitted
    on the training split)."""

    name = "text"

    def specs(self, config):
        return [*STAT_SPECS, *SVD_SPECS, *([EMBEDDING_PCA_SPEC] if config.features.text_embeddings else [])]

    def tables(self, config):
        return [catalog.TEXT_EMBEDDINGS] if config.features.text_embeddings else []

    def fit(self, rows, inputs, config):
        f = config.features
        train = rows.filter(F.col("split") == TRAIN)
        tfidf = fit_tfidf(train, f.tfidf_vocab, f.tfidf_min_df, f.svd_components)
        if not f.text_embeddings:
            return TextState(tfidf, None)
        embeddings = inputs[catalog.TEXT_EMBEDDINGS.name]
        return TextState(tfidf, fit_vector_pca(rows, embeddings, "embedding", f.text_embedding_pca_components))

    def apply(self, rows, inputs, state, config):
        out = apply_tfidf(state.tfidf, text_stats(rows))
        if not config.features.text_embeddings:
            return out
        if state.embedding_pca is None:
            return out.withColumn(EMBEDDING_PCA_SPEC.name, F.lit(None).cast("array<float>"))
        embeddings = inputs[catalog.TEXT_EMBEDDINGS.name].join(rows.select("Pid"), "Pid", "left_semi")
        projected = project(embeddings, "embedding", state.embedding_pca, EMBEDDING_PCA_SPEC.name)
        return out.join(projected, "Pid", "left")

    def save(self, state, path):
        state.tfidf.write().overwrite().save(f"{path}/tfidf")
        save_pca(state.embedding_pca, f"{path}/embedding_pca")

    def load(self, spark, path):
        if not is_dir(spark, f"{path}/tfidf"):  # a gold version built before the sentence-vector PCA
            return TextState(PipelineModel.load(path), None)
        return TextState(PipelineModel.load(f"{path}/tfidf"), load_pca(spark, f"{path}/embedding_pca"))
