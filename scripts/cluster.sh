#!/usr/bin/env bash
# A Spark standalone cluster on this machine's loopback: one master and SMP_WORKERS workers, run
# by the installed pyspark's own daemon script (sbin/spark-daemon.sh).
#
# usage: scripts/cluster.sh up|down|status
#   up      start the master and the workers; wait until every worker has registered (a second
#           `up` says the cluster is already up)
#   down    stop the workers and the master (nothing running: says so, exits 0)
#   status  the master URL and its registered workers, or "not running" (exit 3)
#
# Environment knobs (defaults in brackets):
#   SMP_CLUSTER_DIR     pids, daemon logs, worker work dirs and scratch [<project>/.cache/cluster]
#   SMP_MASTER_PORT     the master's port, jobs use spark://127.0.0.1:<port> [7077]
#   SMP_MASTER_UI_PORT  the master's web UI and its JSON status at /json/ [8080]
#   SMP_WORKER_UI_PORT  the first worker's web UI; worker i uses this + i - 1 [8081]
#   SMP_WORKERS [2]  SMP_WORKER_CORES [1]  SMP_WORKER_MEMORY [2g]
#   SMP_CLUSTER_TIMEOUT seconds to wait for the workers to register [90]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${SMP_PYTHON:-$ROOT/.venv/bin/python}"
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME

CLUSTER_DIR="${SMP_CLUSTER_DIR:-$ROOT/.cache/cluster}"
MASTER_PORT="${SMP_MASTER_PORT:-7077}"
MASTER_UI_PORT="${SMP_MASTER_UI_PORT:-8080}"
WORKER_UI_PORT="${SMP_WORKER_UI_PORT:-8081}"
WORKERS="${SMP_WORKERS:-2}"
WORKER_CORES="${SMP_WORKER_CORES:-1}"
WORKER_MEMORY="${SMP_WORKER_MEMORY:-2g}"
TIMEOUT="${SMP_CLUSTER_TIMEOUT:-90}"

HOST=127.0.0.1
MASTER_URL="spark://$HOST:$MASTER_PORT"
STATUS_URL="http://$HOST:$MASTER_UI_PORT/json/"
MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

export SPARK_LOCAL_IP="$HOST" SPARK_MASTER_HOST="$HOST"
export SPARK_IDENT_STRING="${SPARK_IDENT_STRING:-${USER:-$(id -un)}}"  # names the pid and log files
export SPARK_PID_DIR="$CLUSTER_DIR/pids" SPARK_LOG_DIR="$CLUSTER_DIR/logs"
export SPARK_WORKER_DIR="$CLUSTER_DIR/work" SPARK_LOCAL_DIRS="$CLUSTER_DIR/scratch"
# finished applications' jars and logs in the work dir go after a day, not the default week
export SPARK_WORKER_OPTS="${SPARK_WORKER_OPTS:-} -Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400"

# The daemons outlive this script: they must not inherit its open files (a caller's `flock` lock
# or a test's output pipe would stay held until cluster-down).
daemon() {
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
        done
        "$SPARK_HOME/sbin/spark-daemon.sh" "$@"
    )
}
running() { daemon status "$1" "$2" >/dev/null 2>&1; }
pid_of() { cat "$SPARK_PID_DIR/spark-$SPARK_IDENT_STRING-$1-$2.pid" 2>/dev/null || true; }

# registered workers in state ALIVE, from the master's JSON (empty when the master does not answer)
alive_workers() {
    curl -sf --max-time 2 "$STATUS_URL" 2>/dev/null |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin).get("aliveworkers", 0))' 2>/dev/null || true
}

up() {
    mkdir -p "$SPARK_PID_DIR" "$SPARK_LOG_DIR" "$SPARK_WORKER_DIR" "$SPARK_LOCAL_DIRS"
    if running "$MASTER_CLASS" 1 && [ "$(alive_workers)" = "$WORKERS" ]; then
        echo "cluster already up: $MASTER_URL, $WORKERS workers (UI http://$HOST:$MASTER_UI_PORT)"
        return 0
    fi
    running "$MASTER_CLASS" 1 ||
        daemon start "$MASTER_CLASS" 1 --host "$HOST" --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT"
    for i in $(seq 1 "$WORKERS"); do  # in parallel: spark-daemon.sh waits seconds for each launch
        running "$WORKER_CLASS" "$i" ||
            daemon start "$WORKER_CLASS" "$i" --host "$HOST" --webui-port $((WORKER_UI_PORT + i - 1)) \
                --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" "$MASTER_URL" &
    done
    wait
    local waited=0
    until [ "$(alive_workers)" = "$WORKERS" ]; do
        if [ "$waited" -ge "$TIMEOUT" ]; then
            echo "error: cluster.sh: $WORKERS workers did not register with $MASTER_URL within ${TIMEOUT}s;" \
                "logs in $SPARK_LOG_DIR" >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "cluster up: $MASTER_URL, $WORKERS workers x $WORKER_CORES core(s), $WORKER_MEMORY each" \
        "(UI http://$HOST:$MASTER_UI_PORT, logs $SPARK_LOG_DIR)"
}

# stop one daemon and wait for its process to exit, so its ports are free when `down` returns
stop() {
    local pid
    pid="$(pid_of "$1" "$2")"
    daemon stop "$1" "$2"
    [ -n "$pid" ] || return 0
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    echo "$1 $2 (pid $pid) did not stop in 15s; killing it"
    kill -9 "$pid" 2>/dev/null || true
}

down() {
    for i in $(seq 1 "$WORKERS"); do stop "$WORKER_CLASS" "$i"; done
    stop "$MASTER_CLASS" 1
}

status() {
    if ! running "$MASTER_CLASS" 1; then
        echo "not running (no master in $SPARK_PID_DIR)"
        return 3
    fi
    echo "master $MASTER_URL: $(alive_workers) of $WORKERS workers alive (UI http://$HOST:$MASTER_UI_PORT)"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *)
        echo "usage: scripts/cluster.sh up|down|status" >&2
        exit 2
        ;;
esac
