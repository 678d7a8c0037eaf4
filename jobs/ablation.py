"""spark-submit entry point: the modality ablation (tabular / + text / + image / all three) of
LightGBM and the fusion net on the latest gold version, into gold/ablation.

    spark-submit jobs/ablation.py [--conf conf/cluster.yaml] [--set ...]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.ablation import run_ablation  # noqa: E402
from smp_spark.cli import run_job  # noqa: E402
from smp_spark.ingest.pipeline import format_table  # noqa: E402


def main(config, args, spark):
    rows = run_ablation(spark, config, progress=lambda line: print(line, flush=True))
    print(
        format_table(
            ["model", "inputs", "split", "MAE", "SRC"],
            [(r["model"], r["modalities"], r["split"], f"{r['mae']:.4f}", f"{r['src']:.4f}") for r in rows],
        )
    )


if __name__ == "__main__":
    run_job("ablation", main)
