#!/usr/bin/env bash
# The GPU check of minigan's CUDA backend, in one run of under 8 minutes.
#
# For a machine with one NVIDIA GPU (written for an H200) where CuPy, Numba, numba-cuda and
# PyTorch are installed and nothing needs downloading. From the repository root:
#
#     bash benchmarks/gpu_check.sh            # results in $OUT, or ./gpu_results
#
# Steps (each under its own time limit, so one stuck step cannot eat the others' time;
# a failing step is reported and the next one still runs):
#   1. environment: GPU, driver, package versions, one Numba kernel on a CuPy array
#   2. pip install --no-deps --no-build-isolation -e .
#   3. python -m pytest -m gpu          (tests/test_cuda_device.py: the cuda device)
#   4. tests/test_cuda_kernels.py on the GPU (no simulator: CuPy arrays, larger shapes)
#   5. benchmarks/gpu_train_step.py: DCGAN-64 and DCGAN-28 iterations, batch 128, vs torch
# Outputs (7 files): environment.txt, pytest_gpu.txt, pytest_cuda_kernels.txt,
# gpu_train_step.txt, gpu_train_step.md, gpu_train_step.json, summary.txt.

set -u -o pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-./gpu_results}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
unset NUMBA_ENABLE_CUDASIM  # the real GPU, not the simulator
PYTHON="${PYTHON:-python3}"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

step() {  # step NAME SECONDS LOGFILE COMMAND...: run with a limit, log, record the outcome
    local name=$1 limit=$2 log=$3
    shift 3
    local start=$SECONDS
    echo "=== $name (limit ${limit}s)" | tee -a "$log"
    timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
    local status=$?
    local outcome="ok"
    [ "$status" -ne 0 ] && outcome="FAILED (exit $status)"
    [ "$status" -eq 124 ] && outcome="TIMED OUT after ${limit}s"
    echo "$name: $outcome in $((SECONDS - start))s" | tee -a "$SUMMARY"
    tail -n 3 "$log"
}

ENV="$OUT/environment.txt"
step "environment" 25 "$ENV" bash -c "
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    $PYTHON - <<'EOF'
import platform
print('python', platform.python_version())
for name in ('numpy', 'numba', 'numba_cuda', 'cupy', 'torch', 'hypothesis', 'pytest'):
    try:
        module = __import__(name)
        print(name, getattr(module, '__version__', '?'))
    except Exception as error:
        print(name, 'unavailable:', error)
import cupy
from numba import cuda
print('numba sees a GPU:', cuda.is_available())
cuda.detect()

@cuda.jit
def double(values):
    i = cuda.grid(1)
    if i < values.size:
        values[i] *= 2

values = cupy.arange(1000, dtype=cupy.float32)
double[4, 256](values)
assert float(values[999]) == 1998.0
print('a Numba kernel ran on a CuPy array: ok')
EOF"

step "install" 40 "$OUT/environment.txt" \
    "$PYTHON" -m pip install --no-deps --no-build-isolation -q -e .

# The first calls compile the Numba kernels (cached in kernels/cuda/__pycache__ for the
# steps after).
step "pytest -m gpu" 150 "$OUT/pytest_gpu.txt" \
    "$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider --durations=10 \
    --continue-on-collection-errors

step "kernel property tests on the GPU" 90 "$OUT/pytest_cuda_kernels.txt" \
    "$PYTHON" -m pytest tests/test_cuda_kernels.py -q -rs -p no:cacheprovider --durations=5

step "training iterations vs torch" 180 "$OUT/gpu_train_step.txt" \
    "$PYTHON" benchmarks/gpu_train_step.py --out "$OUT" --iterations 15 --warmup 3

echo "--- summary"
cat "$SUMMARY"
[ -f "$OUT/gpu_train_step.md" ] && cat "$OUT/gpu_train_step.md"
exit 0
