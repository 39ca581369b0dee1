#!/usr/bin/env bash
# The GPU check, in one call, for the day a CUDA machine is lent (about 10 minutes on one GPU):
#
#   1. the CUDA-only tests (the ones skipped without a GPU: tests named *cuda*);
#   2. scripts/benchmark_speed.py --device cuda at RoBERTa-base size (12 layers, 768 dims, 12
#      heads) with a 250k vocabulary, fp32 then fp16: masked_lm, weam (the default head: on CUDA
#      the unchunked one, apex's fused xentropy when apex is installed) and weam-chunked (1024 rows);
#   3. a short fairseq-train --fp16 WEAM run (the tiny model) on a synthetic prepared corpus;
#   4. fairseq-weam-retrieval --device cuda --fp16 with that checkpoint;
#
# then prints one table (check, result, seconds, figures). Every step's full output is kept in
# OUT/STEP.log. Without CUDA it prints one line and exits 2.
#
#   scripts/gpu_check.sh [OUT]          (default OUT: runs/gpu_check)
#
# Environment: PYTHON (default .venv/bin/python if present, else python3); GPU_CHECK_DATA and
# GPU_CHECK_SRC / GPU_CHECK_TGT (a prepared data dir and a line-aligned held-out pair, e.g.
# /work/data/data and corpus/heldout/en-fr.{en,fr}) instead of the synthetic corpus.
# Exit status: 0 when every step passed, 1 when one failed or timed out, 2 without CUDA.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)' >/dev/null 2>&1
case $? in
    0) ;;
    3)
        echo "gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False for $PY); nothing was run" >&2
        exit 2
        ;;
    *)
        echo "gpu_check: $PY cannot import torch; set PYTHON to the project's interpreter" >&2
        exit 1
        ;;
esac

OUT=${1:-runs/gpu_check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BIN=$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
ROWS=()
FAILED=0
START=$(date +%s)

# step NAME LIMIT_S CMD...: run CMD with a time limit, its output to OUT/NAME.log; add a row.
step() {
    local name=$1 limit=$2
    shift 2
    local t0 rc status
    t0=$(date +%s)
    echo "gpu_check: $name ..." >&2
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        status=ok
    elif [ $rc -eq 124 ]; then
        status="TIMEOUT (${limit} s)"
        FAILED=1
    else
        status="FAILED (exit $rc)"
        FAILED=1
    fi
    ROWS+=("| $name | $status | $(($(date +%s) - t0)) | $(summary "$name") |")
}

# The figures of a step, read back from its log.
summary() {
    local log="$OUT/$1.log"
    case $1 in
        cuda-tests) tail -n 1 "$log" | tr -d '=' | sed 's/^ *//' ;;
        bench-*)
            awk -F'|' '/^\| 250,000 \|/ {
                for (i = 2; i <= 8; i++) gsub(/ /, "", $i)
                printf "%s %s w/s (x%s), fwd+bwd %s MiB (x%s); ", $3, $5, $6, $7, $8 }' "$log"
            grep -o 'apex xentropy on this device: [A-Za-z]*' "$log" | head -n 1
            ;;
        train-fp16)
            "$PY" - "$log" <<'EOF' 2>/dev/null
import sys
from fairseq_weam.train_runner import json_records
recs = [r for r in json_records(open(sys.argv[1]).read()) if r["_tag"] == "train_inner"]
if recs:
    a, b = recs[0], recs[-1]
    print(f"loss {a['loss']} -> {b['loss']} over {b.get('num_updates')} updates; loss scale {b.get('loss_scale', '-')}; "
          f"{b.get('wps', '-')} words/s")
else:
    print("no train_inner record")
EOF
            ;;
        retrieval-fp16)
            "$PY" - "$OUT/retrieval.json" <<'EOF' 2>/dev/null || tail -n 1 "$log"
import json, sys
d = json.load(open(sys.argv[1]))
a = d["averages"]
print(f"{d['config']['device']} {d['config']['dtype']}: accuracy both directions, margin "
      f"{100 * a['margin']['mean']['macro']:.1f} %, cosine {100 * a['cosine']['mean']['macro']:.1f} %")
EOF
            ;;
        *) tail -n 1 "$log" ;;
    esac | tr '\n|' ' /' | cut -c1-400
}

GPU=$("$PY" -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA {torch.version.cuda}")')
APEX=$("$PY" -c 'from fairseq_weam.objectives.losses.prediction_loss import apex_xentropy; print("apex xentropy: " + ("yes" if apex_xentropy() else "no"))' 2>/dev/null)

# 1. CUDA-only tests.
step cuda-tests 150 "$PY" -m pytest -q -rs -p no:cacheprovider \
    tests/test_device.py tests/test_prediction_loss.py tests/test_qa.py -k cuda

# 2. Speed and memory at RoBERTa-base size, 250k vocabulary.
for dtype in fp32 fp16; do
    step "bench-$dtype" 120 "$PY" scripts/benchmark_speed.py --device cuda --dtype "$dtype" \
        --layers 12 --dim 768 --heads 12 --vocabs 250000 --batch-size 32 --steps 10 --warmup 2 \
        --chunk-rows 1024 --criteria masked_lm,weam,weam-chunked
done

# 3. A short fp16 WEAM pre-training run.
DATA=${GPU_CHECK_DATA:-}
SRC=${GPU_CHECK_SRC:-}
TGT=${GPU_CHECK_TGT:-}
if [ -z "$DATA" ]; then
    DATA="$OUT/data"
    SRC="$OUT/heldout.xx"
    TGT="$OUT/heldout.yy"
    step synthetic-data 45 "$PY" - "$OUT" <<'EOF'
import os, shutil, sys
sys.path.insert(0, "tests")
from synthetic_corpus import build_raw, make_pairs, preprocess

out = sys.argv[1]
build_raw(os.path.join(out, "raw"), n_train=2000, n_valid=100)
preprocess(os.path.join(out, "raw"), os.path.join(out, "data"))
shutil.copy(os.path.join(out, "raw", "spm.model"), os.path.join(out, "data", "spm.model"))
src, tgt, _ = make_pairs(200, seed=99)  # held-out pairs, raw text
for name, lines in (("heldout.xx", src), ("heldout.yy", tgt)):
    with open(os.path.join(out, name), "w") as f:
        f.write("\n".join(lines) + "\n")
print(f"synthetic corpus: 2000 train pairs, 100 valid, 200 held out in {out}")
EOF
fi
rm -rf "$OUT/checkpoints"
step train-fp16 90 "$BIN/fairseq-train" "$DATA" --user-dir fairseq_weam --task weam --criterion weam \
    --arch roberta --encoder-layers 2 --encoder-embed-dim 128 --encoder-ffn-embed-dim 256 \
    --encoder-attention-heads 4 --tokens-per-sample 128 --fp16 \
    --optimizer adam --adam-betas '(0.9,0.98)' --lr 1e-3 --lr-scheduler polynomial_decay \
    --warmup-updates 20 --total-num-update 200 --max-update 200 --batch-size 32 --num-workers 1 \
    --save-dir "$OUT/checkpoints" --no-epoch-checkpoints --log-format json --log-interval 20 \
    --no-progress-bar --seed 1

# 4. Retrieval on the GPU in fp16 with that checkpoint.
step retrieval-fp16 45 "$BIN/fairseq-weam-retrieval" --checkpoint "$OUT/checkpoints/checkpoint_last.pt" \
    --data "$DATA" --src "$SRC" --tgt "$TGT" --src-lang xx --lang yy --device cuda --fp16 \
    --json "$OUT/retrieval.json"

{
    echo
    echo "## gpu_check: $GPU; $APEX; $(date -u '+%Y-%m-%d %H:%M UTC'); $(($(date +%s) - START)) s in all; logs in $OUT"
    echo
    echo "| check | result | seconds | figures |"
    echo "|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/table.md"
exit $FAILED
