#!/usr/bin/env bash
# Pre-train the tiny WEAM model of the packaged hydra config on a prepared data directory:
#   bash examples/weam/pretrain_tiny.sh DATA [hydra overrides...]
# DATA comes from fairseq-weam-prepare (see docs/preparation.md). The configs ship inside the
# package: `fairseq-weam-user-dir --config-dir` prints where (weam_tiny, xlmr_base_continue).
set -euo pipefail
data=${1:?usage: pretrain_tiny.sh DATA [overrides...]}
shift
exec fairseq-hydra-train --config-dir "$(fairseq-weam-user-dir --config-dir)" --config-name weam_tiny \
    task.data="$data" common.user_dir="$(fairseq-weam-user-dir)" "$@"
