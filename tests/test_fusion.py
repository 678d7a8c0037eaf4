"""The Horovod fusion net on local Spark: two ranks in step, learning, and a saved model that agrees."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from smp_spark.evaluate import PREDICTIONS
from smp_spark.features.gold import GOLD
from smp_spark.features.split import TRAIN
from smp_spark.lake import read_table, table_version
from smp_spark.models.dataset import assemble, model_input
from smp_spark.models.fusion import (
    CHECKPOINT_FILE,
    LAYOUT_FILE,
    MODEL_FILE,
    TOWER,
    FusionLayout,
    FusionNet,
    category_vocabularies,
    fit_layout,
    load_fusion,
    with_embeddings,
)
from smp_spark.models.fusion_data import Shard, epoch_batches, epoch_order, load_shard, train_steps
from smp_spark.models.fusion_net import Dropout
from smp_spark.models.run import train_and_record
from smp_spark.score import predict


@pytest.fixture(scope="module")
def fusion_run(spark, gold_lake):
    return train_and_record(spark, gold_lake, "fusion")


def test_both_ranks_hold_the_same_parameters(fusion_run, gold_lake):
    trained, _ = fusion_run
    ranks = trained.extra["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and trained.params["workers"] == 2
    # fusion.cycle_time_ms reached both ranks' Horovod (not its 1 ms default, which steals CPU)
    assert [float(r["cycle_time"]) for r in ranks] == [gold_lake.fusion.cycle_time_ms] * 2
    # each rank trains on its own shard: equal weights mean the gradients were really averaged
    assert ranks[0]["first_step_digest"] == ranks[1]["first_step_digest"]
    assert ranks[0]["final_digest"] == ranks[1]["final_digest"]
    # the image branch: the 1000 class scores through their own tower
    folder = os.path.dirname(trained.native_path)
    layout = FusionLayout.load(os.path.join(folder, LAYOUT_FILE))
    assert len(layout.vectors["image_embedding"]) == 1000
    weights = torch.load(os.path.join(folder, MODEL_FILE), weights_only=True)
    assert weights["towers.image_embedding.0.weight"].shape == (TOWER, 1000)


def test_training_loss_falls_and_valid_mae_beats_the_median(spark, gold_lake, fusion_run):
    trained, scores = fusion_run
    history = trained.extra["history"]
    assert len(history) >= 3 and history[-1]["train_loss"] < history[0]["train_loss"]
    data = model_input(spark, gold_lake)
    median = data.rows.filter(F.col("split") == TRAIN).agg(F.percentile_approx("label", 0.5, 100000)).first()[0]
    valid_rows = data.rows.filter(F.col("split") == "valid")
    median_mae = valid_rows.agg(F.avg(F.abs(F.col("label") - F.lit(median)))).first()[0]
    valid = next(r for r in scores if r["split"] == "valid")
    assert valid["mae"] < median_mae
    assert valid["mae"] == pytest.approx(min(h["valid_mae"] for h in history), abs=1e-4)  # the best epoch's net


def test_the_saved_net_reloads_and_predicts_what_spark_wrote(spark, gold_lake, fusion_run):
    trained, _ = fusion_run
    written = spark.read.format("delta").load(gold_lake.table(PREDICTIONS)).filter("model = 'fusion'")
    data = model_input(spark, with_embeddings(gold_lake))
    assert written.count() == data.rows.count()
    sample = (
        data.rows.orderBy("Pid")
        .limit(300)
        .join(written.select("Pid", "prediction"), "Pid")
        .select("Pid", vector_to_array("features", "float32").alias("f"), "prediction")
        .orderBy("Pid")
        .collect()
    )
    model = load_fusion(os.path.dirname(trained.native_path))
    with torch.no_grad():
        reloaded = model(torch.tensor(np.array([r.f for r in sample], dtype=np.float32))).numpy()
    np.testing.assert_allclose(reloaded, [r.prediction for r in sample], rtol=1e-5, atol=1e-5)
    # the scoring job's path: gold-shaped rows -> the saved net
    gold = read_table(spark, gold_lake.table(GOLD), data.gold_version).orderBy("Pid").limit(300)
    scored = {r.Pid: r.prediction for r in predict(spark, gold_lake, "fusion", data.gold_version, gold).collect()}
    np.testing.assert_allclose([scored[r.Pid] for r in sample], [r.prediction for r in sample], rtol=1e-5, atol=1e-5)


def test_the_layout_takes_every_embedding_vector_the_table_has(spark, gold_lake):
    version = table_version(spark, gold_lake.table(GOLD))
    gold = read_table(spark, gold_lake.table(GOLD), version)
    width = 16  # any width: the layout reads it from the slots
    gold = gold.withColumn("text_embedding", F.array(*[F.rand(seed=i).cast("float") for i in range(width)]))
    data = assemble(gold.orderBy("Pid").limit(500), with_embeddings(gold_lake), version)  # the same 500 each read
    layout = fit_layout(data, category_vocabularies(spark, gold_lake, version), missing_indicators=True)
    assert len(layout.vectors["text_embedding"]) == width and len(layout.vectors["image_embedding"]) == 1000
    assert set(layout.categories) == {"category_idx", "subcategory_idx", "concept_idx"}
    assert layout.indicators
    vectors = [slot for slots in layout.vectors.values() for slot in slots]
    inputs = sorted(layout.numeric + [s for s, _ in layout.categories.values()] + vectors)
    assert inputs == list(range(len(data.slot_names)))  # every slot feeds the net exactly once
    # the scaler, fitted from the gold columns, is that of the assembled training vectors' numeric slots
    train = data.rows.filter(F.col("split") == TRAIN).select(vector_to_array("features").alias("f")).collect()
    numeric = np.array([r.f for r in train])[:, layout.numeric]
    present = ~np.isnan(numeric)
    assert present.all(axis=0).sum() < len(layout.numeric)  # some slots have nulls to ignore
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a slot null in every training row
        mean, std = np.nanmean(numeric, axis=0), np.nanstd(numeric, axis=0)
    np.testing.assert_allclose(layout.mean, np.where(present.any(axis=0), mean, 0.0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(layout.std, np.where(present.any(axis=0) & (std > 0), std, 1.0), rtol=1e-7, atol=1e-9)
    assert layout.indicators == [i for i in range(len(layout.numeric)) if not present[:, i].all()]
    rows = data.rows.select(vector_to_array("features", "float32").alias("f")).limit(8).collect()
    with torch.no_grad():
        out = FusionNet(layout).eval()(torch.tensor(np.array([r.f for r in rows], dtype=np.float32)))
    assert out.shape == (8,) and torch.isfinite(out).all()


def test_the_nets_float_features_are_the_assembled_vectors_in_float32(spark, gold_lake):
    """The net reads ``float_features`` (built from the gold columns in Spark SQL) for Petastorm and for predicting:
    the assembled ``features`` vectors in float32 slot for slot, NaN where they hold NaN (a null scalar, a post
    without an image vector), for the same posts."""
    data = model_input(spark, with_embeddings(gold_lake))
    ours = {r.Pid: r.features for r in data.float_features().collect()}
    assembled = data.rows.select("Pid", vector_to_array("features", "float32").alias("f")).collect()
    theirs = {r.Pid: r.f for r in assembled}
    assert ours.keys() == theirs.keys()
    a, b = (np.array([rows[p] for p in sorted(rows)], dtype=np.float32) for rows in (ours, theirs))
    assert a.shape == (len(theirs), len(data.slot_names))
    np.testing.assert_array_equal(a, b)  # NaN in the same places
    image = [i for i, name in enumerate(data.slot_names) if name.startswith("image_embedding_")]
    assert np.isnan(b[:, image]).all(axis=1).any() and not np.isnan(b[:, image]).all()
    scalars = sum(index is None for _, index in data.slot_inputs)  # the first slots
    assert np.isnan(b[:, :scalars]).any()  # a null scalar


def test_an_empty_petastorm_pass_is_read_again_once_then_fails():
    passes = []

    def loader(batches):
        @contextlib.contextmanager
        def open_loader():
            passes.append(1)
            yield iter(batches.pop(0))

        return open_loader

    batch = {"label": torch.zeros(4)}
    assert list(epoch_batches(loader([[], [batch, batch]]), "validation")) == [batch, batch]
    assert len(passes) == 2
    with pytest.raises(RuntimeError, match="no rows for the training shard twice"):
        list(epoch_batches(loader([[], []]), "training"))


def test_a_shard_read_into_memory_holds_its_rows_and_the_shards_hold_every_row_once(spark, tmp_path):
    from petastorm.spark import make_spark_converter

    spark.conf.set("petastorm.spark.converter.parentCacheDirUrl", f"file://{tmp_path}")
    rows = [(float(i), [float(i), float(-i), float("nan")]) for i in range(10)]
    frame = spark.createDataFrame(rows, "label float, features array<float>").repartition(2)
    converter = make_spark_converter(frame, dtype="float32")
    try:
        files, capacity = converter.file_urls, converter.dataset_size
        shards = [load_shard(files, capacity, rank, 2, "test") for rank in (0, 1)]
        # the converter lists its files in no fixed order (Spark's inputFiles): a rank's rows must not follow it
        assert len(files) == 2
        again = load_shard(files[::-1], capacity, 0, 2, "test")
    finally:
        converter.delete()
    assert torch.equal(again.label, shards[0].label)
    assert all(len(s) for s in shards)  # one parquet file a rank
    label = torch.cat([s.label for s in shards])
    features = torch.cat([s.features for s in shards])
    assert sorted(label.tolist()) == [float(i) for i in range(10)]
    assert features[:, 0].tolist() == label.tolist() and features[:, 1].tolist() == (-label).tolist()
    assert features[:, 2].isnan().all()
    last = len(shards[0]) - 1
    picked = shards[0].rows(torch.tensor([last, 0]))
    assert picked[0][:, :2].tolist() == [[label[last].item(), -label[last].item()], [label[0].item(), -label[0].item()]]
    assert picked[1].tolist() == [label[last].item(), label[0].item()]


def test_an_epoch_takes_full_batches_from_permutations_of_the_shard():
    order = epoch_order(rows=5, steps=3, batch_size=2, seed=7)
    assert len(order) == 6  # 3 full steps of 2 rows from a 5-row shard
    assert sorted(order[:5].tolist()) == [0, 1, 2, 3, 4]  # every row once, then a second permutation begins
    assert 0 <= order[5] < 5
    assert torch.equal(order, epoch_order(5, 3, 2, seed=7))  # the seed fixes the order (a resumed run)
    assert [sorted(epoch_order(100, 10, 10, seed).tolist()) for seed in (1, 2)] == [list(range(100))] * 2
    assert not torch.equal(epoch_order(100, 10, 10, 1), epoch_order(100, 10, 10, 2))


def test_dropout_drops_its_share_and_scales_the_rest():
    layer = Dropout(0.4)
    x = torch.ones(200, 500)
    torch.manual_seed(0)
    kept = layer(x)
    assert torch.unique(kept).tolist() == [0.0, pytest.approx(1 / 0.6)]
    assert (kept == 0).float().mean().item() == pytest.approx(0.4, abs=0.01)
    layer.eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_bfloat16_steps_run_under_autocast_and_keep_the_weights_float32():
    layout = FusionLayout(
        slot_names=["a", "b", "category_idx", *[f"v_{i}" for i in range(64)]], numeric=[0, 1], mean=[0.0, 1.0],
        std=[1.0, 2.0], indicators=[1], categories={"category_idx": [2, 5]}, vectors={"v": list(range(3, 67))},
        label_mean=6.0,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(256, 67, generator=generator)
    features[:, 2] = torch.randint(0, 4, (256,), generator=generator).float()
    features[::7, 1] = float("nan")
    shard = Shard(features, 6 + torch.randn(256, generator=generator))
    torch.manual_seed(1)
    model = FusionNet(layout).eval()
    with torch.no_grad():
        exact = model(features)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rounded = model(features)
    assert rounded.dtype == torch.float32 and not torch.equal(rounded, exact)  # bfloat16 products ran
    assert (rounded - exact).abs().max() < 0.05
    # the output layer stayed float32: predictions near 6 are not on bfloat16's grid of 1/32 steps
    assert (rounded != rounded.bfloat16().float()).float().mean() > 0.9
    losses = {}
    for bfloat16 in (False, True):
        torch.manual_seed(1)
        model = FusionNet(layout)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        steps = train_steps(model, optimizer, shard, epoch_order(256, 4, 64, seed=0), 64, bfloat16)
        losses[bfloat16] = [loss for loss, _ in steps]
        assert all(p.dtype == torch.float32 for p in model.parameters())
    np.testing.assert_allclose(losses[True], losses[False], rtol=0.05)  # nearly the same steps


EPOCHS = 4  # of the resumed training: the job is killed once epoch 1 is saved, the rerun trains 2-4 only


def test_a_training_killed_after_an_epoch_goes_on_from_its_checkpoint(spark, gold_lake, tmp_path, fusion_run):
    # a copy of the lake: the killed job and its rerun write their own predictions and models
    shutil.copytree(gold_lake.path("lake"), tmp_path / "lake", ignore=shutil.ignore_patterns("petastorm_cache"))
    settings = {
        "paths.lake": tmp_path / "lake",
        "paths.models": tmp_path / "models",
        "train.tracking_uri": f"file:{tmp_path / 'mlruns'}",
        "fusion.epochs": EPOCHS,
        "fusion.early_stopping_patience": EPOCHS,  # every epoch runs: the kill lands before the end
    }
    project = Path(__file__).resolve().parents[1]
    log = tmp_path / "killed.log"
    with open(log, "w") as out:
        job = subprocess.Popen(
            [
                sys.executable,
                str(project / "jobs" / "train_fusion.py"),
                *[f"--set={k}={v}" for k, v in settings.items()],
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SMP_CONF": "test", "PYTHONPATH": str(project)},
            start_new_session=True,  # its own process group: the JVM and the Horovod ranks die with it
        )
        try:
            deadline = time.time() + 600
            while "fusion epoch 1:" not in log.read_text():  # printed after the checkpoint is written
                assert job.poll() is None, log.read_text()[-3000:]
                assert time.time() < deadline, "the fusion job never finished an epoch"
                time.sleep(0.1)
        finally:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    checkpoint = next((tmp_path / "models").rglob(CHECKPOINT_FILE))
    saved = torch.load(checkpoint, weights_only=False)
    assert 1 <= saved["epoch"] < EPOCHS
    assert [h["epoch"] for h in saved["history"]] == list(range(1, saved["epoch"] + 1))

    config = replace(
        gold_lake,
        paths=replace(gold_lake.paths, lake=str(tmp_path / "lake"), models=str(tmp_path / "models")),
        train=replace(gold_lake.train, tracking_uri=settings["train.tracking_uri"]),
        fusion=replace(gold_lake.fusion, epochs=EPOCHS, early_stopping_patience=EPOCHS),
    )
    trained, _ = train_and_record(spark, config, "fusion")
    history = trained.extra["history"]
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))  # every epoch once
    assert history[: saved["epoch"]] == saved["history"]  # the finished epochs were not trained again
    assert not checkpoint.exists()  # a finished training leaves no checkpoint behind

    # the same gold version, seed and process count give the same net: the killed-and-resumed run
    # (other processes, another copy of the lake) retraces the module's uninterrupted run epoch by
    # epoch: the same training losses and learning rates, and the same valid metrics up to float32
    # summation order (1.4070868 vs 1.4070870 measured once)
    uninterrupted = fusion_run[0].extra["history"][:EPOCHS]
    assert [(h["epoch"], h["train_loss"], h["lr"]) for h in history] == [
        (h["epoch"], h["train_loss"], h["lr"]) for h in uninterrupted
    ]
    for resumed, reference in zip(history, uninterrupted):
        assert resumed["valid_mae"] == pytest.approx(reference["valid_mae"], rel=1e-6)
        assert resumed["valid_src"] == pytest.approx(reference["valid_src"], rel=1e-6)
