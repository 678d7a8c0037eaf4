"""Write a synthetic SMPD training release, test release and scraped tables (see docs/data.md);
with ``data.image_style: local`` (the default) also a JPEG per post under each release folder.

python jobs/generate_data.py [--conf FILE] [--set data.scale=50000 --set paths.raw=/tmp/smpd/train ...]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.generate import generate_dataset  # noqa: E402


def main(cfg, args) -> None:
    started = time.time()
    folders = {
        "train": cfg.path("raw"),
        "test": cfg.path("raw_test"),
        "scraped": cfg.path("scraped"),
        "scraped_test": cfg.path("scraped_test"),
    }
    truth = generate_dataset(
        folders["train"],
        folders["test"],
        folders["scraped"],
        folders["scraped_test"],
        cfg.data.scale,
        cfg.data.seed,
        cfg.data.test_fraction,
        cfg.data.description_dims,
        progress=True,
        image_style=cfg.data.image_style,
        release_share=cfg.data.release_share,
        previous_share=cfg.data.previous_release_share,
    )
    print(f"{'file':<58} {'rows':>10} {'MB':>9}")
    total = 0
    for part, rows_per_file in truth["counts"]["files"].items():
        for name, rows in rows_per_file.items():
            size = os.path.getsize(os.path.join(folders[part], name))
            total += size
            print(f"{part + '/' + name:<58} {rows:>10,} {size / 1e6:>9.1f}")
    images = truth["images"]
    for part in ("train", "test") if images["style"] == "local" else ():
        files, size = images[part]["files"], images[part]["bytes"]
        total += size
        print(f"{part + '/<Uid>/<Pid>.jpg':<58} {files:>10,} {size / 1e6:>9.1f}")
        print("  " + ", ".join(f"{k} {n:,}" for k, n in images[part]["kinds"].items()))
    print(f"{'total':<58} {'':>10} {total / 1e6:>9.1f}")
    oracle = truth["oracle"]["train"]
    print(
        f"oracle on train: MAE {oracle['mae']}, SRC {oracle['src']}; "
        f"median baseline MAE {truth['median_baseline']['train']['mae']}"
    )
    print(f"ground truth: {Path(folders['train']).parent / 'ground_truth.json'}; elapsed {time.time() - started:.1f}s")


if __name__ == "__main__":
    run_job("generate_data", main, needs_spark=False)
