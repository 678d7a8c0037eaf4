# Databricks notebook source
# MAGIC %md
# MAGIC # 3. Train and compare models
# MAGIC
# MAGIC Trains on the latest `gold/features` version through the library (the same calls as
# MAGIC `jobs/train_<model>.py`): SynapseML LightGBM (barrier mode, one task per slot) and
# MAGIC xgboost.spark, with early stopping on the valid split. Each run saves its models, logs an
# MAGIC MLflow run and writes its predictions to `gold/model_predictions`; then every recorded model
# MAGIC is evaluated beside the median baseline (and the generator's oracle on generated data).
# MAGIC
# MAGIC **Parameters**: `conf` / `SMP_CONF` and `set` / `SMP_SET` as in notebook 1, and
# MAGIC `models` / `SMP_MODELS` (default `lightgbm,xgboost`). `catboost` (single node: it collects
# MAGIC the training rows to the driver) and `fusion` (the Horovod net) can be added; they are off by
# MAGIC default to keep a first run short.

# COMMAND ----------

import sys
from pathlib import Path

# the checkout's root, so the library imports without an install (a Databricks Git folder adds it too)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent))

from smp_spark.notebook import start_notebook

nb = start_notebook(globals())
config, spark = nb.config, nb.spark

# COMMAND ----------

import os

from smp_spark.evaluate import evaluate_all
from smp_spark.models.registry import MODELS
from smp_spark.models.run import train_and_record
from smp_spark.report import metrics_markdown
from smp_spark.tracking import tracking_uri

models = nb.choices("models", "lightgbm,xgboost", list(MODELS))
print(f"training {', '.join(models)}; MLflow runs in {tracking_uri(config)}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Train
# MAGIC One model at a time: the distributed trainers use every task slot.

# COMMAND ----------

for name in models:
    trained, scores = train_and_record(spark, config, name)
    print(f"{name}: best iteration {trained.best_iteration}; native model {trained.native_path}")
    nb.show_records(scores)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Compare
# MAGIC MAE, RMSE and Spearman rank correlation (SRC) per model and split, from
# MAGIC `smp_spark.evaluate`; the report (Markdown page and plots) is written under `paths.reports`.
# MAGIC Judge on **valid** / **test**: train scores only show how much a model fits its own rows.

# COMMAND ----------

rows, page = evaluate_all(spark, config)
print(metrics_markdown(rows))
print(f"report: {page}")
nb.show_image(os.path.join(os.path.dirname(page), "models.png"))
nb.show_image(os.path.join(os.path.dirname(page), "predicted_vs_actual.png"))
