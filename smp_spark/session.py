"""The one SparkSession factory.

Reuses the active session (spark-submit, Databricks, notebooks, pytest) and otherwise builds one
from ``config.spark``: master, Maven packages (Delta Lake, SynapseML LightGBM) resolved by Spark's
own Ivy resolver and cached in ``~/.ivy2``, and every ``spark.*`` setting.
"""

from __future__ import annotations

import os
import sys

from pyspark import SparkConf
from pyspark.sql import SparkSession

from smp_spark.config import PROJECT_ROOT, Config


def get_spark(config: Config) -> SparkSession:
    """The active session if there is one, else a new one configured from ``config.spark``.

    Under ``spark-submit`` the master and packages come from the command line and win over config.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Python workers must run this interpreter (the project's venv), not whatever python3 is first on
    # PATH: a venv used without `activate` would otherwise give workers without pandas or horovod
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    submitted = SparkConf()  # holds spark-submit's settings when launched by spark-submit
    builder = SparkSession.builder.appName(config.spark.app_name)
    if not submitted.contains("spark.master"):
        builder = builder.master(config.spark.master)
    packages = list(config.spark.packages)
    if submitted.contains("spark.jars.packages"):
        packages = [submitted.get("spark.jars.packages")]
    if packages:
        builder = builder.config("spark.jars.packages", ",".join(packages))
    for key, value in config.spark.conf.items():
        if key == "spark.local.dir" and not os.path.isabs(value):
            value = str(PROJECT_ROOT / value)
            os.makedirs(value, exist_ok=True)
        if not submitted.contains(key):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def slot_count(spark: SparkSession) -> int:
    """Task slots Spark can run at once: the parallelism barrier-mode trainers must not exceed."""
    return int(spark.sparkContext.defaultParallelism)
