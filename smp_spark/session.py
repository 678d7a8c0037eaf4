"""The one SparkSession factory.

Reuses the active session (spark-submit, Databricks, notebooks, pytest) and otherwise builds one
from ``config.spark``: master, Maven packages (Delta Lake, SynapseML LightGBM) resolved by Spark's
own Ivy resolver and cached in ``~/.ivy2``, and every ``spark.*`` setting.
"""

from __future__ import annotations

import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from pyspark import SparkConf, SparkContext, inheritable_thread_target
from pyspark.sql import SparkSession

from smp_spark.config import PROJECT_ROOT, Config
from smp_spark.errors import SmpError


def submitted_conf() -> SparkConf:
    """spark-submit's settings when launched by spark-submit; otherwise the JVM's ``spark.*``
    system properties, if a JVM is running (none before the first session)."""
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # launched by spark-submit: its JVM is already running with the command line's settings;
        # connect first, or SparkConf() is empty and the config would override them
        SparkContext._ensure_initialized()
    return SparkConf()


def get_spark(config: Config, job_conf: dict[str, str] | None = None) -> SparkSession:
    """The active session if there is one, else a new one configured from ``config.spark`` and
    ``job_conf`` (settings one job's session needs, e.g. a trainer's ``spark.task.cpus``).

    Under ``spark-submit`` the master, packages and ``--conf`` values come from the command line and
    win over both.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Python workers must run this interpreter (the project's venv), not whatever python3 is first on
    # PATH: a venv used without `activate` would otherwise give workers without pandas or horovod
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    submitted = submitted_conf()
    builder = SparkSession.builder.appName(config.spark.app_name)
    if not submitted.contains("spark.master"):
        builder = builder.master(config.spark.master)
    packages = list(config.spark.packages)
    if submitted.contains("spark.jars.packages"):
        packages = [submitted.get("spark.jars.packages")]
    if packages:
        builder = builder.config("spark.jars.packages", ",".join(packages))
    for key, value in {**config.spark.conf, **(job_conf or {})}.items():
        if not submitted.contains(key):
            builder = builder.config(key, resolve_setting(key, value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


K = TypeVar("K")
V = TypeVar("V")
MAX_CONCURRENT_JOBS = 8


def concurrently(spark: SparkSession, work: dict[K, Callable[[], V]]) -> dict[K, V]:
    """Run independent pieces of driver work (each submitting its own Spark jobs) from threads at
    once, and return their results under the same keys.

    For steps whose jobs are too narrow to fill the cores alone: a multiLine JSON file is one task,
    a small table's Delta write a few. Up to ``defaultParallelism`` pieces (at least 2, at most
    8) run together; each thread inherits the caller's Spark local properties. Every piece runs to
    its end; the first failure in ``work``'s order is then raised, as a loop would have raised it.
    """
    if len(work) <= 1:
        return {key: run() for key, run in work.items()}
    workers = min(len(work), MAX_CONCURRENT_JOBS, max(2, spark.sparkContext.defaultParallelism))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smp-jobs") as pool:
        futures = {key: pool.submit(inheritable_thread_target(run)) for key, run in work.items()}
    for future in futures.values():  # the pool has joined: every piece has ended
        if future.exception() is not None:
            raise future.exception()
    return {key: future.result() for key, future in futures.items()}


BROADCAST_THRESHOLD = "spark.sql.autoBroadcastJoinThreshold"


@contextmanager
def no_broadcast_joins(spark: SparkSession) -> Iterator[None]:
    """The queries planned inside the block (Delta's MERGE included) shuffle both sides of a
    join instead of sending one whole to every task.

    For joins of a side whose size Spark cannot know: the plan of a ``mapInPandas`` output counts
    an array column as 4 bytes a row, and a local checkpoint keeps that estimate. So 680,000
    encoded images (1,000 floats each, 2.7 GB) looked small enough to broadcast, and the job failed
    collecting them on the driver (over ``spark.driver.maxResultSize``). The session's setting is
    restored after the block."""
    before = spark.conf.get(BROADCAST_THRESHOLD)
    spark.conf.set(BROADCAST_THRESHOLD, "-1")
    try:
        yield
    finally:
        spark.conf.set(BROADCAST_THRESHOLD, before)


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


def executor_cores(spark: SparkSession) -> int:
    """Cores of one executor (the barrier trainers' slots spread over the registered executors,
    times ``spark.task.cpus``): what a trainer that runs one native process per executor, as
    SynapseML LightGBM's single-dataset mode does, can use for its threads."""
    slots = slot_count(spark)
    executors = 1
    if not spark.sparkContext.master.startswith("local"):
        executors = max(1, int(spark.sparkContext._jsc.sc().getExecutorIds().size()))
    return max(1, slots // executors) * int(spark.conf.get("spark.task.cpus", "1"))


def planned_executor_cores(config: Config) -> int | None:
    """Cores each executor of the session ``get_spark(config)`` would start will have, known before
    it starts: ``local[N]`` -> N, ``local[*]`` -> the machine's cores, a cluster master -> its
    ``spark.executor.cores`` (submitted or configured); None when the cluster does not say."""
    submitted = submitted_conf() if "PYSPARK_GATEWAY_PORT" in os.environ else SparkConf(loadDefaults=False)
    master = submitted.get("spark.master", None) or config.spark.master
    local = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if local:
        count = local.group(1) or "1"
        return (os.cpu_count() or 1) if count == "*" else int(count)
    cores = submitted.get("spark.executor.cores", None) or config.spark.conf.get("spark.executor.cores")
    return int(cores) if cores else None
