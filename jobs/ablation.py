"""spark-submit entry point: the modality ablation (tabular / + text / + image / all three) of
LightGBM and the fusion net on the latest gold version (or --gold-version), into gold/ablation.

    spark-submit jobs/ablation.py [--conf conf/cluster.yaml] [--set ...] [--model lightgbm]
    make ablation ARGS="--model lightgbm"      # one model's runs only (the fusion net's take longest)
    make ablation ARGS="--resume"              # skip the trainings gold/ablation already has
    make ablation ARGS="--gold-version 0"      # the gold version the main models trained on
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.ablation import MODELS, run_ablation  # noqa: E402
from smp_spark.cli import run_job  # noqa: E402
from smp_spark.console import format_table  # noqa: E402


def add_args(parser):
    parser.add_argument("--model", nargs="+", default=list(MODELS), choices=MODELS, help="the models to ablate")
    parser.add_argument(
        "--resume", action="store_true", help="skip the (model, inputs) trainings gold/ablation has for this version"
    )
    parser.add_argument("--gold-version", type=int, help="the gold version to train on (default: the latest)")


def main(config, args, spark):
    rows = run_ablation(
        spark,
        config,
        tuple(args.model),
        progress=lambda line: print(line, flush=True),
        resume=args.resume,
        gold_version=args.gold_version,
    )
    print(
        format_table(
            ["model", "inputs", "split", "MAE", "SRC"],
            [(r["model"], r["modalities"], r["split"], f"{r['mae']:.4f}", f"{r['src']:.4f}") for r in rows],
        )
    )


if __name__ == "__main__":
    run_job("ablation", main, add_args=add_args)
