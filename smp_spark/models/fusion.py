"""The fusion net's training with Horovod on Spark from Petastorm datasets, and its predictions in
Spark (the net and its input layout: :mod:`smp_spark.models.fusion_net`).

Input: the same flat ``features`` vector the trees get (:func:`smp_spark.models.dataset.assemble`,
with the embedding vectors always included: :func:`with_embeddings`), so training, evaluation and
scoring share one column selection and null handling (null -> NaN).

Training, as the research: MSE loss, Adam, ReduceLROnPlateau on the valid loss (factor 0.2,
patience 3, min lr 1e-6) and early stopping on the valid MAE (patience 11), keeping the best
epoch; the valid split is never the test split.

Distributed: the train / valid splits become Petastorm parquet datasets under
``<lake>/petastorm_cache``; ``horovod.spark.run`` starts one process per Spark task slot (Gloo),
each reading its shard of both once into memory (:mod:`smp_spark.models.fusion_data`) and taking
every epoch as a new permutation of it. Rank 0 keeps the best epoch's ``state_dict`` in the model
folder, and :func:`predict_with_fusion` scores every post in Spark from that file (read by path:
local mode or a filesystem every executor sees). The steps' forward pass runs under bfloat16
autocast where ``fusion.precision`` resolves to it; the weights, the evaluation and the
predictions are float32.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import asdict, replace

import numpy as np
import torch
from pyspark.sql import DataFrame, SparkSession
from torch import nn

from smp_spark.config import Config, FusionConfig
from smp_spark.errors import InputError
from smp_spark.models.dataset import ModelInput
from smp_spark.models.fusion_data import epoch_order, load_shard, petastorm_datasets, train_steps
from smp_spark.models.fusion_net import (
    LAYOUT_FILE,
    MODEL_FILE,
    TOWER,
    FusionLayout,
    FusionNet,
    category_vocabularies,
    fit_layout,
    load_fusion,
)
from smp_spark.models.trees import TrainedModel, workers
from smp_spark.precision import resolve_precision

__all__ = [  # the net's names, for callers of the training module
    "CHECKPOINT_FILE",
    "LAYOUT_FILE",
    "MODEL_FILE",
    "TOWER",
    "FusionLayout",
    "FusionNet",
    "category_vocabularies",
    "fit_layout",
    "load_fusion",
    "predict_with_fusion",
    "train_fusion",
    "with_embeddings",
]

CHECKPOINT_FILE = "fusion_checkpoint.pt"  # the whole training state after the last finished epoch
EVAL_BATCH = 2048


def with_embeddings(config: Config) -> Config:
    """The config the net's input is assembled with: the embedding vectors always included (the
    trees take them only with ``train.use_embeddings``)."""
    return replace(config, train=replace(config.train, use_embeddings=True))


def parameter_digest(model: nn.Module) -> str:
    """A hash of every parameter: equal on two ranks only when their weights are identical."""
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().numpy().tobytes())
    return digest.hexdigest()


def training_fingerprint(
    layout: FusionLayout, fusion: FusionConfig, gold_version: int, processes: int, start: str | None = None
) -> str:
    """What a checkpoint must match to be resumed: the net's layout, the gold version, the process
    count (it shapes the per-rank batch), the weights it started from and every fusion setting but
    the epoch limit and the Horovod cycle time (neither changes the net)."""
    settings = {k: v for k, v in asdict(fusion).items() if k not in ("epochs", "cycle_time_ms")}
    what = dict(layout=asdict(layout), fusion=settings, gold_version=gold_version, processes=processes, start=start)
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
    start: str | None = None,
) -> dict:
    """One Horovod rank (runs inside a Spark task): train on this rank's shards, evaluate on the
    whole valid split every epoch, and on rank 0 print progress and keep the best state_dict.

    After every epoch rank 0 writes the whole training state to ``fusion_checkpoint.pt``; a run
    that finds one with the same :func:`training_fingerprint` (a killed run) goes on after its epoch.
    The checkpoint is removed when training ends. From ``start`` (an earlier net's weights file)
    the net begins with those weights, and their valid MAE is epoch 0's, the one to beat.

    Returns the rank, the parameter digests after the first step and at the end, and (rank 0) the
    per-epoch history."""
    import horovod.torch as hvd
    import scipy.stats

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
        optimizer, mode="min", factor=fusion.lr_factor, patience=fusion.lr_patience, min_lr=fusion.min_lr
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
    if start and not done:
        model.load_state_dict(torch.load(start, weights_only=True))
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    batch_size = max(2, fusion.batch_size // size)  # the global batch is the same for any process count
    started = time.time()
    train_rows = load_shard(train.file_urls, train.dataset_size, rank, size, "training")
    valid_rows = load_shard(valid.file_urls, valid.dataset_size, rank, size, "validation")
    if rank == 0:
        print(f"fusion: shards in memory ({len(train_rows):,} + {len(valid_rows):,} rows a rank, "
              f"{time.time() - started:.1f}s); {fusion.precision} steps", flush=True)  # fmt: skip
    bfloat16 = fusion.precision == "bfloat16"
    if start and not done:
        predictions, labels = _valid_predictions(model, valid_rows, hvd)
        best_mae = float(np.abs(predictions - labels).mean())
        if rank == 0:
            _save_atomically(model.state_dict(), os.path.join(out_dir, MODEL_FILE))
            print(f"fusion: starting from {start}, valid MAE {best_mae:.4f}", flush=True)

    for epoch in range(done + 1, fusion.epochs + 1):
        started = time.time()
        # each epoch's randomness (dropout, the order of the rows) from the seed and the epoch alone:
        # a run resumed from its checkpoint retraces the uninterrupted one, and two runs of one gold
        # version are the same
        torch.manual_seed(fusion.seed + epoch)
        learning_rate = optimizer.param_groups[0]["lr"]
        model.train()
        loss_sum, rows = 0.0, 0
        order = epoch_order(len(train_rows), steps, batch_size, fusion.seed + epoch)
        for loss, count in train_steps(model, optimizer, train_rows, order, batch_size, bfloat16):
            first_digest = first_digest or parameter_digest(model)
            loss_sum += loss * count
            rows += count
        totals = hvd.allreduce(torch.tensor([loss_sum, rows], dtype=torch.float64), op=hvd.Sum, name="train_loss")
        train_loss = float(totals[0] / totals[1])

        # batch-norm statistics are per rank: evaluate and save their average
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm1d):
                for stat in ("running_mean", "running_var"):
                    buffer = getattr(module, stat)
                    buffer.copy_(hvd.allreduce(buffer, op=hvd.Average, name=f"{name}.{stat}"))
        predictions, labels = _valid_predictions(model, valid_rows, hvd)
        # the same on every rank: the same decisions. The LR schedule watches the valid loss (MSE) and
        # early stopping the valid MAE, as the research's callbacks did
        valid_mae = float(np.abs(predictions - labels).mean())
        scheduler.step(float(np.square(predictions - labels).mean()))
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
        cycle_time=os.environ.get("HOROVOD_CYCLE_TIME"),  # what Horovod's background thread was given
    )


def _valid_predictions(model: nn.Module, valid_rows, hvd) -> tuple[np.ndarray, np.ndarray]:
    """The net's predictions for the whole valid split and their labels, gathered from every rank."""
    model.eval()
    with torch.no_grad():  # in float32 whatever the steps' precision, as predict_with_fusion
        predictions = torch.cat([model(f) for f in valid_rows.features.split(EVAL_BATCH)])
    predictions = hvd.allgather(predictions, name="valid_predictions").numpy()
    return predictions, hvd.allgather(valid_rows.label, name="valid_labels").numpy()


def train_fusion(
    spark: SparkSession, config: Config, data: ModelInput, out_dir: str, start: str | None = None
) -> TrainedModel:
    """Fit the net with ``horovod.spark.run`` (one process per task slot, at most
    ``train.num_workers``) and predict every post in Spark with the best epoch's weights.

    ``data`` must be assembled with :func:`with_embeddings` (``train_and_record`` does). Writes
    ``fusion_layout.json`` and ``fusion_model.pt`` to ``out_dir``; logs the per-epoch curves to the
    active MLflow run, if any. ``extra`` holds the history and every rank's result.

    From ``start`` (an earlier net's folder, the same input slots): its layout (the same scaling)
    and weights, a learning rate cut once by ``fusion.lr_factor`` and early stopping after
    ``fusion.warm_start_patience`` epochs without beating the start's own valid MAE."""
    import horovod.spark

    fusion = replace(config.fusion, precision=resolve_precision(config.fusion.precision))
    processes = workers(spark, config)
    if start:
        layout = FusionLayout.load(os.path.join(start, LAYOUT_FILE))
        fusion = replace(
            fusion,
            learning_rate=fusion.learning_rate * fusion.lr_factor,
            early_stopping_patience=fusion.warm_start_patience,
        )
        start = os.path.join(start, MODEL_FILE)
    else:
        layout = fit_layout(data, category_vocabularies(spark, config, data.gold_version), fusion.missing_indicators)
    os.makedirs(out_dir, exist_ok=True)
    layout.save(os.path.join(out_dir, LAYOUT_FILE))
    fingerprint = training_fingerprint(layout, fusion, data.gold_version, processes, start)
    train, valid = petastorm_datasets(spark, config, data, processes)
    # writing them grew the driver's heap by gigabytes it holds idle while the ranks hold their shards
    # in memory (one machine in local mode): a full collection lets the JVM's G1 give the pages back
    spark.sparkContext._jvm.System.gc()
    try:
        steps = math.ceil(train.dataset_size / fusion.batch_size)
        threads = int(spark.conf.get("spark.task.cpus", "1"))
        ranks = horovod.spark.run(
            _train_worker,
            args=(train, valid, layout, fusion, out_dir, steps, threads, fingerprint, start),
            num_proc=processes,
            use_gloo=True,
            env={"HOROVOD_CYCLE_TIME": f"{fusion.cycle_time_ms:g}"},  # added to each task's environment
        )
    finally:
        train.delete()
        valid.delete()
    history = ranks[0]["history"]
    _log_history(history)
    params = {
        **asdict(fusion),
        "workers": processes,
        "start": start or "",
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

    prepared = data.float_features().withColumnRenamed("features", "f")
    return prepared.mapInPandas(score, "Pid long, split string, label double, prediction double")
