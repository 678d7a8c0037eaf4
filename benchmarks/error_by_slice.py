"""Each model's valid and test error by calendar month and by whether the post's user has earlier
training labels: where a valid/test gap comes from.

    .venv/bin/python benchmarks/error_by_slice.py [--lake lake] [--gold-version 0]

SINGLE NODE: reads the valid and test rows of ``gold/model_predictions`` (one gold version) and of
``gold/features`` with delta-rs into pandas (about 140,000 rows a model at 680K posts); no Spark.
Bias = mean of prediction - label (positive: the model predicts too high).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from deltalake import DeltaTable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", default="lake")
    parser.add_argument("--gold-version", type=int, default=0)
    args = parser.parse_args()

    held_out = ["valid", "test"]
    predictions = DeltaTable(f"{args.lake}/gold/model_predictions").to_pandas(
        columns=["model", "Pid", "split", "label", "prediction", "gold_version"]
    )
    predictions = predictions[(predictions.gold_version == args.gold_version) & predictions.split.isin(held_out)]
    gold = DeltaTable(f"{args.lake}/gold/features", version=args.gold_version).to_pandas(
        columns=["Pid", "Postdate", "split", "user_prev_train_labels"]
    )
    rows = predictions.merge(gold[gold.split.isin(held_out)].drop(columns="split"), on="Pid")
    rows["abs_error"] = (rows.prediction - rows.label).abs()
    rows["bias"] = rows.prediction - rows.label
    rows["month"] = pd.to_datetime(rows.Postdate, unit="s").dt.strftime("%Y-%m")
    rows["user"] = np.where(rows.user_prev_train_labels.fillna(0) > 0, "has train labels", "no train labels")

    def table(index: list[str], value: str) -> str:
        pivot = rows.pivot_table(index=index, columns="model", values=value, aggfunc="mean").round(4)
        header = [*index, *pivot.columns]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for key, values in pivot.iterrows():
            keys = key if isinstance(key, tuple) else (key,)
            lines.append("| " + " | ".join([*map(str, keys), *(f"{v:.4f}" for v in values)]) + " |")
        return "\n".join(lines)

    for index in (["split"], ["split", "month"], ["split", "user"]):
        for value in ("abs_error", "bias"):
            print(f"\n{value} by {' and '.join(index)} (gold version {args.gold_version})\n")
            print(table(index, value))
    counts = rows[rows.model == rows.model.iloc[0]].groupby(["split", "month"]).size()
    print("\nposts by split and month\n")
    print(counts.to_string())


if __name__ == "__main__":
    main()
