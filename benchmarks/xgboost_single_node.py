"""Single-node xgboost on the same gold table, to measure the xgboost.spark job against (issue 13,
target 4: the distributed job at most 1.5x this one, test MAE within 0.5%).

The same inputs as ``lightgbm_single_node.py`` (the gold table's tree slots, exported through a
local Spark session, loaded into numpy) and the settings of ``smp_spark.models.trees.train_xgboost``
(squared error, MAE for early stopping on the valid split, ``hist``, categorical codes fed as
numbers, NaN as missing), trained by ``xgboost.train`` on all cores. Prints load/train time and
valid/test MAE and SRC as JSON.

    .venv/bin/python benchmarks/measure.py --label "xgboost single node 680K" -- \\
        .venv/bin/python benchmarks/xgboost_single_node.py --lake lake
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import scipy.stats
import xgboost as xgb
from lightgbm_single_node import export_tree_inputs, matrix

from smp_spark.config import load_config
from smp_spark.features.manifest import VECTOR


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
    train = xgb.DMatrix(x[split == "train"], y[split == "train"], missing=np.nan)
    valid = xgb.DMatrix(x[split == "valid"], y[split == "valid"], missing=np.nan)
    loaded = time.time() - started
    params = dict(
        objective="reg:squarederror",
        eval_metric="mae",
        learning_rate=t.learning_rate,
        max_depth=t.max_depth,
        tree_method="hist",
        seed=t.seed,
        nthread=os.cpu_count(),
    )
    booster = xgb.train(
        params,
        train,
        t.num_rounds,
        evals=[(valid, "valid")],
        early_stopping_rounds=t.early_stopping_rounds,
        verbose_eval=False,
    )
    trained = time.time() - started - loaded
    result = {
        "load_seconds": round(loaded, 1),
        "train_seconds": round(trained, 1),
        "best_iteration": booster.best_iteration,
    }
    for name in ("valid", "test"):
        rows = xgb.DMatrix(x[split == name], missing=np.nan)
        pred = booster.predict(rows, iteration_range=(0, booster.best_iteration + 1))
        truth = y[split == name]
        result[f"{name}_mae"] = round(float(np.abs(pred - truth).mean()), 4)
        result[f"{name}_src"] = round(float(scipy.stats.spearmanr(truth, pred).statistic), 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
