"""The one SparkSession factory.

Reuses the active session (spark-submit, Databricks, notebooks, pytest) and otherwise builds one
from ``config.spark``: master, Maven packages (Delta Lake, SynapseML LightGBM) resolved by Spark's
own Ivy resolver and cached in ``~/.ivy2``, and every ``spark.*`` setting.
"""

from __future__ import annotations

import os
import sys
import time

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from smp_spark.config import PROJECT_ROOT, Config
from smp_spark.errors import SmpError


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
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # launched by spark-submit: its JVM is already running with the command line's settings;
        # connect first, or SparkConf() below is empty and the config would override them
        SparkContext._ensure_initialized()
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
        if not submitted.contains(key):
            builder = builder.config(key, resolve_setting(key, value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def resolve_setting(key: str, value: str) -> str:
    """A ``spark.conf`` value as Spark should get it: a relative ``spark.local.dir`` is made absolute
    under the project root (and created)."""
    if key == "spark.local.dir" and not os.path.isabs(value):
        value = str(PROJECT_ROOT / value)
        os.makedirs(value, exist_ok=True)
    return value


def slot_count(spark: SparkSession, settle_seconds: float = 2.0, max_wait_seconds: float = 60.0) -> int:
    """Task slots Spark can run at once: the parallelism barrier-mode trainers must not exceed.

    Counted as Spark's barrier check counts them (registered executors' cores / ``spark.task.cpus``),
    not ``defaultParallelism`` (a setting, or at least 2). On a cluster, executors register after
    the session starts: wait until there is one and the count has not changed for ``settle_seconds``.
    """
    context = spark.sparkContext._jsc.sc()
    profile = context.resourceProfileManager().defaultResourceProfile()

    def registered() -> int:
        return int(context.maxNumConcurrentTasks(profile))

    slots = registered()
    if spark.sparkContext.master.startswith("local"):
        return slots
    deadline, settled_at = time.time() + max_wait_seconds, time.time()
    while time.time() < deadline and (slots == 0 or time.time() - settled_at < settle_seconds):
        time.sleep(0.5)
        now = registered()
        if now != slots:
            slots, settled_at = now, time.time()
    if slots == 0:
        raise SmpError(
            f"no executor registered with {spark.sparkContext.master} within {max_wait_seconds:.0f}s: "
            "is the cluster up with free cores (scripts/cluster.sh status)?"
        )
    return slots
