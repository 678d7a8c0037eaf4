#!/usr/bin/env bash
# The full-scale model runs on the default lake (after `make data ingest embeddings`): features,
# the three tree models, the single-node lightgbm comparison on the same gold table, the fusion
# net with 1 and 2 Horovod processes, and the evaluation, each measured by benchmarks/measure.py.
# The single-node comparisons read the lake at $LAKE (default: lake); pass the jobs the same
# folder (--set paths.lake=...) when it is another one.
# Holds /tmp/smp-spark-suite.lock per step so no test suite shares the two cores with a measurement.
#   benchmarks/models_at_scale.sh [extra --set arguments for every job]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SCALE=$($PY -c "from smp_spark.config import load_config; print(load_config().data.scale)")
measure() {
  flock /tmp/smp-spark-suite.lock $PY benchmarks/measure.py --label "$1 ($SCALE posts)" -- "${@:2}"
}
STEPS=${STEPS:-"features lightgbm lightgbm-single xgboost xgboost-single catboost fusion-1 fusion-2 evaluate"}
LAKE=${LAKE:-lake}
for step in $STEPS; do
  case $step in
    features)        measure "features with embeddings" $PY jobs/build_features.py "$@" ;;
    lightgbm)        measure "SynapseML LightGBM" $PY jobs/train_lightgbm.py "$@" ;;
    lightgbm-single) measure "single-node lightgbm" $PY benchmarks/lightgbm_single_node.py --lake "$LAKE" ;;
    xgboost)         measure "xgboost.spark" $PY jobs/train_xgboost.py "$@" ;;
    xgboost-single)  measure "single-node xgboost" $PY benchmarks/xgboost_single_node.py --lake "$LAKE" ;;
    catboost)        measure "CatBoost single node" $PY jobs/train_catboost.py "$@" ;;
    fusion-1)        measure "fusion net, 1 Horovod process, ${FUSION1_EPOCHS:-3} epochs" \
                       $PY jobs/train_fusion.py --set train.num_workers=1 \
                       --set fusion.epochs=${FUSION1_EPOCHS:-3} "$@" ;;
    fusion-2)        measure "fusion net, 2 Horovod processes" $PY jobs/train_fusion.py "$@" ;;
    evaluate)        measure "evaluate + report" $PY jobs/evaluate.py "$@" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
