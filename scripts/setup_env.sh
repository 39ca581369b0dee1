#!/usr/bin/env bash
# Create ./.venv (Python 3.11) with everything fairseq-weam needs; safe to run again.
# torch is installed first, pinned to the CPU build, so nothing pulls a multi-GB CUDA wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip wheel setuptools
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==${WEAM_TORCH_VERSION:-2.13.0}"
fi
# fairseq-fixed builds from source the first time (about 3 minutes on 2 cores).
.venv/bin/python -m pip install -q -e ".[test]"
