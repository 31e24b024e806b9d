#!/usr/bin/env bash
# Set everything up (idempotent, test extras included), then run the whole test suite,
# browser tests in headless Chromium included. Screenshots land in artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
# Tests run in parallel worker processes (pytest-xdist), a test file per worker at a time so
# module fixtures are built once, the longest files first (tests/conftest.py);
# COWDEMO_TEST_WORKERS=0 runs them in this process. One math thread per process while workers
# share the cores (measured here: 2 workers x 1 thread run CPU-bound tests ~20% faster than
# 2 x 2 threads fighting over 2 cores).
workers=${COWDEMO_TEST_WORKERS:-2}
if [[ $workers != 0 ]]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile --durations=25 "$@"
