#!/usr/bin/env bash
# Set up ./.venv if needed, then lint (ruff check), check the formatting (ruff format --check) and
# run the whole test suite (offline, CPU only). Config: pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest tests "$@"
