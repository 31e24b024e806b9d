#!/usr/bin/env bash
# One-shot GPU check (README "GPU check"): sets up what the app needs, then runs every GPU path
# once (batched prediction per backend, AMP training steps, a one-process NCCL DDP run, a short
# tracking run, the benchmarks on cuda) and writes one summary, gpu-check.json by default.
#   bash scripts/gpu-check.sh [--out FILE]    on a machine with CUDA (under 8 minutes)
#   bash scripts/gpu-check.sh --dry-run       the CPU fallback with tiny sizes (run by the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
exec .venv/bin/python scripts/gpu_check.py "$@"
