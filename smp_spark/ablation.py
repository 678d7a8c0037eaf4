"""The ablations: the same model trained on tabular features only, + text, + image, all three, and
all three without the social-network (group) features, on one gold version, so a user sees what
each modality is worth and what the post-hoc scraped group data adds (the research's one ablation:
for real SMPD those tables were scraped years after the posts).

Each run trains with ``train.modalities`` (the trees then take no text or image feature, the
fusion net builds no tower for a switched-off vector) and ``features.families`` set; it keeps its
model under
``<models>/ablation/<model>/<modalities>/gold_v<N>`` and its metrics in ``gold/ablation`` (model,
modalities, split, n, MAE, RMSE, SRC). The main models and ``gold/model_predictions`` are not
touched; the evaluation report shows the table when it exists.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from smp_spark import catalog
from smp_spark.config import Config
from smp_spark.lake import read_table, sync_table
from smp_spark.metrics import metrics
from smp_spark.models.dataset import model_input, resolve_gold_version
from smp_spark.models.registry import model

ALL = ("tabular", "text", "image")
NO_SOCIAL = "social"
# (modalities, a family left out or None)
SETS = (("tabular",), ("tabular", "text"), ("tabular", "image"), ALL, (*ALL, f"-{NO_SOCIAL}"))
MODELS = ("lightgbm", "fusion")


def label(inputs: tuple[str, ...]) -> str:
    """``("tabular", "text")`` -> ``tabular+text``; a ``-family`` entry reads ``..., without family``."""
    kept = "+".join(i for i in inputs if not i.startswith("-"))
    dropped = [i[1:] for i in inputs if i.startswith("-")]
    return kept + "".join(f", without {d}" for d in dropped)


def ablated(config: Config, inputs: tuple[str, ...]) -> Config:
    """``config`` with ``train.modalities`` and ``features.families`` set for one ablation run."""
    modalities = [i for i in inputs if not i.startswith("-")]
    families = [f for f in config.features.families if f"-{f}" not in inputs]
    return replace(
        config,
        train=replace(config.train, modalities=modalities),
        features=replace(config.features, families=families),
    )


SCHEMA = "model string, split string, n long, mae double, rmse double, src double, modalities string, gold_version long"


def finished(spark: SparkSession, config: Config, gold_version: int) -> set[tuple[str, str]]:
    """The (model, inputs label) pairs ``gold/ablation`` already has for ``gold_version``."""
    from delta.tables import DeltaTable

    path = config.table(catalog.ABLATION.name)
    if not DeltaTable.isDeltaTable(spark, path):
        return set()
    found = read_table(spark, path).filter(F.col("gold_version") == gold_version)
    return {(r["model"], r["modalities"]) for r in found.select("model", "modalities").distinct().collect()}


def run_ablation(
    spark: SparkSession,
    config: Config,
    models: tuple[str, ...] = MODELS,
    sets=SETS,
    progress=print,
    resume: bool = False,
    gold_version: int | None = None,
) -> list[dict]:
    """Train every model of ``models`` on every modality set of ``sets`` (``gold_version``, the
    latest by default) and return their metrics. Each training's rows go to ``gold/ablation`` as
    soon as it ends, replacing that model and set's earlier rows for the version (other rows stay),
    so a stopped ablation keeps what it finished; ``resume`` skips the pairs the table had when
    this run started."""
    table = config.table(catalog.ABLATION.name)
    version = resolve_gold_version(spark, config, gold_version)  # one version for every training
    done = finished(spark, config, version) if resume else set()
    rows = []
    for name in models:
        for modalities in sets:
            if (name, label(modalities)) in done:
                progress(f"ablation: {name} on {label(modalities)}: already done for gold version {version}")
                continue
            started = time.time()
            cfg = ablated(config, modalities)
            kind = model(name)
            data = model_input(spark, kind.input_config(cfg), version)
            out_dir = os.path.join(
                config.path("models"), "ablation", name, "_".join(modalities), f"gold_v{data.gold_version}"
            )
            trained = kind.train(spark, cfg, data, out_dir)
            scored = trained.predictions.withColumn("model", F.lit(name))
            found = [
                {**row, "modalities": label(modalities), "gold_version": data.gold_version} for row in metrics(scored)
            ]
            scope = {"gold_version": str(data.gold_version), "model": name, "modalities": label(modalities)}
            sync_table(spark, spark.createDataFrame(found, SCHEMA), table, list(catalog.ABLATION.keys), scope=scope)
            rows.extend(found)
            progress(
                f"ablation: {name} on {label(modalities)}: {len(data.slot_names)} inputs, {time.time() - started:.0f} s"
            )
    return rows


def ablation_markdown(spark: SparkSession, config: Config, gold_versions: set[int]) -> list[str]:
    """The report section: valid and test MAE / SRC per model and modality set, if the ablation ran
    on one of ``gold_versions``."""
    from delta.tables import DeltaTable

    path = config.table(catalog.ABLATION.name)
    if not DeltaTable.isDeltaTable(spark, path):
        return []
    found = read_table(spark, path).filter(F.col("gold_version").isin(*gold_versions)).collect()
    if not found:
        return []
    cells = {(r["model"], r["modalities"], r["split"]): r for r in found}
    lines = [
        "## Ablations: modalities, and the social-network (group) features",
        "",
        "The same model trained on each set of inputs (`make ablation`); gold version "
        + ", ".join(str(v) for v in sorted({r["gold_version"] for r in found}))
        + ".",
        "",
        "| model | inputs | valid MAE | valid SRC | test MAE | test SRC |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted({r["model"] for r in found}):
        for modalities in map(label, SETS):
            valid, test = cells.get((name, modalities, "valid")), cells.get((name, modalities, "test"))
            if valid and test:
                lines.append(
                    f"| {name} | {modalities} | {valid['mae']:.4f} | {valid['src']:.4f} "
                    f"| {test['mae']:.4f} | {test['src']:.4f} |"
                )
    return lines
