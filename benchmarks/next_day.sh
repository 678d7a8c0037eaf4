#!/usr/bin/env bash
# The next-day rerun (issue 13, target 8). Day 1: an earlier release of the configured data
# (data.release_share=$SHARE, the earliest share of the training posts) through the pipeline.
# Day 2: the full release generated into the same folders (1/$SHARE as many training posts, the
# new ones later than all of day 1's and appended after its records; unchanged image files left as
# they were), then the same stages again on the same lake. Every generate and stage is measured by benchmarks/measure.py.
#   benchmarks/next_day.sh ROOT [extra --set arguments for every job]
# STAGES: the jobs run each day, in order (default: every stage of `make train-all` after the data);
# DAY1_STAGES, when set, replaces them on day 1 (e.g. only ingest, for a lake to rerun on).
# DAYS: the days to run (default "1 2"; DAYS=2 reruns day 2 on a lake that already holds day 1).
# The incremental rerun (gold keeps day 1's fitted state, each model continues from day 1's):
#   benchmarks/next_day.sh ROOT --set features.reuse_state=true --set train.warm_start=true
# (both fall back to a fit from scratch on day 1, where nothing came before).
# Holds /tmp/smp-spark-suite.lock per step so no test suite shares the two cores with a measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
ROOT=${1:?usage: benchmarks/next_day.sh ROOT [--set key=value ...]}
shift
SHARE=${SHARE:-0.952}
STAGES=${STAGES:-"ingest embed_text embed_images build_features train_lightgbm train_xgboost train_catboost train_fusion train_ensemble evaluate"}
SET=(--set "paths.raw=$ROOT/smpd/train" --set "paths.raw_test=$ROOT/smpd/test"
     --set "paths.scraped=$ROOT/scraped/train" --set "paths.scraped_test=$ROOT/scraped/test"
     --set "paths.lake=$ROOT/lake" --set "paths.models=$ROOT/models" --set "paths.reports=$ROOT/reports" "$@")
measure() {
  flock /tmp/smp-spark-suite.lock $PY benchmarks/measure.py --label "$1" -- "${@:2}"
}
for day in ${DAYS:-1 2}; do
  if [ "$day" = 1 ]; then
    release=(--set "data.release_share=$SHARE")
  else
    release=(--set data.release_share=1.0 --set "data.previous_release_share=$SHARE")
  fi
  measure "next day: day $day, generate (${release[*]})" $PY jobs/generate_data.py "${SET[@]}" "${release[@]}"
  stages=$([ "$day" = 1 ] && echo "${DAY1_STAGES:-$STAGES}" || echo "$STAGES")
  for stage in $stages; do
    measure "next day: day $day, $stage" $PY "jobs/$stage.py" "${SET[@]}"
  done
done
