"""spark-submit entry point: train xgboost.spark SparkXGBRegressor (distributed) on the latest gold version.

Writes the model under paths.models, its predictions to gold/model_predictions and an MLflow run.

    spark-submit jobs/train_xgboost.py [--conf conf/cluster.yaml] [--set train.num_rounds=2000]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.models.run import training_job  # noqa: E402

if __name__ == "__main__":
    training_job("xgboost")
