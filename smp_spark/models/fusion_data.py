"""The fusion net's rows: the train and valid splits written as Petastorm datasets by Spark, and
each Horovod rank's shard of them read once into memory.

Input: ``ModelInput.float_features()`` (one ``array<float>`` per post, NaN = missing) and the label.
Output: ``<lake>/petastorm_cache`` (Petastorm's converter folder, removed after training); in each
rank, its shard of each split as two float32 tensors (:class:`Shard`).

Why in memory: an epoch used to read its shard again through Petastorm (about 25K rows/s a core,
a third of a 680K epoch). Read once, each epoch is a fresh permutation of the shard (every row,
not a 4,096-row buffer's local shuffle) gathered batch by batch from memory. The cost is the
shard's size: rows x slots x 4 bytes (at 680K with both vectors and 2 ranks, about 1.65 GB a rank
for the train split, 0.2 GB for the valid split).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from torch import nn

from smp_spark.config import Config
from smp_spark.features.split import TRAIN, VALID
from smp_spark.models.dataset import ModelInput

CACHE = "petastorm_cache"  # under the lake
CACHE_CONF = "petastorm.spark.converter.parentCacheDirUrl"
READ_BATCH = 8192  # rows a Petastorm batch while a shard is read into memory


def cache_url(config: Config) -> str:
    """Petastorm's parent cache folder: ``<lake>/petastorm_cache`` as a URL."""
    path = config.table(CACHE)
    return path if "://" in path else f"file://{path}"


def petastorm_datasets(spark: SparkSession, config: Config, data: ModelInput, processes: int):
    """The train and valid splits as Petastorm datasets (``features`` float32 array, ``label``).

    Each is written as ``processes`` files, so every Horovod rank has a shard (Petastorm shards by
    row group and refuses more shards than row groups). A post's file is a hash of its Pid and a
    file's rows are in Pid order, so the same gold version gives the same files (and, with
    :func:`load_shard`'s sorted file list, the same shards, batches and net) on every run."""
    from petastorm.spark import make_spark_converter

    spark.conf.set(CACHE_CONF, cache_url(config))
    rows = data.float_features().select("Pid", "split", "features", F.col("label").cast("float"))
    frames = [
        rows.filter(F.col("split") == s).repartition(processes, "Pid").sortWithinPartitions("Pid").drop("split", "Pid")
        for s in (TRAIN, VALID)
    ]
    return [make_spark_converter(frame, dtype="float32") for frame in frames]


def epoch_batches(open_loader: Callable, what: str) -> Iterator[dict]:
    """The batches of one pass of a fresh Petastorm loader. Petastorm sometimes returns an empty
    pass, so a pass that yields no rows is read once more, then fails."""
    for _ in range(2):
        rows = 0
        with open_loader() as loader:
            for batch in loader:
                rows += len(batch["label"])
                yield batch
        if rows:
            return
    raise RuntimeError(f"Petastorm returned no rows for the {what} shard twice: the dataset's shard is empty")


@dataclass
class Shard:
    """A rank's rows of one split, in memory."""

    features: torch.Tensor  # rows x slots, float32, NaN = missing
    label: torch.Tensor  # rows, float32

    def __len__(self) -> int:
        return len(self.label)

    def rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features.index_select(0, index), self.label.index_select(0, index)


def load_shard(file_urls: list[str], capacity: int, rank: int, size: int, what: str) -> Shard:
    """Rank ``rank`` of ``size``'s shard of the Petastorm dataset in ``file_urls`` (a converter's
    ``file_urls``; at most ``capacity`` rows, its ``dataset_size``), read once in file order.

    The files are sorted by name first: a converter lists them from Spark's ``inputFiles()``, a
    set, and Petastorm deals row groups to the shards in the order of its list, so a rank's rows
    changed from run to run (at 680K the valid shard of rank 0 held 33,963 posts in one run and
    34,037 in the next). The tensors are allocated for ``capacity`` rows and filled as the batches
    arrive (pages never written hold no memory), so the rows are never held twice."""
    from petastorm import make_batch_reader
    from petastorm.pytorch import BatchedDataLoader

    @contextlib.contextmanager
    def open_loader():
        with make_batch_reader(
            sorted(file_urls),
            num_epochs=1,
            reader_pool_type="dummy",  # the thread pool sometimes yields empty passes
            cur_shard=rank,
            shard_count=size,
            shuffle_row_groups=False,
        ) as reader:
            yield BatchedDataLoader(reader, batch_size=READ_BATCH)

    features = label = None
    rows = 0
    for batch in epoch_batches(open_loader, what):
        if features is None:
            features = torch.empty((capacity, batch["features"].shape[1]), dtype=torch.float32)
            label = torch.empty(capacity, dtype=torch.float32)
        count = len(batch["label"])
        features[rows : rows + count] = batch["features"]
        label[rows : rows + count] = batch["label"]
        rows += count
    return Shard(features[:rows], label[:rows])


def epoch_order(rows: int, steps: int, batch_size: int, seed: int) -> torch.Tensor:
    """The row indices of one epoch: ``steps`` batches of ``batch_size`` rows from random
    permutations of ``rows`` (a shard a little shorter than ``steps x batch_size``, as the last
    ranks' shards can be, starts a second permutation: every rank takes the same number of full
    steps, as Horovod's allreduce needs). The same ``seed`` gives the same order."""
    generator = torch.Generator().manual_seed(seed)
    wanted = steps * batch_size
    order = torch.cat([torch.randperm(rows, generator=generator) for _ in range(math.ceil(wanted / rows))])
    return order[:wanted]


def train_steps(
    model: nn.Module, optimizer, shard: Shard, order: torch.Tensor, batch_size: int, bfloat16: bool
) -> Iterator[tuple[float, int]]:
    """One epoch's optimizer steps over ``shard`` in ``order``, ``batch_size`` rows a step; yields
    each step's loss and row count. ``bfloat16``: the forward pass under torch's CPU autocast (the
    weights, the gradients' accumulation and the loss stay float32)."""
    for index in order.split(batch_size):
        features, label = shard.rows(index)
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            prediction = model(features)
        loss = nn.functional.mse_loss(prediction.float(), label)
        loss.backward()
        optimizer.step()
        yield loss.item(), len(label)
