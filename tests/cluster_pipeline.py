"""One spark-submit application of the cluster test: the ingest and features jobs in turn, each run
as its own script's ``__main__`` with this command line's arguments (one application start-up
instead of two). SynapseML LightGBM stays an application of its own: with it in the same
application, the driver JVM once kept a non-daemon thread and never exited.

    scripts/submit.sh tests/cluster_pipeline.py --conf conf/cluster.yaml [--set key=value ...]
"""

import runpy
import sys
from pathlib import Path

JOBS = Path(__file__).resolve().parents[1] / "jobs"
STAGES = ("ingest.py", "build_features.py")

if __name__ == "__main__":
    arguments = sys.argv[1:]
    for script in STAGES:
        sys.argv = [str(JOBS / script), *arguments]
        runpy.run_path(str(JOBS / script), run_name="__main__")
