"""The evaluation report: a Markdown page with metric tables and PNG plots.

Everything plotted is aggregated (or sampled to a few thousand points) in Spark first; only those
small results reach the driver.
"""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from smp_spark.metrics import MEDIAN_BASELINE, ORACLE  # noqa: E402

SPLITS = ["train", "valid", "test"]


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def metrics_markdown(rows: list[dict]) -> str:
    """One table: a row per model, MAE / RMSE / SRC per split."""
    header = "| model | " + " | ".join(f"{s} MAE | {s} RMSE | {s} SRC" for s in SPLITS) + " |"
    lines = [header, "|" + "---|" * (1 + 3 * len(SPLITS))]
    by_model: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["split"]] = row
    for model, splits in sorted(by_model.items(), key=lambda kv: (kv[0] in (MEDIAN_BASELINE, ORACLE), kv[0])):
        cells = []
        for split in SPLITS:
            r = splits.get(split, {})
            cells += [_fmt(r.get("mae")), _fmt(r.get("rmse")), _fmt(r.get("src"))]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_model_comparison(rows: list[dict], path: str) -> None:
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("mae", "src")):
        width = 0.8 / 2
        for i, split in enumerate(("valid", "test")):
            values = [
                next((r[metric] or 0 for r in rows if r["model"] == m and r["split"] == split), 0) for m in models
            ]
            ax.bar([x + i * width for x in range(len(models))], values, width, label=split)
        ax.set_xticks([x + width / 2 for x in range(len(models))], models, rotation=20, ha="right")
        ax.set_title(metric.upper())
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_predicted_vs_actual(predictions: DataFrame, models: list[str], path: str, sample: int = 4000) -> None:
    """Test-split scatter per model, from a sample of at most ``sample`` posts per model."""
    test = predictions.filter(F.col("split") == "test")
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        rows = test.filter(F.col("model") == model)
        fraction = min(1.0, sample / max(1, rows.count()))
        points = rows.sample(fraction=fraction, seed=7).select("label", "prediction").collect()
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=3, alpha=0.3)
        ax.plot([1, 16], [1, 16], color="grey", linewidth=1)
        ax.set_title(model)
        ax.set_xlabel("actual label")
        ax.set_ylabel("predicted")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_error_by_category(errors: list[dict], path: str) -> None:
    """Test MAE per Category and model (from ``evaluate.error_by``)."""
    categories = sorted({r["Category"] for r in errors})
    models = sorted({r["model"] for r in errors})
    fig, ax = plt.subplots(figsize=(12, 4))
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        values = [next((r["mae"] for r in errors if r["model"] == model and r["Category"] == c), 0) for c in categories]
        ax.bar([x + i * width for x in range(len(categories))], values, width, label=model)
    ax.set_xticks([x + 0.4 for x in range(len(categories))], categories, rotation=30, ha="right")
    ax.set_ylabel("test MAE")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_importances(importance_files: dict[str, str], path: str, top: int = 15) -> None:
    """Top features by normalised gain, per model (from each model's importances.json)."""
    fig, axes = plt.subplots(1, len(importance_files), figsize=(5 * len(importance_files), 5), squeeze=False)
    for ax, (model, file) in zip(axes[0], sorted(importance_files.items())):
        with open(file) as f:
            gains = json.load(f)
        total = sum(gains.values()) or 1.0
        best = sorted(gains.items(), key=lambda kv: -kv[1])[:top][::-1]
        ax.barh([k for k, _ in best], [v / total for _, v in best])
        ax.set_title(f"{model}: share of gain")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    folder: str,
    title: str,
    rows: list[dict],
    predictions: DataFrame,
    errors: list[dict],
    importance_files: dict[str, str],
    notes: list[str],
    extra: list[str] = (),
) -> str:
    """Write ``folder/index.md`` and its plots; returns the page's path."""
    os.makedirs(folder, exist_ok=True)
    models = sorted({r["model"] for r in rows if r["model"] not in (MEDIAN_BASELINE, ORACLE)})
    plot_model_comparison(rows, os.path.join(folder, "models.png"))
    plot_predicted_vs_actual(predictions, models, os.path.join(folder, "predicted_vs_actual.png"))
    plot_error_by_category(errors, os.path.join(folder, "error_by_category.png"))
    sections = [
        f"# {title}",
        *notes,
        "",
        "## Metrics",
        "",
        metrics_markdown(rows),
        "",
        "![models](models.png)",
        "",
        "## Predicted vs actual (test split)",
        "",
        "![predicted vs actual](predicted_vs_actual.png)",
        "",
        "## Test MAE by Category",
        "",
        "![error by category](error_by_category.png)",
    ]
    if importance_files:
        plot_importances(importance_files, os.path.join(folder, "importances.png"))
        sections += ["", "## Feature importance", "", "![importances](importances.png)"]
    if extra:
        sections += ["", *extra]
    page = os.path.join(folder, "index.md")
    with open(page, "w") as f:
        f.write("\n".join(sections) + "\n")
    return page
