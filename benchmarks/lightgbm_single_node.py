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

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.stats

from smp_spark.config import load_config
from smp_spark.features.manifest import CATEGORICAL, VECTOR
from smp_spark.models.dataset import model_specs


def matrix(frame, scalars: list[str], vectors: list[str]) -> np.ndarray:
    parts = [frame[scalars].to_numpy(dtype=float)]
    parts += [np.stack(frame[v].map(lambda x: np.asarray(x, float))) for v in vectors]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", default="lake")
    parser.add_argument("--conf", default=None)
    args = parser.parse_args()
    t = load_config(args.conf).train
    frame, specs = export_tree_inputs(os.path.join(args.lake, "gold", "features"), args.conf)
    scalars = [s.name for s in specs if s.kind != VECTOR]
    vectors = [s.name for s in specs if s.kind == VECTOR]
    started = time.time()
    x = matrix(frame, scalars, vectors)
    split, y = frame["split"].to_numpy(), frame["label"].to_numpy()
    categorical = [scalars.index(s.name) for s in specs if s.kind == CATEGORICAL]
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
    loaded = time.time() - started
    booster = lgb.train(
        params,
        train,
        t.num_rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(t.early_stopping_rounds, verbose=False)],
    )
    trained = time.time() - started - loaded
    result = {
        "load_seconds": round(loaded, 1),
        "train_seconds": round(trained, 1),
        "best_iteration": booster.best_iteration,
    }
    for name in ("valid", "test"):
        pred = booster.predict(x[split == name], num_iteration=booster.best_iteration)
        truth = y[split == name]
        result[f"{name}_mae"] = round(float(np.abs(pred - truth).mean()), 4)
        result[f"{name}_src"] = round(float(scipy.stats.spearmanr(truth, pred).statistic), 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
