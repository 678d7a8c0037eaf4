"""The next-day rerun's models: continue from the model trained on the day before's gold.

With ``train.warm_start`` a model continues from the one saved for the latest earlier gold version
that shares this gold's fitted state (the same ``fitted_on`` in both gold commits: the same TF-IDF,
PCAs and encodings, so every input slot means what it meant) and its input layout. That model
learnt from its gold's training split and early-stopped on its valid split; the kept state
guarantees both lie inside this gold's training and valid splits (:mod:`smp_spark.features.reuse`),
so no test post has reached it. Its trees (or weights) are the start; the new ones fit this gold's
training split and early-stop on its valid split. Anything else trains from scratch, saying why.
"""

from __future__ import annotations

import os
import re

from pyspark.sql import SparkSession

from smp_spark.config import Config
from smp_spark.features.gold import gold_commits
from smp_spark.models.dataset import ModelInput
from smp_spark.models.registry import LAYOUT_FILE, Model, trained_slots


def _earlier_versions(root: str, gold_version: int) -> list[int]:
    """The gold versions below ``gold_version`` that have a model folder under ``root``, latest first."""
    if not os.path.isdir(root):
        return []
    found = (re.fullmatch(r"gold_v(\d+)", entry) for entry in os.listdir(root))
    return sorted((int(m.group(1)) for m in found if m and int(m.group(1)) < gold_version), reverse=True)


def previous_model(spark: SparkSession, config: Config, kind: Model, data: ModelInput) -> tuple[str | None, str]:
    """The folder of the model ``kind`` continues from on ``data``'s gold version, or None; and why,
    in words."""
    if not config.train.warm_start:
        return None, "train.warm_start is off"
    if not kind.warm_starts:
        return None, f"{kind.name} trains anew on every gold version"
    commits = gold_commits(spark, config)
    fitted_on = commits.get(data.gold_version, {}).get("fitted_on")
    if fitted_on is None or fitted_on == data.gold_version:
        return None, f"gold version {data.gold_version} fitted its own feature state"
    root = os.path.join(config.path("models"), kind.name)
    for version in _earlier_versions(root, data.gold_version):
        if commits.get(version, {}).get("fitted_on", version) != fitted_on:
            continue
        folder = os.path.join(root, f"gold_v{version}")
        for needed in (kind.native_file, LAYOUT_FILE):
            if not os.path.exists(os.path.join(folder, needed)):
                return None, f"{folder} has no {needed}"
        if trained_slots(folder, kind.name) != data.slot_names:
            return None, f"{folder} was trained on another input layout"
        return folder, f"continuing from {folder}"
    return None, f"no {kind.name} model was trained on a gold version with the state of version {fitted_on}"
