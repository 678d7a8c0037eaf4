"""Single-node LightGBM on the same gold table, to measure SynapseML's distributed run against.

Exports the tree inputs of the gold Delta table (latest version; the same slots as ``model_input``:
scalars, then the TF-IDF/PCA vectors, stored as array<float>) to Parquet with a local Spark session
(the same reader as the distributed job), loads them into numpy, trains ``lightgbm.train`` with the same
settings (L2, learning rate, leaves, depth, early stopping on the valid split by MAE, categorical
features declared) on all cores, and prints load/train time and valid/test MAE and SRC as JSON.

    .venv/bin/python benchmarks/measure.py --label "lightgbm single node 680K" -- \\
        .venv/bin/python benchmarks/lightgbm_single_node.py --lake lake
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.stats

from smp_spark.config import load_config
from smp_spark.features.manifest import CATEGORICAL, VECTOR
from smp_spark.models.dataset import model_specs


def matrix(frame, scalars: list[str], vectors: list[str]) -> np.ndarray:
    """Scalars, then each vector's slots; a null vector (a post without that input, e.g. no
    image) becomes NaN slots, as the distributed trainers assemble it."""
    parts = [frame[scalars].to_numpy(dtype=float)]
    for v in vectors:
        width = max((len(x) for x in frame[v] if x is not None), default=0)
        parts.append(np.stack([np.full(width, np.nan) if x is None else np.asarray(x, float) for x in frame[v]]))
    return np.hstack(parts)


def export_tree_inputs(table: str, conf: str | None) -> tuple[pd.DataFrame, list]:
    """The trees' columns of the gold table (no embeddings), vectors as arrays, as pandas."""
    from pyspark.sql import functions as F

    from smp_spark.session import get_spark

    spark = get_spark(load_config(conf))
    gold = spark.read.format("delta").load(table)
    specs = model_specs(gold.columns, load_config(conf))
    columns = [F.col(s.name) for s in specs]  # gold vectors are array<float> already
    with tempfile.TemporaryDirectory() as scratch:
        gold.select(*columns, "split", "label").write.parquet(os.path.join(scratch, "inputs"))
        spark.stop()
        return pd.read_parquet(os.path.join(scratch, "inputs")), specs


@dataclass
class TreeInputs:
    """The gold table's tree inputs as numpy: the matrix, the split and label of each row, the
    scalar slot names, the manifest specs, the training settings and the load time."""

    x: np.ndarray
    split: np.ndarray
    y: np.ndarray
    scalars: list[str]
    specs: list
    train: object
    load_seconds: float


def load_inputs() -> TreeInputs:
    """``--lake`` / ``--conf`` from the command line -> the gold table's tree inputs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", default="lake")
    parser.add_argument("--conf", default=None)
    args = parser.parse_args()
    frame, specs = export_tree_inputs(os.path.join(args.lake, "gold", "features"), args.conf)
    scalars = [s.name for s in specs if s.kind != VECTOR]
    vectors = [s.name for s in specs if s.kind == VECTOR]
    started = time.time()
    x = matrix(frame, scalars, vectors)
    split, y = frame["split"].to_numpy(), frame["label"].to_numpy()
    return TreeInputs(x, split, y, scalars, specs, load_config(args.conf).train, time.time() - started)


def scores(inputs: TreeInputs, predict) -> dict[str, float]:
    """Valid and test MAE and SRC of ``predict`` (rows -> predictions)."""
    result = {}
    for name in ("valid", "test"):
        pred = predict(inputs.x[inputs.split == name])
        truth = inputs.y[inputs.split == name]
        result[f"{name}_mae"] = round(float(np.abs(pred - truth).mean()), 4)
        result[f"{name}_src"] = round(float(scipy.stats.spearmanr(truth, pred).statistic), 4)
    return result


def main() -> None:
    inputs = load_inputs()
    t, x, split, y = inputs.train, inputs.x, inputs.split, inputs.y
    started = time.time()
    categorical = [inputs.scalars.index(s.name) for s in inputs.specs if s.kind == CATEGORICAL]
    params = dict(
        objective="regression",
        metric="l1",
        learning_rate=t.learning_rate,
        num_leaves=t.num_leaves,
        max_depth=t.max_depth,
        seed=t.seed,
        deterministic=True,
        force_col_wise=True,
        verbosity=-1,
        num_threads=os.cpu_count(),
    )
    train = lgb.Dataset(x[split == "train"], y[split == "train"], categorical_feature=categorical)
    valid = lgb.Dataset(x[split == "valid"], y[split == "valid"], reference=train)
    loaded = inputs.load_seconds + time.time() - started
    started = time.time()
    booster = lgb.train(
        params,
        train,
        t.num_rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(t.early_stopping_rounds, verbose=False)],
    )
    result = {
        "load_seconds": round(loaded, 1),
        "train_seconds": round(time.time() - started, 1),
        "best_iteration": booster.best_iteration,
    }
    result.update(scores(inputs, lambda rows: booster.predict(rows, num_iteration=booster.best_iteration)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
