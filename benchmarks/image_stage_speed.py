"""The image stage end to end (``jobs/embed_images.py``'s work) at several resolutions and
precisions, side by side.

    .venv/bin/python benchmarks/image_stage_speed.py [--posts 20000] [--resolutions 128 224]
        [--precisions float32 bfloat16] [--rounds 1]

Generates ``--posts`` posts with local images (seed 11) in a scratch folder and ingests them once
with the ``local`` profile (every core of this machine). Then, in the same Spark session and in
turn, for each round, resolution and precision: a copy of that bronze lake, and the image stage run on it from an empty
cache (``embed_bronze_images``: read ``bronze/images``, decode, statistics, crop, EfficientNet-Lite0
on every core, write ``gold/image_embeddings``). Images/s = distinct images encoded / stage wall
time: the end-to-end rate a user sees, Delta reads and writes included. The machine may be
shared: run it alone (``flock /tmp/spark.lock``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smp_spark.config import load_config  # noqa: E402
from smp_spark.features.image_embeddings import embed_bronze_images  # noqa: E402
from smp_spark.generate import generate_dataset  # noqa: E402
from smp_spark.ingest import ingest_release  # noqa: E402
from smp_spark.session import get_spark, slot_count  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--precisions", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole set, interleaved")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="image_stage_"))
    folders = {k: root / k for k in ("raw", "raw_test", "scraped", "scraped_test", "reports", "models")}
    base = load_config("local", [f"paths.{k}={v}" for k, v in folders.items()] + [f"paths.lake={root / 'bronze'}"])
    try:
        started = time.time()
        generate_dataset(
            *(str(folders[k]) for k in ("raw", "raw_test", "scraped", "scraped_test")),
            args.posts, 11, base.data.test_fraction, base.data.description_dims,
        )  # fmt: skip
        print(f"generated {args.posts} posts in {time.time() - started:.1f}s", flush=True)
        spark = get_spark(base)
        started = time.time()
        ingest_release(spark, base, base.path("raw"), base.path("scraped"))
        print(f"ingested in {time.time() - started:.1f}s on {slot_count(spark)} slots", flush=True)

        rows = []
        runs = [(r, res, p) for r in range(1, args.rounds + 1) for res in args.resolutions for p in args.precisions]
        for round_, resolution, precision in runs:
            lake = root / f"lake_{resolution}_{precision}"
            shutil.copytree(root / "bronze", lake)
            config = load_config(
                "local",
                [f"paths.{k}={v}" for k, v in folders.items()]
                + [f"paths.lake={lake}", f"features.image_resolution={resolution}"]
                + [f"features.image_precision={precision}"],
            )
            started = time.time()
            done = embed_bronze_images(spark, config)
            seconds = time.time() - started
            rows.append((round_, resolution, precision, done["encoded"], seconds, done["encoded"] / seconds))
            print(f"round {round_}, {resolution} px {precision}: {done['encoded']} images, {seconds:.1f}s", flush=True)
            shutil.rmtree(lake)

        print(f"\n{platform.machine()}, {os.cpu_count()} cores, {slot_count(spark)} Spark slots, {args.posts} posts")
        print("| round | resolution | precision | images encoded | stage seconds | images/s end to end |")
        print("|---|---|---|---|---|---|")
        for round_, resolution, precision, encoded, seconds, rate in rows:
            print(f"| {round_} | {resolution} | {precision} | {encoded:,} | {seconds:.1f} | {rate:.0f} |")
        spark.stop()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
