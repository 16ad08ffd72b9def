#!/usr/bin/env bash
# The GPU check of issue 14, in one go, on a machine with an NVIDIA GPU (a few minutes on an H100):
#   1. what is there: GPU and driver, torch, cuda-bindings / pycuda, and the GL renderer a window gets;
#   2. the project's gpu-marked tests: CUDA-GL interop exactness per backend (odd sizes, resizes, depth
#      frames, a frame from another thread's stream), CUDA-graph replay vs eager within the fp16
#      tolerance, the replay after the plane table was evicted with freed memory NaN-filled (D1), a
#      failed capture (D2), captures beside a synchronising thread (D3), TF32 / fp16 precision (R3);
#   3. bench/bench_gpu.py on the FFHQ-512 configuration with random weights: FPS and frame-time
#      percentiles of the render alone, eager, interop and read-back, and its replay check.
#
#   bash bench/gpu_check.sh [--dry-run]
#
# Results in $OUT (default /tmp/gpu-check): summary.txt (one line per step with its exit status, and
# every failure), env.txt, pytest.txt, bench.txt. Exit status 0 when every step passed.
# --dry-run: the same steps on a machine without CUDA (the gpu tests skip; the bench runs on the CPU
# with the built-in model and a few frames). The test suite runs it so (tests/gui/test_bench_gpu.py).
#
# OpenGL: interop needs the window's GL context on the NVIDIA GPU. On the GPU machines here GLX windows
# on Xvfb get it with __GLX_VENDOR_LIBRARY_NAME=nvidia (set below; GLFW's null-platform EGL failed
# there). Plain Xvfb is Mesa, where interop cannot run and a pass proves nothing about it, so the
# interop tests fail instead of skipping for each backend that imports (TRIPLANE_REQUIRE_INTEROP),
# and env.txt names the GL renderer.
# Carried dependencies, each used when present (machines without a registry):
#   .whl/*.whl  Python wheels (imgui-bundle, glfw, PyOpenGL, cuda-bindings, ...): pip-installed into /tmp/site;
#   .gl/*.deb   the GL loader libraries (libglvnd0 libgl1 libglx0 libopengl0 libegl1 ...): unpacked into /;
#   $XVFB       an Xvfb command to use when none is on PATH.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=0

note() { echo "$*" | tee -a "$SUMMARY"; }
step() {  # step NAME LOG SECONDS CMD...: run, keep the log, note the exit status (124: timed out)
    local name=$1 log=$2 limit=$3 rc start
    shift 3
    start=$(date +%s)
    echo "::: $name"
    timeout "$limit" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    note "$name: exit $rc ($(( $(date +%s) - start )) s)"
    [ "$rc" -eq 0 ] || FAILED=1
}

# ---------------------------------------------------------------- carried dependencies
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if compgen -G ".gl/*.deb" > /dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi

# ---------------------------------------------------------------- display
export __GLX_VENDOR_LIBRARY_NAME=${__GLX_VENDOR_LIBRARY_NAME:-nvidia}
[ "$DRY" = 1 ] && unset __GLX_VENDOR_LIBRARY_NAME  # no NVIDIA GL here: Mesa
XPID=""
if [ -z "${DISPLAY:-}" ]; then
    XCMD=${XVFB:-$(command -v Xvfb || true)}
    if [ -n "$XCMD" ]; then
        $XCMD -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp -noreset 3>"$OUT/.display" 2>"$OUT/xvfb.log" &
        XPID=$!
        for _ in $(seq 100); do [ -s "$OUT/.display" ] && break; sleep 0.1; done
        [ -s "$OUT/.display" ] && export DISPLAY=":$(tr -d '\n' < "$OUT/.display")"
    fi
fi
cleanup() { [ -n "$XPID" ] && kill "$XPID" 2>/dev/null; rm -f "$OUT/.display"; }
trap cleanup EXIT

# ---------------------------------------------------------------- 1. what is there
{
    echo "date: $(date -u +%FT%TZ)  dry run: $DRY  DISPLAY=${DISPLAY:-none}"
    if command -v nvidia-smi >/dev/null; then nvidia-smi -L; else echo "nvidia-smi: not on PATH"; fi
    "$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
    "$PY" -c 'import cuda.bindings.runtime as r; print("cuda-bindings runtime", r.cudaRuntimeGetVersion())' 2>&1 | tail -1
    "$PY" -c 'import pycuda.gl; print("pycuda.gl importable")' 2>&1 | tail -1
    "$PY" -c 'from viz.gfx.window import create_window, gl_info; create_window("gpu-check", 64, 64, visible=False); print("GL:", gl_info())' 2>&1 | tail -1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
REQUIRE=""
if [ "$DRY" = 0 ]; then
    "$PY" -c 'import cuda.bindings.runtime' 2>/dev/null && REQUIRE="cuda-bindings"
    "$PY" -c 'import pycuda.gl' 2>/dev/null && REQUIRE="${REQUIRE:+$REQUIRE,}pycuda"
    grep -q "GL_RENDERER.*NVIDIA" "$OUT/env.txt" || note "WARNING: the window's GL is not NVIDIA's: interop cannot run"
fi
note "interop backends required to run: ${REQUIRE:-none}"

# ---------------------------------------------------------------- 2. the gpu-marked tests
export TRIPLANE_REQUIRE_INTEROP=$REQUIRE PYTHONUNBUFFERED=1
step "gpu tests" "$OUT/pytest.txt" 420 \
    "$PY" -m pytest -q -rs -p no:cacheprovider -m gpu --continue-on-collection-errors tests

# ---------------------------------------------------------------- 3. the benchmark
if [ "$DRY" = 1 ]; then
    BENCH=(--device cpu --network builtin --frames 3 --warmup 1)
else
    BENCH=(--frames 300 --warmup 30)
fi
step "bench_gpu" "$OUT/bench.txt" 300 "$PY" bench/bench_gpu.py "${BENCH[@]}"

# ---------------------------------------------------------------- summary
{
    echo "---- failures"
    grep -hE "^(FAILED|ERROR)|[0-9]+ (failed|error)|replay check.*FAIL" "$OUT/pytest.txt" "$OUT/bench.txt" || echo "none"
    echo "---- skipped gpu tests"
    grep -hE "^SKIPPED" "$OUT/pytest.txt" | head -40 || true
    echo "---- bench"
    grep -hE "FPS|read-back:|CUDA graphs|replay check" "$OUT/bench.txt" || true
} >> "$SUMMARY"
cat "$SUMMARY"
exit "$FAILED"
