"""The fusion net itself: its input layout (which slots are numeric, categorical or a modality
vector, and the scaler fitted on the training split) and the torch module, shaped like the
research's dense model (``../shared/research/seed-notebooks.md`` 4.5).

- numeric slots (numbers, small categorical codes such as hour or weekday, the TF-IDF PCA vectors):
  scaled with the training split's mean / std, NaN -> 0 after scaling, plus a 0/1 missing flag for
  every slot with nulls in the training split (``fusion.missing_indicators``);
- ``category_idx`` one-hot; ``subcategory_idx`` and ``concept_idx`` through embeddings of about
  sqrt(vocabulary) dimensions (vocabulary = the fitted indexer's labels + its reserved unseen index);
- every embedding-family vector the table holds (``text_embedding``, 384-d; ``image_embedding``, the
  1000 class scores) through its own tower, Dense 128 (ReLU, BatchNorm), built from the layout, so a
  modality switched off by ``train.modalities`` has no tower.

Trunk, as the research: Dense 512 -> 256 -> 128, each ReLU -> BatchNorm -> dropout 0.5 / 0.4 / 0.3;
a residual Dense 128 (ReLU) from the first layer added to the 128 output; Dense 64 (ReLU) ->
BatchNorm -> Dense 1.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass

import torch
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from torch import nn

from smp_spark.config import Config
from smp_spark.features.category import INDEX_SPECS, CategoryFamily
from smp_spark.features.gold import read_state
from smp_spark.features.manifest import VECTOR
from smp_spark.features.registry import ALL_SPECS
from smp_spark.features.split import TRAIN
from smp_spark.models.dataset import ModelInput

MODEL_FILE = "fusion_model.pt"  # the best epoch's state_dict
LAYOUT_FILE = "fusion_layout.json"  # how to rebuild the net and split its input
ONE_HOT = "category_idx"  # the other category indices go through embeddings
HIDDEN = (512, 256, 128)
DROPOUT = (0.5, 0.4, 0.3)
HEAD = 64
TOWER = 128  # width of each modality tower (text embedding, image class scores)


@dataclass
class FusionLayout:
    """Where each input of the net sits in the ``features`` vector, and what was fitted on the
    training split. Saved as JSON beside the model."""

    slot_names: list[str]  # the ``features`` slots the net was trained on, in order
    numeric: list[int]  # slots scaled with mean / std
    mean: list[float]
    std: list[float]
    indicators: list[int]  # positions in ``numeric`` that also get a missing flag
    categories: dict[str, list[int]]  # *_idx name -> [slot, vocabulary incl. the reserved unseen index]
    vectors: dict[str, list[int]]  # embedding-family vector -> its slots
    label_mean: float  # the output bias starts here, so early epochs learn structure, not the offset

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(asdict(self), f)

    @classmethod
    def load(cls, path: str) -> FusionLayout:
        with open(path) as f:
            return cls(**json.load(f))


def embedding_dim(vocabulary: int) -> int:
    return max(2, round(math.sqrt(vocabulary)))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with its mask drawn by ``torch.rand`` (uniform draws below ``p`` drop):
    the same distribution, about 3x faster on CPU than the ``bernoulli_`` of ``nn.Dropout``, which
    took 14% of a training step (one thread, batch 1,024)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


def _block(width_in: int, width_out: int, dropout: float) -> nn.Sequential:
    """The research's dense block: Dense (ReLU) -> BatchNorm -> Dropout."""
    return nn.Sequential(nn.Linear(width_in, width_out), nn.ReLU(), nn.BatchNorm1d(width_out), Dropout(dropout))


def _columns(slots: list[int]) -> slice | torch.Tensor:
    """How to take ``slots`` from a batch: a slice (a view, no copy) when they are consecutive, as
    the layout's vectors always are; an index otherwise."""
    consecutive = slots == list(range(slots[0], slots[0] + len(slots)))
    return slice(slots[0], slots[0] + len(slots)) if consecutive else torch.tensor(slots, dtype=torch.long)


def _tower(width_in: int) -> nn.Sequential:
    """A modality's own dense layer before the trunk (a missing vector arrives as zeros)."""
    return nn.Sequential(nn.Linear(width_in, TOWER), nn.ReLU(), nn.BatchNorm1d(TOWER))


class FusionNet(nn.Module):
    """``features`` (float32, batch x slots, NaN = missing) -> predicted label (batch)."""

    def __init__(self, layout: FusionLayout):
        super().__init__()
        # the preprocessing constants live in the layout JSON, not in the state_dict
        self.register_buffer("numeric", torch.tensor(layout.numeric, dtype=torch.long), persistent=False)
        self.register_buffer("mean", torch.tensor(layout.mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(layout.std, dtype=torch.float32), persistent=False)
        self.register_buffer("indicators", torch.tensor(layout.indicators, dtype=torch.long), persistent=False)
        self.one_hot = {n: tuple(v) for n, v in layout.categories.items() if n == ONE_HOT}
        self.embedded = {n: tuple(v) for n, v in layout.categories.items() if n != ONE_HOT}
        self.embeddings = nn.ModuleDict({n: nn.Embedding(v, embedding_dim(v)) for n, (_, v) in self.embedded.items()})
        self.vectors = {name: _columns(slots) for name, slots in layout.vectors.items()}
        # one tower per modality vector (text embedding, image class scores): its own dense layer
        self.towers = nn.ModuleDict({n: _tower(len(s)) for n, s in layout.vectors.items()})
        width = (
            len(layout.numeric)
            + len(layout.indicators)
            + sum(v for _, v in self.one_hot.values())
            + sum(embedding_dim(v) for _, v in self.embedded.values())
            + TOWER * len(layout.vectors)
        )
        self.first = _block(width, HIDDEN[0], DROPOUT[0])
        self.second = _block(HIDDEN[0], HIDDEN[1], DROPOUT[1])
        self.third = _block(HIDDEN[1], HIDDEN[2], DROPOUT[2])
        self.residual = nn.Sequential(nn.Linear(HIDDEN[0], HIDDEN[2]), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(HIDDEN[2], HEAD), nn.ReLU(), nn.BatchNorm1d(HEAD), nn.Linear(HEAD, 1))
        nn.init.constant_(self.head[-1].bias, layout.label_mean)

    @staticmethod
    def _index(column: torch.Tensor, vocabulary: int) -> torch.Tensor:
        return torch.nan_to_num(column, nan=vocabulary - 1).long()  # a missing index -> the reserved one

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        numeric = features[:, self.numeric]
        parts = [
            torch.nan_to_num((numeric - self.mean) / self.std, nan=0.0),
            numeric[:, self.indicators].isnan().float(),
        ]
        for slot, vocabulary in self.one_hot.values():
            parts.append(nn.functional.one_hot(self._index(features[:, slot], vocabulary), vocabulary).float())
        for name, (slot, vocabulary) in self.embedded.items():
            parts.append(self.embeddings[name](self._index(features[:, slot], vocabulary)))
        for name, columns in self.vectors.items():
            vector = torch.nan_to_num(features[:, columns], nan=0.0)
            parts.append(self.towers[name](vector))
        first = self.first(torch.cat(parts, dim=1))
        hidden = self.head[:-1](self.third(self.second(first)) + self.residual(first))
        # the output layer in float32 even under bfloat16 autocast: its bias starts at the label mean
        # (about 6), where bfloat16's 8-bit mantissa rounds a prediction to steps of 0.03
        with torch.autocast("cpu", enabled=False):
            return self.head[-1](hidden.float()).squeeze(1)


def load_fusion(folder: str) -> FusionNet:
    """The saved net of a model folder (layout JSON + best state_dict), in eval mode."""
    model = FusionNet(FusionLayout.load(os.path.join(folder, LAYOUT_FILE)))
    model.load_state_dict(torch.load(os.path.join(folder, MODEL_FILE), map_location="cpu", weights_only=True))
    return model.eval()


def category_vocabularies(spark: SparkSession, config: Config, gold_version: int) -> dict[str, int]:
    """``*_idx`` column -> vocabulary size: the labels the indexer fitted for that gold version plus
    its reserved index for unseen / null values (which new posts can reach even when no gold row
    did, so the table's max index + 1 could be one short)."""
    return CategoryFamily.vocabularies(read_state(spark, config, gold_version)["category"])


def fit_layout(data: ModelInput, vocabularies: dict[str, int], missing_indicators: bool) -> FusionLayout:
    """Split ``data``'s slots into the net's inputs and fit the scaler on the training split
    (one Spark aggregation: mean, population std and non-null count of every numeric slot, read
    from ``data.inputs``: the gold columns of those slots, not the assembled vectors, which hold
    the embeddings' 1,384 slots too)."""
    names = data.slot_names
    categories = {s.name: [names.index(s.name), vocabularies[s.name]] for s in INDEX_SPECS if s.name in names}
    embedded = [s.name for s in ALL_SPECS if s.kind == VECTOR and s.family == "embedding"]
    vectors = {v: [i for i, n in enumerate(names) if re.fullmatch(rf"{re.escape(v)}_\d+", n)] for v in embedded}
    vectors = {v: slots for v, slots in vectors.items() if slots}
    taken = {slot for slot, _ in categories.values()} | {i for slots in vectors.values() for i in slots}
    numeric = [i for i in range(len(names)) if i not in taken]

    train = data.inputs.filter(F.col("split") == TRAIN)
    stats = train.agg(
        F.count(F.lit(1)),
        F.avg("label"),
        *[agg(data.slot_value(i)) for i in numeric for agg in (F.avg, F.stddev_pop, F.count)],  # nulls ignored
    ).first()
    rows, label_mean = stats[0], stats[1]
    mean, std, indicators = [], [], []
    for position in range(len(numeric)):
        average, spread, present = stats[2 + 3 * position : 5 + 3 * position]
        mean.append(float(average or 0.0))
        std.append(float(spread) if spread else 1.0)  # a constant or empty slot is only centred
        if missing_indicators and present < rows:
            indicators.append(position)
    return FusionLayout(names, numeric, mean, std, indicators, categories, vectors, float(label_mean))
