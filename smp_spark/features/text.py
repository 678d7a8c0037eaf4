"""Text features: lengths and counts, and TF-IDF of 1-2 grams reduced by PCA (Spark ML)."""

from __future__ import annotations

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import IDF, PCA, CountVectorizer, NGram, RegexTokenizer, SQLTransformer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smp_spark.features.family import FeatureFamily
from smp_spark.features.manifest import NUMERIC, VECTOR, FeatureSpec
from smp_spark.features.split import TRAIN

STAT_SPECS = [
    FeatureSpec("title_len", NUMERIC, "text", "Title", modality="text"),
    FeatureSpec("title_words", NUMERIC, "text", "Title", modality="text"),
    FeatureSpec("tags_len", NUMERIC, "text", "Alltags", modality="text"),
    FeatureSpec("tag_count", NUMERIC, "text", "Alltags", modality="text"),
    FeatureSpec("is_video", NUMERIC, "text", "Mediatype"),
]
TEXTS = {"title": "Title", "tags": "Alltags"}  # feature prefix -> bronze column
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


def tfidf_pipeline(vocab_size: int, min_df: float, components: int) -> Pipeline:
    """Per text (Title, Alltags): lower-cased word tokens, their bigrams, TF-IDF over the
    ``vocab_size`` most frequent 1-2 grams, and PCA to ``components`` dimensions.

    Input: ``Title``, ``Alltags``. Output: ``title_svd``, ``tags_svd`` (vectors).
    Window: fitted on the rows it is given; ``build_features`` gives it the training split only.
    """
    stages = []
    for prefix, column in TEXTS.items():
        stages += [
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
            CountVectorizer(inputCol=f"_{prefix}_grams", outputCol=f"_{prefix}_tf", vocabSize=vocab_size, minDF=min_df),
            IDF(inputCol=f"_{prefix}_tf", outputCol=f"_{prefix}_tfidf"),
            PCA(k=components, inputCol=f"_{prefix}_tfidf", outputCol=f"{prefix}_svd"),
        ]
    return Pipeline(stages=stages)


def apply_tfidf(model: PipelineModel, posts: DataFrame) -> DataFrame:
    """``title_svd`` and ``tags_svd`` for every post, from a fitted :func:`tfidf_pipeline`."""
    out = model.transform(posts)
    return out.drop(*[c for c in out.columns if c.startswith(("_title_", "_tags_"))])


class TextFamily(FeatureFamily):
    """Lengths and counts, and the TF-IDF + PCA vectors (fitted on the training split)."""

    name = "text"

    def specs(self, config):
        return [*STAT_SPECS, *SVD_SPECS]

    def fit(self, rows, inputs, config):
        f = config.features
        train = rows.filter(F.col("split") == TRAIN)
        return tfidf_pipeline(f.tfidf_vocab, f.tfidf_min_df, f.svd_components).fit(train)

    def apply(self, rows, inputs, state, config):
        return apply_tfidf(state, text_stats(rows))

    def save(self, state, path):
        state.write().overwrite().save(path)

    def load(self, spark, path):
        return PipelineModel.load(path)
