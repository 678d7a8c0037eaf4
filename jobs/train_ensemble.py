"""spark-submit entry point: the ensemble, a weighted blend of the trained models fitted on the
valid split only (weights >= 0, summing to one), evaluated with the others.

Needs at least two of lightgbm, xgboost, catboost and fusion trained on the same gold version.
Writes ``<models>/ensemble/gold_v<N>/weights.json``, the blend's rows in gold/model_predictions and
an MLflow run.

    spark-submit jobs/train_ensemble.py [--conf conf/cluster.yaml]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.console import format_table  # noqa: E402
from smp_spark.models.ensemble import train_ensemble  # noqa: E402


def main(config, args, spark):
    weights, scores = train_ensemble(spark, config)
    print(format_table(["member", "weight"], [(m, f"{w:.4f}") for m, w in weights.items()]))
    print(
        format_table(
            ["split", "posts", "MAE", "RMSE", "SRC"],
            [(r["split"], r["n"], f"{r['mae']:.4f}", f"{r['rmse']:.4f}", f"{r['src']:.4f}") for r in scores],
        )
    )


if __name__ == "__main__":
    run_job("train_ensemble", main)
