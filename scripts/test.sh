#!/usr/bin/env bash
# Set everything up (idempotent, test extras included), then run the whole test suite,
# browser tests in headless Chromium included. Screenshots land in artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
