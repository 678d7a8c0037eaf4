"""Where an epoch of the Horovod fusion net goes, and how it scales with processes (issue 13, target 3).

No Spark: the product's :class:`FusionNet` on a Petastorm dataset of random rows shaped like the
680K gold table's net input (130 numeric slots, three category indices, the 384-d text vector and
the 1000 image class scores), read and trained the way ``fusion._train_worker`` does (Petastorm
``make_batch_reader`` + ``BatchedDataLoader``, one reader thread, a 4,096-row shuffling buffer,
Adam under ``hvd.DistributedOptimizer``, one torch thread a process):

    .venv/bin/python benchmarks/fusion_speed.py [--rows 131072] [--batches 512 4096]

1. one process, one thread, no Horovod: rows/s of the training step alone (batches in memory),
   of the evaluation pass, and of the Petastorm read alone: the per-core bounds;
2. one epoch over ``--rows`` through Horovod (Gloo) with 1 and 2 processes at each global batch
   in ``--batches``: seconds, CPU seconds per rank, and the 2-process speed-up. ``--launchers
   spark`` (the default) starts the ranks as the product does, ``horovod.spark.run`` in the tasks
   of a ``local[2]`` session; ``run`` uses ``horovod.run``, whose default arguments hand the ranks
   ``HOROVOD_CYCLE_TIME=(None,)`` (horovod 0.28.1: a stray comma in ``_HorovodArgs``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time

import numpy as np

N_NUMERIC, TEXT, IMAGE = 130, 384, 1000
SLOTS = N_NUMERIC + 3 + TEXT + IMAGE
SHUFFLE_ROWS = 4096  # fusion.shuffle_rows


def layout():
    from smp_spark.models.fusion_net import FusionLayout

    text = list(range(N_NUMERIC + 3, N_NUMERIC + 3 + TEXT))
    return FusionLayout(
        slot_names=[f"n{i}" for i in range(N_NUMERIC)] + ["category_idx", "subcategory_idx", "concept_idx"],
        numeric=list(range(N_NUMERIC)),
        mean=[0.0] * N_NUMERIC,
        std=[1.0] * N_NUMERIC,
        indicators=list(range(0, N_NUMERIC, 3)),
        categories={
            "category_idx": [N_NUMERIC, 12],
            "subcategory_idx": [N_NUMERIC + 1, 78],
            "concept_idx": [N_NUMERIC + 2, 700],
        },
        vectors={"text_embedding": text, "image_embedding": list(range(text[-1] + 1, SLOTS))},
        label_mean=6.0,
    )  # fmt: skip


def random_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SLOTS)).astype(np.float32)
    for offset, vocabulary in enumerate((12, 78, 700)):
        x[:, N_NUMERIC + offset] = rng.integers(0, vocabulary - 1, n)
    return x, rng.normal(6.0, 2.0, n).astype(np.float32)


def write_dataset(folder: str, n: int, files: int = 2) -> None:
    """``files`` Parquet files (Spark's converter writes one per process) of ``features``
    (list<float>, as Petastorm's Spark converter writes it) and ``label``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, y = random_rows(n)
    for part, rows in enumerate(np.array_split(np.arange(n), files)):
        offsets = pa.array(np.arange(len(rows) + 1, dtype=np.int32) * SLOTS)
        features = pa.ListArray.from_arrays(offsets, pa.array(x[rows].ravel()))
        table = pa.table({"features": features, "label": pa.array(y[rows])})
        pq.write_table(table, os.path.join(folder, f"part-{part}.parquet"), row_group_size=4096)


def single_core(data: str, rows: int, batches: list[int]) -> None:
    import torch
    from petastorm import make_batch_reader
    from petastorm.pytorch import BatchedDataLoader
    from torch import nn

    from smp_spark.models.fusion_net import FusionNet

    torch.set_num_threads(1)
    x, y = (torch.from_numpy(a) for a in random_rows(min(rows, 32768), seed=1))
    print("| one process, one thread | rows/s (CPU) |\n|---|---|")
    for batch in batches:
        torch.manual_seed(0)
        model = FusionNet(layout()).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        started = time.process_time()
        for i in range(0, len(x), batch):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x[i : i + batch]), y[i : i + batch]).backward()
            optimizer.step()
        print(f"| training step, batch {batch} (data in memory) | {len(x) / (time.process_time() - started):,.0f} |")
    with torch.no_grad():
        model.eval()
        started = time.process_time()
        for i in range(0, len(x), 2048):
            model(x[i : i + 2048])
        print(f"| evaluation, batch 2048 | {len(x) / (time.process_time() - started):,.0f} |")
    for batch in batches:
        started, seen = time.process_time(), 0
        with make_batch_reader(f"file://{data}", num_epochs=1, reader_pool_type="dummy") as reader:
            for b in BatchedDataLoader(reader, batch_size=batch, shuffling_queue_capacity=SHUFFLE_ROWS):
                seen += len(b["label"])
        print(f"| Petastorm read alone, batch {batch} | {seen / (time.process_time() - started):,.0f} |")


def one_epoch(global_batch: int, data: str) -> dict:
    """One training epoch as ``fusion._train_worker`` runs it, on this Horovod rank."""
    import horovod.torch as hvd
    import torch
    from petastorm import make_batch_reader
    from petastorm.pytorch import BatchedDataLoader
    from torch import nn

    from smp_spark.models.fusion_net import FusionNet

    hvd.init()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = FusionNet(layout()).train()
    optimizer = hvd.DistributedOptimizer(
        torch.optim.Adam(model.parameters(), lr=1e-3), named_parameters=model.named_parameters()
    )
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    batch = global_batch // hvd.size()
    started, cpu, seen, steps = time.time(), time.process_time(), 0, 0
    with make_batch_reader(
        f"file://{data}", num_epochs=1, reader_pool_type="dummy", cur_shard=hvd.rank(), shard_count=hvd.size()
    ) as reader:
        for b in BatchedDataLoader(reader, batch_size=batch, shuffling_queue_capacity=SHUFFLE_ROWS):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(b["features"]), b["label"]).backward()
            optimizer.step()
            seen, steps = seen + len(b["label"]), steps + 1
    cycle = os.environ.get("HOROVOD_CYCLE_TIME", "unset")
    return dict(seconds=time.time() - started, cpu=time.process_time() - cpu, rows=seen, steps=steps, cycle=cycle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=131072)
    parser.add_argument("--batches", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--launchers", nargs="+", default=["spark"], choices=["spark", "run"])
    parser.add_argument("--cycle-times", nargs="+", default=["unset"], help="HOROVOD_CYCLE_TIME values (ms) to compare")
    args = parser.parse_args()
    import horovod
    import horovod.spark
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the tasks run this interpreter
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    with tempfile.TemporaryDirectory() as tmp:
        launch = {
            "spark": lambda batch, n, env: horovod.spark.run(
                one_epoch, args=(batch, tmp), num_proc=n, use_gloo=True, verbose=0, env=env
            ),  # env: added to each task's environment, as train_fusion passes it
            "run": lambda batch, n, env: horovod.run(one_epoch, args=(batch, tmp), np=n, use_gloo=True),
        }
        write_dataset(tmp, args.rows)
        print(f"{args.rows:,} rows of {SLOTS} slots; {platform.machine()}, {os.cpu_count()} cores\n")
        single_core(tmp, args.rows, args.batches)
        print(
            "\n| launcher | global batch | processes | epoch seconds | rows/s | steps per rank "
            "| CPU seconds per rank | HOROVOD_CYCLE_TIME seen | speed-up |\n|---|---|---|---|---|---|---|---|---|"
        )
        for launcher, cycle, batch in itertools.product(args.launchers, args.cycle_times, args.batches):
            env = {} if cycle == "unset" else {"HOROVOD_CYCLE_TIME": cycle}
            seconds = {}
            for processes in (1, 2):
                ranks = launch[launcher](batch, processes, env)
                seconds[processes] = max(r["seconds"] for r in ranks)
                rows = sum(r["rows"] for r in ranks)
                ratio = f"{seconds[1] / seconds[2]:.2f}x" if processes == 2 else ""
                print(
                    f"| {launcher} | {batch} | {processes} | {seconds[processes]:.1f} "
                    f"| {rows / seconds[processes]:,.0f} | {ranks[0]['steps']} "
                    f"| {max(r['cpu'] for r in ranks):.1f} | {ranks[0]['cycle']} | {ratio} |",
                    flush=True,
                )
    spark.stop()


if __name__ == "__main__":
    main()
