"""The one spark-submit application of the cluster test: the ingest, features and SynapseML LightGBM
jobs in turn, each run as its own script's ``__main__`` with this command line's arguments (one
application start-up instead of three: the driver and two executor JVMs started and warmed once).
The session is stopped at the end, so no thread a stage left behind keeps the driver JVM alive
(a LightGBM run in the same application once did, when the session was left to the JVM's exit).

    scripts/submit.sh tests/cluster_pipeline.py --conf conf/cluster.yaml [--set key=value ...]
"""

import runpy
import sys
from pathlib import Path

from pyspark.sql import SparkSession

JOBS = Path(__file__).resolve().parents[1] / "jobs"
STAGES = ("ingest.py", "build_features.py", "train_lightgbm.py")

if __name__ == "__main__":
    arguments = sys.argv[1:]
    for script in STAGES:
        sys.argv = [str(JOBS / script), *arguments]
        runpy.run_path(str(JOBS / script), run_name="__main__")
    SparkSession.getActiveSession().stop()
