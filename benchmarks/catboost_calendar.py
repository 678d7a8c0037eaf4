"""CatBoost with the calendar features (``month``, ``iso_week``) as categories, as numbers, and
without them, side by side on the same gold table: does the month trap explain its valid/test gap?

    .venv/bin/python benchmarks/measure.py --label "catboost calendar 50K" -- \\
        .venv/bin/python benchmarks/catboost_calendar.py --lake lake/demo --conf conf/demo.yaml

SINGLE NODE: the tree inputs of the latest gold version are exported with a local Spark session and
loaded into numpy (as ``benchmarks/lightgbm_single_node.py`` does); CatBoost trains with the
settings of ``smp_spark.models.trees.catboost_params`` on all cores, early stopping on the valid
split. Prints, per variant, the valid and test MAE and SRC, and the bias (mean prediction - label)
of the valid and test posts by their ``month`` value, as a Markdown table.
"""

from __future__ import annotations

import os
import time

import numpy as np
import scipy.stats
from catboost import CatBoostRegressor, Pool
from lightgbm_single_node import load_inputs

from smp_spark.features.manifest import CATEGORICAL
from smp_spark.models.trees import catboost_frame, catboost_params

CALENDAR = ("month", "iso_week")


def main() -> None:
    inputs = load_inputs()
    categorical = [inputs.scalars.index(s.name) for s in inputs.specs if s.kind == CATEGORICAL]
    calendar = [inputs.scalars.index(name) for name in CALENDAR if name in inputs.scalars]
    month = inputs.x[:, inputs.scalars.index("month")]
    variants = {
        "calendar as categories (as trained)": (list(range(inputs.x.shape[1])), categorical),
        "calendar as numbers": (list(range(inputs.x.shape[1])), [c for c in categorical if c not in calendar]),
        "without the calendar": ([c for c in range(inputs.x.shape[1]) if c not in calendar], None),
    }
    rows = []
    for name, (columns, cats) in variants.items():
        if cats is None:  # the kept columns' categorical slots, renumbered
            cats = [columns.index(c) for c in categorical if c in columns]
        x = inputs.x[:, columns]
        train, valid = inputs.split == "train", inputs.split == "valid"
        started = time.time()
        model = CatBoostRegressor(**catboost_params(inputs.train, os.cpu_count()), allow_writing_files=False)
        model.fit(
            Pool(catboost_frame(x[train], cats), inputs.y[train], cat_features=cats),
            eval_set=Pool(catboost_frame(x[valid], cats), inputs.y[valid], cat_features=cats),
        )
        seconds = time.time() - started

        result = {}
        for split in ("valid", "test"):
            mask = inputs.split == split
            pred, truth, months = model.predict(catboost_frame(x[mask], cats)), inputs.y[mask], month[mask]
            result[f"{split} MAE"] = float(np.abs(pred - truth).mean())
            result[f"{split} SRC"] = float(scipy.stats.spearmanr(truth, pred).statistic)
            for m in sorted(set(months[~np.isnan(months)])):
                result[f"{split} bias, month {int(m)}"] = float((pred - truth)[months == m].mean())
        rows.append((name, seconds, model.get_best_iteration(), result))

    keys = sorted({k for *_, r in rows for k in r})
    print("| variant | train s | best iteration | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for name, seconds, best, result in rows:
        cells = [(f"{result[k]:+.4f}" if "bias" in k else f"{result[k]:.4f}") if k in result else "" for k in keys]
        print(f"| {name} | {seconds:.1f} | {best} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
