#!/usr/bin/env bash
# Run the post-loading benchmarks on a CUDA machine in one call (at most ~8 minutes) and
# write their JSON.
#
#   bash bench/gpu.sh [OUTDIR]        # OUTDIR defaults to $OUT, else ./bench-gpu-out
#
# Run from the repository root. Needs a Python with a CUDA build of torch and transformers;
# pytest + pytest-benchmark are used when present (else only `loaderspec bench` runs). The
# package does not need to be installed: the source folders are mapped to their package
# names through a folder of symlinks on PYTHONPATH. Nothing is downloaded.
#
# Writes to OUTDIR:
#   env.txt             nvidia-smi, python, torch, CUDA, module availability
#   cli.json, cli.txt   `loaderspec bench --targets cpu,cuda` (X=reference; Y=vllm if importable)
#   pytest.json, pytest.txt   pytest-benchmark suite (bench/test_post_loading.py,
#                       bench/test_device_loading.py) with --benchmark-json
#   status.txt          exit status and wall time of each step
# Step time limits: cli 210 s, pytest 240 s (+ a few seconds of setup): under 8 minutes.
# BENCH_GPU_DRY_RUN=1 rehearses the script without CUDA (CPU + simulated device, small).
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="${1:-${OUT:-$ROOT/bench-gpu-out}}"
mkdir -p "$OUTDIR"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || PY=python

PKGS="$(mktemp -d)"
ln -s "$ROOT/reference/loaderspec_reference" "$PKGS/loaderspec_reference"
ln -s "$ROOT/kit/loaderspec" "$PKGS/loaderspec"
ln -s "$ROOT/bench" "$PKGS/loaderspec_bench"
ln -s "$ROOT/tests" "$PKGS/loaderspec_suites"
ln -s "$ROOT/spec" "$PKGS/loaderspec_spec"
export PYTHONPATH="$PKGS${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
export LOADERSPEC_CACHE_DIR="${LOADERSPEC_CACHE_DIR:-$PKGS/cache}"

: >"$OUTDIR/status.txt"
step() {  # step NAME LIMIT_S COMMAND...
  local name="$1" limit="$2"
  shift 2
  local start=$SECONDS
  timeout --signal=INT --kill-after=15 "$limit" "$@" >"$OUTDIR/$name.txt" 2>&1
  local rc=$?
  echo "$name rc=$rc wall_s=$((SECONDS - start)) limit_s=$limit" | tee -a "$OUTDIR/status.txt"
  tail -n 60 "$OUTDIR/$name.txt"
  return 0
}

{
  nvidia-smi 2>&1 || echo "nvidia-smi unavailable"
  "$PY" - <<'EOF' 2>&1
import importlib, platform, os
print("python", platform.python_version(), "cpus", os.cpu_count())
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
    if torch.cuda.is_available():
        print("device", torch.cuda.get_device_name(), "pinned stats", hasattr(torch.cuda, "host_memory_stats"))
except Exception as error:
    print("torch import failed:", error)
for name in ("transformers", "pytest", "pytest_benchmark", "vllm"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as error:
        print(name, "unavailable:", type(error).__name__, error)
EOF
} >"$OUTDIR/env.txt"
cat "$OUTDIR/env.txt"

TARGETS=cpu,cuda
CLI_EXTRA=(--dense-scale 4 --rounds 7)
PYTEST_EXTRA=(--bench-seconds 0.5 --bench-dense-scale 4)
if [ "${BENCH_GPU_DRY_RUN:-0}" = 1 ]; then
  # Rehearsal on a machine without CUDA: same steps, CPU + simulated device, small workloads.
  TARGETS=auto
  CLI_EXTRA=(--quick --rounds 3)
  PYTEST_EXTRA=(--bench-seconds 0.2 --bench-dense-scale 32 -k "1k or 4KiB or host")
  echo "dry run: no CUDA required" | tee -a "$OUTDIR/status.txt"
elif ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "no CUDA device visible to torch: nothing to benchmark on the GPU" | tee -a "$OUTDIR/status.txt"
  exit 1
fi

VS=()
if "$PY" -c "import vllm" >/dev/null 2>&1 && "$PY" -c "import loaderspec.adapters.vllm" >/dev/null 2>&1; then
  VS=(--vs vllm)
fi

cd "$ROOT" || exit 1
step cli 210 "$PY" -m loaderspec_bench.cli --targets "$TARGETS" "${CLI_EXTRA[@]}" \
  --json "$OUTDIR/cli.json" "${VS[@]}"

if "$PY" -c "import pytest, pytest_benchmark" >/dev/null 2>&1; then
  step pytest 240 "$PY" -m pytest bench/test_post_loading.py bench/test_device_loading.py \
    -p no:cacheprovider -q "${PYTEST_EXTRA[@]}" \
    --benchmark-json "$OUTDIR/pytest.json" --benchmark-columns=median,iqr,rounds
else
  echo "pytest or pytest-benchmark unavailable: pytest step skipped" | tee -a "$OUTDIR/status.txt"
fi
rm -rf "$PKGS"
cat "$OUTDIR/status.txt"
