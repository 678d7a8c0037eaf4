"""MLflow tracking for every training run: parameters, metrics, the gold version, the manifest and
the models. The default store is a local folder (``./mlruns``); ``train.tracking_uri`` points
elsewhere (a tracking server, Databricks)."""

from __future__ import annotations

import contextlib
import json
import os

from smp_spark.config import PROJECT_ROOT, Config


def tracking_uri(config: Config) -> str:
    uri = config.train.tracking_uri or f"file:{PROJECT_ROOT / 'mlruns'}"
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 keeps the file store in maintenance mode behind this switch; it needs no server
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


@contextlib.contextmanager
def training_run(config: Config, name: str, gold_version: int, manifest: list[dict], protocol: str):
    """An MLflow run tagged with the model name, the gold table version it read and that version's
    split protocol (read from the gold commit by the caller)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(config))
    mlflow.set_experiment(config.train.experiment)
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(
            {
                "model": name,
                "gold_table": config.table("gold/features"),
                "gold_version": str(gold_version),
                "split_protocol": protocol,
            }
        )
        mlflow.log_param("gold_version", gold_version)
        mlflow.log_text(json.dumps(manifest, indent=1), "feature_manifest.json")
        yield run


def log_params(params: dict) -> None:
    import mlflow

    mlflow.log_params({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in params.items()})


def log_metrics(rows: list[dict]) -> None:
    """``rows`` of ``{split, mae, rmse, src}`` -> metrics named like ``valid_mae``."""
    import mlflow

    for row in rows:
        for metric in ("mae", "rmse", "src"):
            if row.get(metric) is not None:
                mlflow.log_metric(f"{row['split']}_{metric}", float(row[metric]))
