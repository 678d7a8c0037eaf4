"""spark-submit entry point: score a folder of new posts (SMPD test-release format, no labels).

Writes <lake>/gold/predictions and an SMP-style submission JSON. With generated data, the hidden
test labels beside the folder give the batch's MAE and SRC.

    spark-submit jobs/score.py [--input /data/smpd/test --scraped /data/scraped/test] [--model xgboost]
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from pyspark.sql import functions as F  # noqa: E402

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.metrics import metrics  # noqa: E402
from smp_spark.models.ensemble import NAME as ENSEMBLE  # noqa: E402
from smp_spark.models.registry import MODELS  # noqa: E402
from smp_spark.score import SCORES, fallback_prediction, score_folder, submission_rows, write_submission  # noqa: E402


def add_args(parser):
    parser.add_argument("--input", help="test-release folder (default: paths.raw_test)")
    parser.add_argument("--scraped", help="its scraped tables (default: paths.scraped_test)")
    parser.add_argument("--model", default="lightgbm", choices=[*MODELS, ENSEMBLE])
    parser.add_argument("--submission", help="submission JSON path (default: <reports>/submission_<model>.json)")


def main(config, args, spark):
    folder = args.input or config.path("raw_test")
    predictions, version = score_folder(spark, config, folder, args.scraped or config.path("scraped_test"), args.model)
    path = args.submission or os.path.join(config.path("reports"), f"submission_{args.model}.json")
    fallback = fallback_prediction(spark, config, version)
    counts = write_submission(submission_rows(spark, config, folder, predictions, fallback), path)
    print(f"{counts['model']} posts scored by {args.model} (gold v{version}) -> {config.table(SCORES)}")
    print(
        f"submission {path}: {counts['model'] + counts['fallback']} posts in the release's record order; "
        f"{counts['fallback']} quarantined posts got the fallback prediction {fallback:.4f} (training median)"
        + (f"; {counts['no Pid']} records with no readable Pid could not be listed" if counts["no Pid"] else "")
    )
    hidden = os.path.join(os.path.dirname(folder.rstrip("/")), "test_labels_hidden.csv")
    if os.path.exists(hidden):
        labels = (
            spark.read.option("header", "true")
            .csv(hidden)
            .select(F.col("Pid").cast("long"), F.col("label").cast("double"))
        )
        scored = predictions.join(labels, "Pid").withColumn("split", F.lit("scored batch"))
        row = metrics(scored)[0]
        print(
            f"against {hidden}: MAE {row['mae']:.4f}, RMSE {row['rmse']:.4f}, SRC {row['src']:.4f} on {row['n']} posts"
        )


if __name__ == "__main__":
    run_job("score", main, add_args=add_args)
