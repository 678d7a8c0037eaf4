"""The pipeline on a real Spark standalone cluster.

``scripts/cluster.sh`` starts a master and two 1-core workers (free ports, state in a temporary
folder, so a user's own cluster is never touched); ingest, features and SynapseML LightGBM run as
two spark-submit applications (ingest and features in one) through ``scripts/submit.sh`` with
``conf/cluster.yaml``, the package shipped through ``--py-files`` and the jars through ``--packages``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import functions as F

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run(command: list[str], env: dict[str, str], timeout: int = 300) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command[:2])} failed ({done.returncode}):\n{output[-4000:]}"
    return output


def _master_status(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running cluster: its master URL, UI port, folder and the environment its script needs."""
    master_port, ui_port, worker_ui_port = _free_ports(3)
    folder = tmp_path_factory.mktemp("cluster")
    env = dict(
        os.environ,
        SMP_CLUSTER_DIR=str(folder),
        SMP_MASTER_PORT=str(master_port),
        SMP_MASTER_UI_PORT=str(ui_port),
        SMP_WORKER_UI_PORT=str(worker_ui_port),
        SMP_WORKERS=str(WORKERS),
    )
    script = ["bash", str(ROOT / "scripts" / "cluster.sh")]
    try:
        _run([*script, "up"], env)
        yield {"master": f"spark://127.0.0.1:{master_port}", "ui_port": ui_port, "folder": folder, "env": env}
    finally:
        subprocess.run([*script, "down"], cwd=ROOT, env=env, capture_output=True, timeout=120)


def test_cluster_script_is_idempotent(cluster):
    script = ["bash", str(ROOT / "scripts" / "cluster.sh")]
    assert "already up" in _run([*script, "up"], cluster["env"])
    assert f"{WORKERS} of {WORKERS} workers alive" in _run([*script, "status"], cluster["env"])


def test_spark_submit_settings_win_over_the_profile(tmp_path):
    """Under spark-submit, get_spark keeps the command line's master and --conf values (the profile,
    conf/test.yaml, says local[2] and 4 shuffle partitions) and counts the slots it really has."""
    script = tmp_path / "show_session.py"
    script.write_text(
        "from smp_spark.config import load_config\n"
        "from smp_spark.session import get_spark, slot_count\n"
        "spark = get_spark(load_config('test'))\n"
        "partitions = spark.conf.get('spark.sql.shuffle.partitions')\n"
        "print('session', spark.sparkContext.master, partitions, slot_count(spark))\n"
    )
    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYSPARK_PYTHON=sys.executable)
    command = [str(spark_submit), "--master", "local[1]", "--conf", "spark.sql.shuffle.partitions=7", str(script)]
    assert "session local[1] 7 1" in _run(command, env)


def test_pipeline_through_spark_submit(cluster, spark, tmp_path):
    """Generate 800 posts, then ingest and features, and LightGBM, as spark-submit applications on
    the cluster; every Delta table (read back by the suite's local session) has the rows the
    generator's ground truth says."""
    lake = tmp_path / "lake"
    overrides = {
        "spark.master": cluster["master"],
        "spark.conf.spark.sql.shuffle.partitions": "2",
        "spark.conf.spark.ui.enabled": "false",
        "spark.conf.spark.sql.codegen.wholeStage": "false",  # as in conf/test.yaml
        "spark.conf.spark.sql.codegen.factoryMode": "NO_CODEGEN",
        # six JVMs share the 2 cores for a minute or two each: C1 alone (no C2 compiles) makes the two
        # applications 1.2x faster side by side (docs/benchmarks.md, session 18); a local ingest in its
        # own process (tests/test_notebooks.py) gained nothing from it, so only here
        "spark.conf.spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
        "spark.conf.spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1",
        "data.scale": "800",
        "data.description_dims": "8",
        "paths.raw": tmp_path / "smpd" / "train",
        "paths.raw_test": tmp_path / "smpd" / "test",
        "paths.scraped": tmp_path / "scraped" / "train",
        "paths.scraped_test": tmp_path / "scraped" / "test",
        "paths.lake": lake,
        "paths.reports": tmp_path / "reports",
        "paths.models": tmp_path / "models",
        # small-data settings, as in conf/test.yaml
        "features.text_embeddings": "false",
        "features.image_embeddings": "false",
        "features.tfidf_vocab": "200",
        "features.tfidf_min_df": "2",
        "features.svd_components": "5",
        "features.encoding_folds": "3",
        "train.learning_rate": "0.1",
        "train.num_rounds": "50",
        "train.early_stopping_rounds": "10",
        "train.num_leaves": "15",
        "train.max_depth": "5",
        "train.listen_port": "12700",
        "train.num_workers": "0",  # every task slot: the two executors' cores
        "train.tracking_uri": f"file:{tmp_path / 'mlruns'}",
    }
    args = ["--conf", str(ROOT / "conf" / "cluster.yaml")]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    env = dict(os.environ)

    _run([sys.executable, str(ROOT / "jobs" / "generate_data.py"), *args], env)
    submit = ["bash", str(ROOT / "scripts" / "submit.sh")]
    # ingest and features in one application (tests/cluster_pipeline.py), LightGBM in its own
    for script in (ROOT / "tests" / "cluster_pipeline.py", ROOT / "jobs" / "train_lightgbm.py"):
        output = _run([*submit, str(script), *args], env, timeout=600)
        assert f"--master {cluster['master']}" in output and "--py-files" in output

    truth = json.loads((tmp_path / "smpd" / "ground_truth.json").read_text())
    counts = truth["counts"]

    def table(name: str):
        return spark.read.format("delta").load(str(lake / name))

    posts = table("bronze/posts")
    assert posts.count() == posts.select("Pid").distinct().count() == counts["train_posts"]
    assert table("bronze/users").count() == counts["train_users"]
    assert table("bronze/groups").count() == counts["groups"]
    # nothing is quarantined but the generator's broken image files, one row each, their posts kept
    bad_images = sum(n for kind, n in truth["images"]["train"]["kinds"].items() if kind != "ok")
    quarantine = table("quarantine/rows")
    assert quarantine.count() == quarantine.filter(F.col("field") == "image").count() == bad_images
    assert table("bronze/images").filter(F.col("status") != "ok").count() == bad_images

    gold = table("gold/features")
    assert gold.count() == gold.join(posts, "Pid").count() == counts["train_posts"]
    assert {r["split"] for r in gold.select("split").distinct().collect()} == {"train", "valid", "test"}

    lightgbm = table("gold/model_predictions").filter(F.col("model") == "lightgbm")
    assert lightgbm.join(posts, "Pid").count() == counts["train_posts"]
    spread = lightgbm.agg(F.count("prediction").alias("n"), F.stddev("prediction").alias("std")).first()
    assert spread["n"] == counts["train_posts"] and spread["std"] > 0

    # LightGBM ran one barrier task per executor core, and each job was a cluster application
    workers_param = next((tmp_path / "mlruns").glob("*/*/params/workers"))
    assert workers_param.read_text().strip() == str(WORKERS)
    apps = _master_status(cluster["ui_port"])["completedapps"]
    print("applications:", ", ".join(f"{app['name']} {app['duration'] / 1000:.0f} s" for app in apps))
    assert len(apps) == 2 and all(app["state"] == "FINISHED" and app["cores"] == WORKERS for app in apps)
    # ... whose executors fetched the package zip (--py-files)
    for app in apps:
        assert list((cluster["folder"] / "work" / app["id"]).glob("*/smp_spark-*.zip")), app["id"]
