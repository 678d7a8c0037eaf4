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

import json
import os
import time

import numpy as np
import xgboost as xgb
from lightgbm_single_node import load_inputs, scores


def main() -> None:
    inputs = load_inputs()
    t, x, split, y = inputs.train, inputs.x, inputs.split, inputs.y
    started = time.time()
    train = xgb.DMatrix(x[split == "train"], y[split == "train"], missing=np.nan)
    valid = xgb.DMatrix(x[split == "valid"], y[split == "valid"], missing=np.nan)
    loaded = inputs.load_seconds + time.time() - started
    params = dict(
        objective="reg:squarederror",
        eval_metric="mae",
        learning_rate=t.learning_rate,
        max_depth=t.max_depth,
        tree_method="hist",
        seed=t.seed,
        nthread=os.cpu_count(),
    )
    started = time.time()
    booster = xgb.train(
        params,
        train,
        t.num_rounds,
        evals=[(valid, "valid")],
        early_stopping_rounds=t.early_stopping_rounds,
        verbose_eval=False,
    )
    result = {
        "load_seconds": round(loaded, 1),
        "train_seconds": round(time.time() - started, 1),
        "best_iteration": booster.best_iteration,
    }
    best = (0, booster.best_iteration + 1)
    result.update(scores(inputs, lambda rows: booster.predict(xgb.DMatrix(rows, missing=np.nan), iteration_range=best)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
