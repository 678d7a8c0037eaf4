"""Where an epoch of the Horovod fusion net goes, and how it scales with processes (issue 13, target 3).

No Spark job: the product's :class:`FusionNet` on a Petastorm dataset of random rows shaped like the
680K gold table's net input (130 numeric slots, three category indices, the 384-d text vector and
the 1000 image class scores), read and trained the way ``fusion._train_worker`` does: each rank's
shard read once into memory (``fusion_data.load_shard``), then an epoch of ``fusion_data.train_steps``
over ``epoch_order`` (Adam under ``hvd.DistributedOptimizer``, one torch thread a process), the
forward pass in float32 or under bfloat16 autocast (``fusion.precision``):

    .venv/bin/python benchmarks/fusion_speed.py [--rows 262144] [--batches 2048] [--precisions float32 bfloat16]

1. one process, one thread, no Horovod: rows/s of the one-time read into memory, of the training
   step at each batch and precision, and of the float32 evaluation: the per-core bounds;
2. one epoch over ``--rows`` through Horovod (Gloo) with 1 process, 2 processes, and 1 process of
   2 torch threads at each global batch and precision: seconds, CPU seconds per rank, and the
   speed-up over 1 process of 1 thread. ``--launchers spark`` (the default) starts the ranks as
   the product does, ``horovod.spark.run`` in the tasks of a ``local[2]`` session, with
   ``HOROVOD_CYCLE_TIME`` from ``--cycle-times`` (default 5 ms, the product's
   ``fusion.cycle_time_ms``); ``run`` uses ``horovod.run``, whose default arguments hand the ranks
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


def parquet_files(data: str) -> tuple[list[str], int]:
    """The dataset's file URLs and its row count, as a Spark converter gives them."""
    import pyarrow.parquet as pq

    paths = [os.path.join(data, f) for f in os.listdir(data)]
    return [f"file://{p}" for p in paths], sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def read_shard(data: str, rank: int = 0, size: int = 1):
    """A rank's shard of the dataset in memory, read by the product's ``fusion_data.load_shard``."""
    from smp_spark.models.fusion_data import load_shard

    return load_shard(*parquet_files(data), rank, size, "benchmark")


def single_core(data: str, rows: int, batches: list[int], precisions: list[str]) -> None:
    import torch

    from smp_spark.models.fusion_data import epoch_order, train_steps
    from smp_spark.models.fusion_net import FusionNet

    torch.set_num_threads(1)
    started = time.process_time()
    shard = read_shard(data)
    print("| one process, one thread | rows/s (CPU) |\n|---|---|")
    print(f"| Petastorm read into memory (once a training) | {len(shard) / (time.process_time() - started):,.0f} |")
    for batch, precision in itertools.product(batches, precisions):
        torch.manual_seed(0)
        model = FusionNet(layout()).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        steps = min(rows, 32768) // batch
        order = epoch_order(len(shard), steps, batch, seed=0)
        started = time.process_time()
        for _ in train_steps(model, optimizer, shard, order, batch, precision == "bfloat16"):
            pass
        print(f"| training step, batch {batch}, {precision} | {len(order) / (time.process_time() - started):,.0f} |")
    with torch.no_grad():
        model.eval()
        x = shard.features[:32768]
        started = time.process_time()
        for part in x.split(2048):
            model(part)
        print(f"| evaluation, batch 2048, float32 | {len(x) / (time.process_time() - started):,.0f} |")


def one_epoch(global_batch: int, data: str, precision: str, threads: int = 1) -> dict:
    """One training epoch as ``fusion._train_worker`` runs it (the shard already in memory), on
    this Horovod rank, with ``threads`` torch threads."""
    import horovod.torch as hvd
    import torch

    from smp_spark.models.fusion_data import epoch_order, train_steps
    from smp_spark.models.fusion_net import FusionNet

    hvd.init()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    shard = read_shard(data, hvd.rank(), hvd.size())
    model = FusionNet(layout()).train()
    optimizer = hvd.DistributedOptimizer(
        torch.optim.Adam(model.parameters(), lr=1e-3), named_parameters=model.named_parameters()
    )
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    batch = global_batch // hvd.size()
    steps = -(-parquet_files(data)[1] // global_batch)
    order = epoch_order(len(shard), steps, batch, seed=0)
    started, cpu, seen = time.time(), time.process_time(), 0
    for _, rows in train_steps(model, optimizer, shard, order, batch, precision == "bfloat16"):
        seen += rows
    cycle = os.environ.get("HOROVOD_CYCLE_TIME", "unset")
    return dict(seconds=time.time() - started, cpu=time.process_time() - cpu, rows=seen, steps=steps, cycle=cycle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=131072)
    parser.add_argument("--batches", type=int, nargs="+", default=[2048])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--launchers", nargs="+", default=["spark"], choices=["spark", "run"])
    parser.add_argument("--cycle-times", nargs="+", default=["5"], help="HOROVOD_CYCLE_TIME values (ms), or unset")
    args = parser.parse_args()
    import horovod
    import horovod.spark
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the tasks run this interpreter
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    with tempfile.TemporaryDirectory() as tmp:
        launch = {
            "spark": lambda batch, precision, n, threads, env: horovod.spark.run(
                one_epoch, args=(batch, tmp, precision, threads), num_proc=n, use_gloo=True, verbose=0, env=env
            ),  # env: added to each task's environment, as train_fusion passes it
            "run": lambda batch, precision, n, threads, env: horovod.run(
                one_epoch, args=(batch, tmp, precision, threads), np=n, use_gloo=True
            ),
        }
        write_dataset(tmp, args.rows)
        print(f"{args.rows:,} rows of {SLOTS} slots; {platform.machine()}, {os.cpu_count()} cores\n")
        single_core(tmp, args.rows, args.batches, args.precisions)
        print(
            "\n| launcher | global batch | precision | processes x threads | epoch seconds | rows/s | steps per rank "
            "| CPU seconds per rank | HOROVOD_CYCLE_TIME seen | speed-up |\n|---|---|---|---|---|---|---|---|---|---|"
        )
        runs = itertools.product(args.launchers, args.cycle_times, args.batches, args.precisions)
        for launcher, cycle, batch, precision in runs:
            env = {} if cycle == "unset" else {"HOROVOD_CYCLE_TIME": cycle}
            seconds = {}
            for processes, threads in ((1, 1), (2, 1), (1, 2)):  # the last: both cores in one process
                ranks = launch[launcher](batch, precision, processes, threads, env)
                took = seconds[processes, threads] = max(r["seconds"] for r in ranks)
                rows = sum(r["rows"] for r in ranks)
                ratio = f"{seconds[1, 1] / took:.2f}x" if (processes, threads) != (1, 1) else ""
                print(
                    f"| {launcher} | {batch} | {precision} | {processes} x {threads} "
                    f"| {took:.1f} | {rows / took:,.0f} | {ranks[0]['steps']} "
                    f"| {max(r['cpu'] for r in ranks):.1f} | {ranks[0]['cycle']} | {ratio} |",
                    flush=True,
                )
    spark.stop()


if __name__ == "__main__":
    main()
