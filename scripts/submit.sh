#!/usr/bin/env bash
# Run a job through spark-submit with a profile's master, jars and spark.* settings; the package
# goes to the executors through --py-files (smp_spark/submit.py has the details).
#
# usage: scripts/submit.sh JOB.py [--conf PROFILE] [--set key=value ...] [job options]
#   scripts/submit.sh jobs/ingest.py --conf conf/cluster.yaml
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "${SMP_PYTHON:-$ROOT/.venv/bin/python}" -m smp_spark.submit "$@"
