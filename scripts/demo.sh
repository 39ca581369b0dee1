#!/usr/bin/env bash
# The main job on the embedded default: set up .venv, build a real multilingual corpus offline
# (gettext catalogs), prepare it, pre-train a small masked-LM base on CPU, continue it with WEAM,
# evaluate retrieval of both.
# Extra arguments go to fairseq-weam-demo (see --help), e.g. --base-updates 3000 --max-update 1000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec .venv/bin/python -m fairseq_weam.cli.demo "$@"
