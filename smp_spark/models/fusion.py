"""The fusion net: a PyTorch regressor over every gold feature family, trained with Horovod on Spark
from Petastorm datasets, then used for predictions in Spark.

Input: the same flat ``features`` vector the trees get (:func:`smp_spark.models.dataset.assemble`,
with the embedding vectors always included: :func:`with_embeddings`), so training, evaluation and
scoring share one column selection and null handling (null -> NaN). The net splits the vector by
slot name (:class:`FusionLayout`, fitted by :func:`fit_layout`):

- numeric slots (numbers, small categorical codes such as hour or weekday, the TF-IDF SVD vectors):
  scaled with the training split's mean / std, NaN -> 0 after scaling, plus a 0/1 missing flag for
  every slot with nulls in the training split (``fusion.missing_indicators``);
- ``category_idx`` one-hot; ``subcategory_idx`` and ``concept_idx`` through embeddings of about
  sqrt(vocabulary) dimensions (vocabulary = the fitted indexer's labels + its reserved unseen index);
- every embedding-family vector the table holds (``text_embedding``, 384-d; ``image_embedding``, the
  1000 class scores) through its own tower, Dense 128 (BatchNorm, ReLU), built from the layout, so a
  modality switched off by ``train.modalities`` has no tower.

Trunk: Dense 512 -> 256 -> 128 (BatchNorm, ReLU, dropout 0.5 / 0.4 / 0.3), a residual Dense 128 from
the first layer added to the 128 output, Dense 64 -> 1. MSE loss, Adam, ReduceLROnPlateau and early
stopping on the valid split's MAE (never the test split).

Distributed: the train / valid splits become Petastorm parquet datasets under
``<lake>/petastorm_cache``; ``horovod.spark.run`` starts one process per Spark task slot (Gloo),
each reading its shard. Rank 0 keeps the best epoch's ``state_dict`` in the model folder, and
:func:`predict_with_fusion` scores every post in Spark from that file (read by path: local mode or a
filesystem every executor sees). Float32 throughout.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import time
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterator

import numpy as np
import torch
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from torch import nn

from smp_spark.config import Config, FusionConfig
from smp_spark.errors import InputError
from smp_spark.features.category import INDEX_SPECS, CategoryFamily
from smp_spark.features.gold import read_state
from smp_spark.features.manifest import VECTOR
from smp_spark.features.registry import ALL_SPECS
from smp_spark.features.split import TRAIN, VALID
from smp_spark.models.dataset import ModelInput
from smp_spark.models.trees import TrainedModel, workers

MODEL_FILE = "fusion_model.pt"  # the best epoch's state_dict
CHECKPOINT_FILE = "fusion_checkpoint.pt"  # the whole training state after the last finished epoch
LAYOUT_FILE = "fusion_layout.json"  # how to rebuild the net and split its input
CACHE = "petastorm_cache"  # under the lake
CACHE_CONF = "petastorm.spark.converter.parentCacheDirUrl"
ONE_HOT = "category_idx"  # the other category indices go through embeddings
HIDDEN = (512, 256, 128)
DROPOUT = (0.5, 0.4, 0.3)
HEAD = 64
TOWER = 128  # width of each modality tower (text embedding, image class scores)
EVAL_BATCH = 2048


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


def _block(width_in: int, width_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width_in, width_out), nn.BatchNorm1d(width_out), nn.ReLU(), nn.Dropout(dropout))


def _tower(width_in: int) -> nn.Sequential:
    """A modality's own dense layer before the trunk (a missing vector arrives as zeros)."""
    return nn.Sequential(nn.Linear(width_in, TOWER), nn.BatchNorm1d(TOWER), nn.ReLU())


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
        self.vectors = list(layout.vectors)
        for name, slots in layout.vectors.items():
            self.register_buffer(f"{name}_slots", torch.tensor(slots, dtype=torch.long), persistent=False)
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
        self.residual = nn.Linear(HIDDEN[0], HIDDEN[2])
        self.head = nn.Sequential(nn.Linear(HIDDEN[2], HEAD), nn.ReLU(), nn.Linear(HEAD, 1))
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
        for name in self.vectors:
            vector = torch.nan_to_num(features[:, getattr(self, f"{name}_slots")], nan=0.0)
            parts.append(self.towers[name](vector))
        first = self.first(torch.cat(parts, dim=1))
        return self.head(self.third(self.second(first)) + self.residual(first)).squeeze(1)


def load_fusion(folder: str) -> FusionNet:
    """The saved net of a model folder (layout JSON + best state_dict), in eval mode."""
    model = FusionNet(FusionLayout.load(os.path.join(folder, LAYOUT_FILE)))
    model.load_state_dict(torch.load(os.path.join(folder, MODEL_FILE), map_location="cpu", weights_only=True))
    return model.eval()


def with_embeddings(config: Config) -> Config:
    """The config the net's input is assembled with: the embedding vectors always included (the
    trees take them only with ``train.use_embeddings``)."""
    return replace(config, train=replace(config.train, use_embeddings=True))


def category_vocabularies(spark: SparkSession, config: Config, gold_version: int) -> dict[str, int]:
    """``*_idx`` column -> vocabulary size: the labels the indexer fitted for that gold version plus
    its reserved index for unseen / null values (which new posts can reach even when no gold row
    did, so the table's max index + 1 could be one short)."""
    return CategoryFamily.vocabularies(read_state(spark, config, gold_version)["category"])


def fit_layout(data: ModelInput, vocabularies: dict[str, int], missing_indicators: bool) -> FusionLayout:
    """Split ``data``'s slots into the net's inputs and fit the scaler on the training split
    (one Spark aggregation: mean, population std and non-null count of every numeric slot)."""
    from pyspark.ml.functions import vector_to_array

    names = data.slot_names
    categories = {s.name: [names.index(s.name), vocabularies[s.name]] for s in INDEX_SPECS if s.name in names}
    embedded = [s.name for s in ALL_SPECS if s.kind == VECTOR and s.family == "embedding"]
    vectors = {v: [i for i, n in enumerate(names) if re.fullmatch(rf"{re.escape(v)}_\d+", n)] for v in embedded}
    vectors = {v: slots for v, slots in vectors.items() if slots}
    taken = {slot for slot, _ in categories.values()} | {i for slots in vectors.values() for i in slots}
    numeric = [i for i in range(len(names)) if i not in taken]

    train = data.rows.filter(F.col("split") == TRAIN).select(vector_to_array("features").alias("f"), "label")

    def value(i: int):
        return F.nanvl(F.col("f")[i], F.lit(None).cast("double"))  # NaN (a null feature) -> ignored

    stats = train.agg(
        F.count(F.lit(1)),
        F.avg("label"),
        *[agg(value(i)) for i in numeric for agg in (F.avg, F.stddev_pop, F.count)],
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


def cache_url(config: Config) -> str:
    """Petastorm's parent cache folder: ``<lake>/petastorm_cache`` as a URL."""
    path = config.table(CACHE)
    return path if "://" in path else f"file://{path}"


def _converters(spark: SparkSession, config: Config, data: ModelInput, processes: int):
    """The train and valid splits as Petastorm datasets (``features`` float32 array, ``label``).

    Each is written as ``processes`` files, so every Horovod rank has a shard (Petastorm shards by
    row group and refuses more shards than row groups)."""
    from petastorm.spark import make_spark_converter

    spark.conf.set(CACHE_CONF, cache_url(config))
    rows = data.rows.select("split", "features", F.col("label").cast("float"))
    frames = [rows.filter(F.col("split") == s).drop("split").repartition(processes) for s in (TRAIN, VALID)]
    return [make_spark_converter(frame, dtype="float32") for frame in frames]


def epoch_batches(open_loader: Callable, steps: int | None, what: str) -> Iterator[dict]:
    """The batches of one epoch from a fresh Petastorm loader: ``steps`` batches of an endless
    reader (training: every rank must take the same number of optimizer steps), or one whole pass
    (``steps=None``). Petastorm sometimes returns an empty pass, so an epoch that yields no rows is
    read once more, then fails."""
    for _ in range(2):
        rows = 0
        with open_loader() as loader:
            for batch in itertools.islice(loader, steps):
                rows += len(batch["label"])
                yield batch
        if rows:
            return
    raise RuntimeError(f"Petastorm returned no rows for the {what} epoch twice: the dataset's shard is empty")


def parameter_digest(model: nn.Module) -> str:
    """A hash of every parameter: equal on two ranks only when their weights are identical."""
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().numpy().tobytes())
    return digest.hexdigest()


def training_fingerprint(layout: FusionLayout, fusion: FusionConfig, gold_version: int, processes: int) -> str:
    """What a checkpoint must match to be resumed: the net's layout, the gold version, the process
    count (it shapes the per-rank batch) and every fusion setting but the epoch limit."""
    settings = {k: v for k, v in asdict(fusion).items() if k != "epochs"}
    what = dict(layout=asdict(layout), fusion=settings, gold_version=gold_version, processes=processes)
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def _save_atomically(state: dict, path: str) -> None:
    torch.save(state, f"{path}.tmp")
    os.replace(f"{path}.tmp", path)  # a reader (or a killed writer) never sees half a file


def _train_worker(
    train,
    valid,
    layout: FusionLayout,
    fusion: FusionConfig,
    out_dir: str,
    steps: int,
    threads: int,
    fingerprint: str,
) -> dict:
    """One Horovod rank (runs inside a Spark task): train on this rank's shards, evaluate on the
    whole valid split every epoch, and on rank 0 print progress and keep the best state_dict.

    After every epoch rank 0 writes the whole training state to ``fusion_checkpoint.pt``; a run
    that finds one with the same :func:`training_fingerprint` (a killed run) goes on after its epoch.
    The checkpoint is removed when training ends.

    Returns the rank, the parameter digests after the first step and at the end, and (rank 0) the
    per-epoch history."""
    import horovod.torch as hvd
    import scipy.stats
    from petastorm.pytorch import BatchedDataLoader

    # Petastorm 0.13 on the pinned pyarrow 14 warns about pyarrow's legacy dataset API at every call site
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"petastorm\.")
    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    # the cores of this rank's task slot: more threads than free cores make OpenMP spin (steps about
    # 40x slower on a 2-core machine with another Spark job running)
    torch.set_num_threads(threads)
    torch.manual_seed(fusion.seed)
    model = FusionNet(layout)
    optimizer = hvd.DistributedOptimizer(
        torch.optim.Adam(model.parameters(), lr=fusion.learning_rate), named_parameters=model.named_parameters()
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=fusion.lr_factor, patience=fusion.lr_patience
    )
    history, first_digest, best_mae, best_epoch, done = [], None, math.inf, 0, 0
    checkpoint = os.path.join(out_dir, CHECKPOINT_FILE)
    if os.path.exists(checkpoint):
        state = torch.load(checkpoint, weights_only=False)
        if state["fingerprint"] == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history, best_mae, best_epoch, done = (state[k] for k in ("history", "best_mae", "best_epoch", "epoch"))
            if rank == 0:
                print(f"fusion: resuming after epoch {done} from {checkpoint}", flush=True)
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    batch_size = max(2, fusion.batch_size // size)  # the global batch is the same for any process count

    def loader(converter, epochs, **kwargs):
        return lambda: converter.make_torch_dataloader(
            num_epochs=epochs,
            reader_pool_type="dummy",  # the thread pool sometimes yields empty epochs
            cur_shard=rank,
            shard_count=size,
            data_loader_fn=BatchedDataLoader,
            **kwargs,
        )

    for epoch in range(done + 1, fusion.epochs + 1):
        started = time.time()
        learning_rate = optimizer.param_groups[0]["lr"]
        model.train()
        loss_sum, rows = 0.0, 0
        # the same seed on every rank: Petastorm shuffles row groups before sharding them
        train_loader = loader(
            train, None, batch_size=batch_size, shuffling_queue_capacity=fusion.shuffle_rows, seed=fusion.seed + epoch
        )
        for batch in epoch_batches(train_loader, steps, "training"):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(batch["features"]), batch["label"])
            loss.backward()
            optimizer.step()
            first_digest = first_digest or parameter_digest(model)
            loss_sum += loss.item() * len(batch["label"])
            rows += len(batch["label"])
        totals = hvd.allreduce(torch.tensor([loss_sum, rows], dtype=torch.float64), op=hvd.Sum, name="train_loss")
        train_loss = float(totals[0] / totals[1])

        # batch-norm statistics are per rank: evaluate and save their average
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm1d):
                for stat in ("running_mean", "running_var"):
                    buffer = getattr(module, stat)
                    buffer.copy_(hvd.allreduce(buffer, op=hvd.Average, name=f"{name}.{stat}"))
        model.eval()
        predictions, labels = [], []
        with torch.no_grad():
            for batch in epoch_batches(loader(valid, 1, batch_size=EVAL_BATCH), None, "validation"):
                predictions.append(model(batch["features"]))
                labels.append(batch["label"])
        predictions = hvd.allgather(torch.cat(predictions), name="valid_predictions").numpy()
        labels = hvd.allgather(torch.cat(labels), name="valid_labels").numpy()
        valid_mae = float(np.abs(predictions - labels).mean())  # the same on every rank: same decisions
        scheduler.step(valid_mae)
        if valid_mae < best_mae:
            best_mae, best_epoch = valid_mae, epoch
            if rank == 0:
                _save_atomically(model.state_dict(), os.path.join(out_dir, MODEL_FILE))
        seconds = time.time() - started
        if rank == 0:
            valid_src = float(scipy.stats.spearmanr(labels, predictions).statistic)
            history.append(
                dict(
                    epoch=epoch,
                    train_loss=train_loss,
                    valid_mae=valid_mae,
                    valid_src=valid_src,
                    lr=learning_rate,
                    seconds=seconds,
                )
            )
            state = dict(model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict())
            state.update(history=history, best_mae=best_mae, best_epoch=best_epoch, epoch=epoch)
            _save_atomically({**state, "fingerprint": fingerprint}, checkpoint)
            print(
                f"fusion epoch {epoch}: train loss {train_loss:.4f}, valid MAE {valid_mae:.4f}, "
                f"valid SRC {valid_src:.4f}, lr {learning_rate:.2g} ({seconds:.1f}s, {size} processes)",
                flush=True,
            )
        if epoch - best_epoch >= fusion.early_stopping_patience:
            break
    if rank == 0 and os.path.exists(checkpoint):
        os.remove(checkpoint)
    return dict(
        rank=rank,
        size=size,
        first_step_digest=first_digest,
        final_digest=parameter_digest(model),
        best_epoch=best_epoch,
        history=history,
    )


def train_fusion(spark: SparkSession, config: Config, data: ModelInput, out_dir: str) -> TrainedModel:
    """Fit the net with ``horovod.spark.run`` (one process per task slot, at most
    ``train.num_workers``) and predict every post in Spark with the best epoch's weights.

    ``data`` must be assembled with :func:`with_embeddings` (``train_and_record`` does). Writes
    ``fusion_layout.json`` and ``fusion_model.pt`` to ``out_dir``; logs the per-epoch curves to the
    active MLflow run, if any. ``extra`` holds the history and every rank's result."""
    import horovod.spark

    fusion = config.fusion
    processes = workers(spark, config)
    layout = fit_layout(data, category_vocabularies(spark, config, data.gold_version), fusion.missing_indicators)
    os.makedirs(out_dir, exist_ok=True)
    layout.save(os.path.join(out_dir, LAYOUT_FILE))
    fingerprint = training_fingerprint(layout, fusion, data.gold_version, processes)
    train, valid = _converters(spark, config, data, processes)
    try:
        steps = math.ceil(train.dataset_size / fusion.batch_size)
        threads = int(spark.conf.get("spark.task.cpus", "1"))
        ranks = horovod.spark.run(
            _train_worker,
            args=(train, valid, layout, fusion, out_dir, steps, threads, fingerprint),
            num_proc=processes,
            use_gloo=True,
        )
    finally:
        train.delete()
        valid.delete()
    history = ranks[0]["history"]
    _log_history(history)
    params = {
        **asdict(fusion),
        "workers": processes,
        "steps_per_epoch": steps,
        "numeric_inputs": len(layout.numeric),
        "missing_flags": len(layout.indicators),
        "vocabularies": {n: v for n, (_, v) in layout.categories.items()},
        "vectors": {n: len(s) for n, s in layout.vectors.items()},
    }
    return TrainedModel(
        "fusion",
        predict_with_fusion(out_dir, data),
        params,
        os.path.join(out_dir, MODEL_FILE),
        {},
        best_iteration=ranks[0]["best_epoch"],
        extra={"history": history, "ranks": ranks},
    )


def _log_history(history: list[dict]) -> None:
    import mlflow

    if mlflow.active_run() is None:
        return
    for row in history:
        for key in ("train_loss", "valid_mae", "valid_src", "lr", "seconds"):
            if not math.isnan(row[key]):
                mlflow.log_metric(f"epoch_{key}", row[key], step=row["epoch"])


def predict_with_fusion(folder: str, data: ModelInput) -> DataFrame:
    """``Pid, split, label, prediction`` for ``data.rows`` from the net saved in ``folder``.

    Each Spark task loads the layout and state_dict from ``folder`` (so it must be readable by every
    executor: local mode, or a shared filesystem) and predicts in float32. Fails when ``data`` was
    assembled with other slots than the net was trained on (e.g. without the text embedding)."""
    import pandas as pd
    from pyspark.ml.functions import vector_to_array

    trained_slots = FusionLayout.load(os.path.join(folder, LAYOUT_FILE)).slot_names
    if trained_slots != data.slot_names:
        missing = sorted(set(trained_slots) - set(data.slot_names))[:3]
        raise InputError(
            f"the fusion net in {folder} was trained on {len(trained_slots)} feature slots, the rows have "
            f"{len(data.slot_names)} (missing e.g. {missing}): assemble them with fusion.with_embeddings(config)"
        )

    def score(frames):
        model = load_fusion(folder)
        for frame in frames:
            prediction = np.empty(0)
            if len(frame):
                features = torch.from_numpy(np.stack(frame["f"].to_numpy()).astype(np.float32, copy=False))
                with torch.no_grad():
                    prediction = model(features).numpy().astype(np.float64)
            yield pd.DataFrame(
                {"Pid": frame["Pid"], "split": frame["split"], "label": frame["label"], "prediction": prediction}
            )

    prepared = data.rows.select("Pid", "split", "label", vector_to_array("features", "float32").alias("f"))
    return prepared.mapInPandas(score, "Pid long, split string, label double, prediction double")
