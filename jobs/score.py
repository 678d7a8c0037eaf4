"""spark-submit entry point: score a folder of new posts (SMPD test-release format, no labels).

Writes <lake>/gold/predictions and an SMP-style submission JSON per model. Several models score
one batch in one pass: the folder is ingested and featurised once. With generated data, the
hidden test labels beside the folder give each model's MAE and SRC on the batch.

    spark-submit jobs/score.py [--input /data/smpd/test --scraped /data/scraped/test] [--model xgboost ensemble]
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from pyspark.sql import functions as F  # noqa: E402

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.errors import InputError  # noqa: E402
from smp_spark.metrics import metrics  # noqa: E402
from smp_spark.models.ensemble import NAME as ENSEMBLE  # noqa: E402
from smp_spark.models.registry import MODELS  # noqa: E402
from smp_spark.score import SCORES, fallback_prediction, score_folder, submission_rows, write_submission  # noqa: E402


def add_args(parser):
    parser.add_argument("--input", help="test-release folder (default: paths.raw_test)")
    parser.add_argument("--scraped", help="its scraped tables (default: paths.scraped_test)")
    parser.add_argument("--model", nargs="+", default=["lightgbm"], choices=[*MODELS, ENSEMBLE])
    parser.add_argument(
        "--submission", help="submission JSON path, with one --model (default: <reports>/submission_<model>.json)"
    )


def main(config, args, spark):
    if args.submission and len(args.model) > 1:
        raise InputError(f"--submission names one file, but --model names {len(args.model)} models: leave it out")
    folder = args.input or config.path("raw_test")
    predictions, versions = score_folder(spark, config, folder, args.scraped or config.path("scraped_test"), args.model)
    hidden = os.path.join(os.path.dirname(folder.rstrip("/")), "test_labels_hidden.csv")
    for model, version in versions.items():
        mine = predictions.filter(F.col("model") == model)
        path = args.submission or os.path.join(config.path("reports"), f"submission_{model}.json")
        fallback = fallback_prediction(spark, config, version)
        counts = write_submission(submission_rows(spark, config, folder, mine, fallback), path)
        print(f"{counts['model']} posts scored by {model} (gold v{version}) -> {config.table(SCORES)}")
        print(
            f"submission {path}: {counts['model'] + counts['fallback']} posts in the release's record order; "
            f"{counts['fallback']} quarantined posts got the fallback prediction {fallback:.4f} (training median)"
            + (f"; {counts['no Pid']} records with no readable Pid could not be listed" if counts["no Pid"] else "")
        )
        if os.path.exists(hidden):
            row = metrics(mine.join(hidden_labels(spark, hidden), "Pid").withColumn("split", F.lit("scored batch")))[0]
            print(
                f"{model} against {hidden}: MAE {row['mae']:.4f}, RMSE {row['rmse']:.4f}, SRC {row['src']:.4f} "
                f"on {row['n']} posts"
            )


def hidden_labels(spark, path):
    """``Pid, label`` of the generator's hidden test labels."""
    labels = spark.read.option("header", "true").csv(path)
    return labels.select(F.col("Pid").cast("long"), F.col("label").cast("double"))


if __name__ == "__main__":
    run_job("score", main, add_args=add_args)
