"""The notebooks in notebooks/, in order, on 1,000 generated posts in a temporary lake: the first as a
user runs it locally (a plain ``python`` script in its own process, its own Spark application), the
other two as Databricks runs notebooks attached to one cluster: in a process whose Spark session is
already active (the suite's), which ``start_notebook`` takes instead of building its own."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import runpy
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from smp_spark.lake import read_table
from smp_spark.notebook import parse_overrides

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ORDER = ["01_explore.py", "02_features.py", "03_train_models.py"]
POSTS = 1000


def test_notebooks_are_databricks_source():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.py")) == ORDER
    for name in ORDER:
        text = (NOTEBOOKS / name).read_text()
        header, body = text.split("\n", 1)
        assert header == "# Databricks notebook source"
        cells = body.split("\n\n# COMMAND ----------\n\n")
        assert len(cells) > 3, name
        for cell in cells:
            magic = [line for line in cell.splitlines() if line.startswith("# MAGIC")]
            # a cell is either all Markdown (every line "# MAGIC ...", the first "%md") or all Python
            if magic:
                assert magic[0] == "# MAGIC %md" and len(magic) == len(cell.strip().splitlines()), (name, cell)


def test_set_parameter_reads_like_the_command_line():
    assert parse_overrides("--set paths.lake=/tmp/a  --set 'paths.raw=/tmp/b c' train.num_rounds=5") == [
        "paths.lake=/tmp/a",
        "paths.raw=/tmp/b c",
        "train.num_rounds=5",
    ]
    assert parse_overrides("") == []


def _run(notebook: str, env: dict, cwd: Path) -> str:
    started = time.time()
    done = subprocess.run(
        [sys.executable, str(NOTEBOOKS / notebook)], env=env, cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{notebook} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    print(f"{notebook}: {time.time() - started:.0f}s")
    return done.stdout


def _run_attached(notebook: str, env: dict, cwd: Path) -> str:
    """``notebook`` run in this process, on its active Spark session (as on a Databricks cluster)."""
    started, saved_env, saved_cwd, saved_path = time.time(), dict(os.environ), os.getcwd(), list(sys.path)
    out = io.StringIO()
    try:
        os.environ.update({k: v for k, v in env.items() if k.startswith(("SMP_", "MPL"))})
        os.chdir(cwd)
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(NOTEBOOKS / notebook), run_name="__main__")
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
    print(f"{notebook}: {time.time() - started:.0f}s")
    return out.getvalue()


@pytest.fixture(scope="module")
def notebook_run(spark, tmp_path_factory):
    """Generate a dataset, then run the three notebooks in order against a temporary lake."""
    from smp_spark.config import load_config
    from smp_spark.generate import generate_dataset

    root = tmp_path_factory.mktemp("notebooks")
    paths = {
        "raw": root / "smpd" / "train",
        "raw_test": root / "smpd" / "test",
        "scraped": root / "scraped" / "train",
        "scraped_test": root / "scraped" / "test",
        "lake": root / "lake",
        "reports": root / "reports",
        "models": root / "models",
    }
    cfg = load_config("test")
    generate_dataset(
        *(str(paths[k]) for k in ("raw", "raw_test", "scraped", "scraped_test")),
        POSTS,
        cfg.data.seed,
        cfg.data.test_fraction,
        cfg.data.description_dims,
    )
    overrides = [f"paths.{k}={v}" for k, v in paths.items()] + [f"train.tracking_uri=file:{root / 'mlruns'}"]
    env = {
        **os.environ,
        "SMP_CONF": "test",
        "SMP_SET": " ".join(f"--set {shlex.quote(o)}" for o in overrides),
        "SMP_INGEST": "true",
        "MPLBACKEND": "Agg",
    }
    work = root / "cwd"  # the scripts' working folder: nothing lands in the checkout
    work.mkdir()
    outputs = {ORDER[0]: _run(ORDER[0], env, work)}
    outputs.update({name: _run_attached(name, env, work) for name in ORDER[1:]})
    return paths, root, outputs


def test_explore_ingests_and_plots(spark, notebook_run):
    paths, _, outputs = notebook_run
    posts = read_table(spark, str(paths["lake"] / "bronze" / "posts"))
    assert posts.count() == POSTS == posts.select("Pid").distinct().count()
    for figure in ("label_distribution", "posts_over_time"):
        assert (paths["reports"] / "notebooks" / f"{figure}.png").stat().st_size > 10_000
    assert "bronze/scrape_status" in outputs["01_explore.py"] and "quarantined from" in outputs["01_explore.py"]


def test_features_writes_gold_and_manifest(spark, notebook_run):
    paths, _, outputs = notebook_run
    gold = read_table(spark, str(paths["lake"] / "gold" / "features"))
    ranges = {
        r["split"]: (r["first"], r["last"], r["posts"])
        for r in gold.groupBy("split")
        .agg(F.min("Postdate").alias("first"), F.max("Postdate").alias("last"), F.count(F.lit(1)).alias("posts"))
        .collect()
    }
    assert set(ranges) == {"train", "valid", "test"} and sum(p for _, _, p in ranges.values()) == POSTS
    # consecutive, non-overlapping time ranges
    assert ranges["train"][1] < ranges["valid"][0] <= ranges["valid"][1] < ranges["test"][0]
    manifest = read_table(spark, str(paths["lake"] / "gold" / "feature_manifest"))
    names = [r["name"] for r in manifest.select("name").collect()]
    assert len(names) > 40 and set(names) <= set(gold.columns)
    assert (paths["reports"] / "notebooks" / "feature_distributions.png").stat().st_size > 10_000
    assert "version 0 (chronological split" in outputs["02_features.py"]


def test_train_models_records_both_trees_and_compares_them(spark, notebook_run):
    paths, root, outputs = notebook_run
    predictions = read_table(spark, str(paths["lake"] / "gold" / "model_predictions"))
    per_model = {
        r["model"]: r["posts"]
        for r in predictions.groupBy("model").agg(F.countDistinct("Pid").alias("posts")).collect()
    }
    assert per_model == {"lightgbm": POSTS, "xgboost": POSTS}
    metrics = json.loads((paths["reports"] / "gold_v0" / "metrics.json").read_text())
    valid = {r["model"]: r for r in metrics if r["split"] == "valid"}
    assert {"lightgbm", "xgboost", "median baseline"} <= set(valid)
    for model in ("lightgbm", "xgboost"):
        assert math.isfinite(valid[model]["mae"]) and valid[model]["mae"] < valid["median baseline"]["mae"]
        assert (paths["models"] / model / "gold_v0").is_dir()
    assert (paths["reports"] / "gold_v0" / "models.png").is_file()
    assert any((root / "mlruns").rglob("meta.yaml"))  # the runs went to the configured tracking store
    assert "| lightgbm |" in outputs["03_train_models.py"]
