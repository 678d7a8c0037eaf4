"""spark-submit entry point: train the fusion net with Horovod on Spark on the latest gold version.

One Horovod process per task slot (at most train.num_workers) reads its shard of the Petastorm
train / valid datasets. Writes the model under paths.models, its predictions to
gold/model_predictions and an MLflow run.

    spark-submit jobs/train_fusion.py [--conf conf/cluster.yaml] [--set fusion.epochs=30]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.models.run import training_job  # noqa: E402

if __name__ == "__main__":
    training_job("fusion")
