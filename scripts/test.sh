#!/usr/bin/env bash
# Set everything up (idempotent, test extras included), then run the whole test suite,
# browser tests in headless Chromium included. Screenshots land in artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
# Tests run in parallel worker processes (pytest-xdist), a test file per worker at a time so
# module fixtures are built once; COWDEMO_TEST_WORKERS=0 runs them in this process.
exec .venv/bin/python -m pytest -n "${COWDEMO_TEST_WORKERS:-2}" --dist loadfile "$@"
