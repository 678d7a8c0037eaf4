#!/usr/bin/env bash
# Generate, ingest and build features (Spark, no embeddings) at a given scale into a scratch
# folder, then the pandas single-node build of the same features; every step is measured by
# benchmarks/measure.py into benchmarks/results.jsonl.
#   benchmarks/pipeline_at_scale.sh 2720000 /tmp/smp-scale4
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:?scale}; ROOT=${2:?scratch folder}
PY=.venv/bin/python
SET=(--set "data.scale=$SCALE" --set "paths.raw=$ROOT/smpd/train" --set "paths.raw_test=$ROOT/smpd/test"
     --set "paths.scraped=$ROOT/scraped/train" --set "paths.scraped_test=$ROOT/scraped/test"
     --set "paths.lake=$ROOT/lake" --set features.text_embeddings=false)
measure() { $PY benchmarks/measure.py --label "$1 $SCALE posts" -- "${@:2}"; }
measure "generate" $PY jobs/generate_data.py "${SET[@]}"
measure "ingest" $PY jobs/ingest.py "${SET[@]}"
measure "features (Spark)" $PY jobs/build_features.py "${SET[@]}"
measure "features (pandas)" $PY benchmarks/pandas_features.py --lake "$ROOT/lake" --out "$ROOT/pandas_features.parquet"
du -sh "$ROOT"/smpd "$ROOT"/scraped "$ROOT"/lake/* "$ROOT"/lake/bronze/* 2>/dev/null
