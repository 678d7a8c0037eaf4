"""The whole pipeline, stage by stage, each stage its own job (and Spark application), as
spark-submit would run them; then a timing table and the report's path.

    python jobs/train_all.py [--conf FILE] [--set key=value ...]     # `make train-all`, `make demo`
    python jobs/train_all.py --from train_lightgbm                   # resume at a stage
Every --conf / --set is passed to every stage. A failing stage stops the run and names itself and
the `--from` that resumes it (`make train-all ARGS="--from ..."`); the stages before it are not rerun.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without install

from smp_spark.cli import build_parser  # noqa: E402
from smp_spark.config import load_config  # noqa: E402
from smp_spark.console import format_table  # noqa: E402
from smp_spark.errors import SmpError  # noqa: E402

STAGES = [
    ("generate data", "generate_data.py"),
    ("ingest", "ingest.py"),
    ("text embeddings", "embed_text.py"),
    ("image embeddings", "embed_images.py"),
    ("features", "build_features.py"),
    ("SynapseML LightGBM", "train_lightgbm.py"),
    ("xgboost.spark", "train_xgboost.py"),
    ("CatBoost (single node)", "train_catboost.py"),
    ("Horovod fusion net", "train_fusion.py"),
    ("ensemble (valid-split blend)", "train_ensemble.py"),
    ("evaluate + report", "evaluate.py"),
]


def run_stage(script: str, passthrough: list[str]) -> tuple[int, str]:
    """Run one job, streaming its output; returns its exit code and the report path it printed."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "jobs" / script), *passthrough],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    report = ""
    for line in process.stdout:
        sys.stdout.write(line)
        found = re.match(r"report: (.+)$", line.strip())
        report = found.group(1) if found else report
    return process.wait(), report


def add_args(parser) -> None:
    parser.add_argument(
        "--from",
        dest="start",
        metavar="STAGE",
        choices=[script.removesuffix(".py") for _, script in STAGES],
        help="resume at this stage (its job's name, e.g. train_lightgbm); the ones before it are not rerun",
    )


def stages_from(start: str | None) -> list[tuple[str, str]]:
    """The stages from ``start`` (a job name such as ``train_lightgbm``) on; all of them for None."""
    names = [script.removesuffix(".py") for _, script in STAGES]
    return STAGES[names.index(start) :] if start else list(STAGES)


def main() -> None:
    args = build_parser("train_all", add_args).parse_args()
    passthrough = (["--conf", args.conf] if args.conf else []) + [f"--set={o}" for o in args.overrides]
    try:
        config = load_config(args.conf, args.overrides)  # fail on a bad key before any stage starts
    except SmpError as exc:
        sys.exit(f"error: train_all: {exc}")
    print(f"train_all: {config.data.scale:,} posts, config {config.source}", flush=True)
    timings, report, started = [], "", time.time()
    stages = stages_from(args.start)
    if len(stages) < len(STAGES):
        print(f"train_all: resuming at {stages[0][1]}; not rerun: {', '.join(n for n, _ in STAGES[: -len(stages)])}")
    for name, script in stages:
        print(f"\n=== {name} ({script}) ===", flush=True)
        stage_started = time.time()
        code, printed = run_stage(script, passthrough)
        timings.append((name, f"{time.time() - stage_started:,.1f}"))
        report = printed or report
        if code:
            print(format_table(["stage", "seconds"], timings))
            sys.exit(
                f"error: train_all: stage '{name}' (jobs/{script}) failed with exit code {code}; "
                f"after fixing it, resume with --from {script.removesuffix('.py')}"
            )
    timings.append(("total", f"{time.time() - started:,.1f}"))
    print("\n" + format_table(["stage", "seconds"], timings))
    print(f"report: {report}")


if __name__ == "__main__":
    main()
