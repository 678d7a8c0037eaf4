"""spark-submit entry point: MAE, RMSE and SRC of every trained model per split, beside the median
baseline and (for generated data) the oracle; writes reports/<gold version>/index.md with plots.

    spark-submit jobs/evaluate.py [--conf conf/cluster.yaml]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.console import format_table  # noqa: E402
from smp_spark.evaluate import evaluate_all  # noqa: E402


def main(config, args, spark):
    rows, page = evaluate_all(spark, config)

    def fmt(value):
        return "–" if value is None else f"{value:.4f}"

    print(
        format_table(
            ["model", "split", "posts", "MAE", "RMSE", "SRC"],
            [(r["model"], r["split"], r["n"], fmt(r["mae"]), fmt(r["rmse"]), fmt(r["src"])) for r in rows],
        )
    )
    print(f"report: {page}")


if __name__ == "__main__":
    run_job("evaluate", main)
