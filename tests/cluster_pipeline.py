"""The cluster test's one spark-submit application: the ingest, features and SynapseML LightGBM jobs
in turn, each run as its own script's ``__main__`` with this command line's arguments, all on the
application's one session (one application start-up instead of three).

    scripts/submit.sh tests/cluster_pipeline.py --conf conf/cluster.yaml [--set key=value ...]
"""

import runpy
import sys
from pathlib import Path

JOBS = Path(__file__).resolve().parents[1] / "jobs"
STAGES = ("ingest.py", "build_features.py", "train_lightgbm.py")

if __name__ == "__main__":
    arguments = sys.argv[1:]
    for script in STAGES:
        sys.argv = [str(JOBS / script), *arguments]
        runpy.run_path(str(JOBS / script), run_name="__main__")
