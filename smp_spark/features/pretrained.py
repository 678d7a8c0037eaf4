"""The pretrained models' raw vectors as a feature family: the text embedding and the image class
scores, joined from their cached stages (``gold/text_embeddings``, ``gold/image_embeddings``)."""

from __future__ import annotations

from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.features.embeddings import SPEC as TEXT_EMBEDDING
from smp_spark.features.family import FeatureFamily
from smp_spark.features.image_embeddings import SPEC as IMAGE_EMBEDDING
from smp_spark.features.manifest import FeatureSpec


class EmbeddingFamily(FeatureFamily):
    """The pretrained models' raw vectors, joined from their cached stages: the text embedding
    (``features.text_embeddings``) and the image class scores (``features.image_embeddings``)."""

    name = "embedding"

    def _parts(self, config: Config) -> list[tuple[FeatureSpec, catalog.Table, str]]:
        f = config.features
        return [
            *([(TEXT_EMBEDDING, catalog.TEXT_EMBEDDINGS, "embedding")] if f.text_embeddings else []),
            *([(IMAGE_EMBEDDING, catalog.IMAGE_EMBEDDINGS, "class_scores")] if f.image_embeddings else []),
        ]

    def specs(self, config):
        return [spec for spec, _, _ in self._parts(config)]

    def tables(self, config):
        return [table for _, table, _ in self._parts(config)]

    def apply(self, rows, inputs, state, config):
        for spec, table, column in self._parts(config):
            rows = rows.join(inputs[table.name].select("Pid", F.col(column).alias(spec.name)), "Pid", "left")
        return rows
