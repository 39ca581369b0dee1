"""fairseq-weam-qa: zero-shot extractive QA, fine-tuned on English SQuAD, tested on MLQA / XQuAD.

    fairseq-weam-qa run --hf-model DIR --train train-v1.1.json \\
        --eval MLQA_V1/test/test-context-de-question-de.json --eval xquad/xquad.de.json --out OUT
    fairseq-weam-qa score --eval FILE.json --predictions PRED.json

`run` fine-tunes the transformers model in DIR (a QA head is added when it has none), predicts
every eval file and writes OUT/qa.json and OUT/qa.md; finished steps in OUT are reused. Without
--train, DIR must already be a fine-tuned QA model and is evaluated as it is. `score` computes
EM / F1 of an official-format prediction file ({id: answer}).
"""

import argparse
import json
import logging
import os
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import (
    ArgumentParser,
    UsageError,
    binary_file,
    input_dir,
    non_negative_float,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
    text_file,
)
from fairseq_weam.core.errors import OptionError
from fairseq_weam.evaluation.qa import FinetuneConfig, WindowConfig, choose_precision, data, metrics, runner


def _add_window_args(p):
    w = WindowConfig()
    p.add_argument(
        "--max-seq-length", type=positive_int, default=w.max_seq_length, help="tokens per window (default: %(default)s)"
    )
    p.add_argument(
        "--doc-stride",
        type=positive_int,
        default=w.doc_stride,
        help="tokens shared by consecutive windows of a long context (default: %(default)s)",
    )
    p.add_argument(
        "--max-query-length",
        type=positive_int,
        default=w.max_query_length,
        help="questions are cut to this many tokens (default: %(default)s)",
    )
    p.add_argument(
        "--max-answer-length",
        type=positive_int,
        default=w.max_answer_length,
        help="longest predicted answer, in tokens (default: %(default)s)",
    )
    p.add_argument(
        "--n-best", type=positive_int, default=w.n_best, help="start / end candidates per window (default: %(default)s)"
    )


def get_parser():
    parser = ArgumentParser(
        prog="fairseq-weam-qa", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="fine-tune on SQuAD-format English data, evaluate on MLQA / XQuAD files")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--hf-model", type=input_dir, help="transformers model directory (config.json, weights, tokenizer.json)"
    )
    model.add_argument(
        "--checkpoint",
        type=binary_file,
        help="a fairseq checkpoint of --task weam: exported to OUT/hf-export first "
        "(fairseq-weam-export-hf, with its tokenizer and feature checks), then fine-tuned",
    )
    p.add_argument(
        "--data", type=input_dir, help="with --checkpoint: the prepared data dir (dict.txt, spm.model, summary.json)"
    )
    p.add_argument(
        "--train",
        type=text_file,
        help="SQuAD v1.1-format training file (e.g. train-v1.1.json); omit to evaluate DIR as it is",
    )
    p.add_argument(
        "--eval",
        action="append",
        required=True,
        type=text_file,
        metavar="FILE.json",
        help="MLQA / XQuAD / SQuAD-format file to evaluate (repeat the flag for several)",
    )
    p.add_argument("--out", required=True, type=output_dir, help="writes finetune/, predictions/, qa.json, qa.md here")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="float16 mixed precision (CUDA only)")
    prec.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision")
    c = FinetuneConfig()
    p.add_argument("--epochs", type=positive_int, default=c.epochs, help="(default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=c.lr, help="(default: %(default)s)")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=c.batch_size,
        help="windows per forward pass in training (default: %(default)s)",
    )
    p.add_argument(
        "--grad-accum", type=positive_int, default=c.grad_accum, help="forward passes per update (default: %(default)s)"
    )
    p.add_argument("--warmup-steps", type=non_negative_int, default=c.warmup_steps, help="(default: %(default)s)")
    p.add_argument("--weight-decay", type=non_negative_float, default=c.weight_decay, help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=c.seed, help="(default: %(default)s)")
    p.add_argument("--max-steps", type=positive_int, help="stop the fine-tune after N updates (smoke runs)")
    p.add_argument("--max-train", type=positive_int, help="use only the first N training questions")
    p.add_argument("--eval-batch-size", type=positive_int, default=64, help="(default: %(default)s)")
    p.add_argument(
        "--normalization",
        choices=metrics.SCHEMES,
        help="one answer normalization for every file (default: MLQA's for MLQA files, SQuAD's otherwise)",
    )
    _add_window_args(p)
    p = sub.add_parser("score", help="EM / F1 of a prediction file ({id: answer}) on one eval file")
    p.add_argument("--eval", required=True, type=text_file, metavar="FILE.json")
    p.add_argument("--predictions", required=True, type=text_file, metavar="PRED.json")
    p.add_argument("--lang", help="answer language for --normalization mlqa (default: from an MLQA file name)")
    p.add_argument("--normalization", choices=metrics.SCHEMES)
    return parser


def _read_predictions(path):
    try:
        with open(path, encoding="utf-8") as f:
            preds = json.load(f)
    except json.JSONDecodeError as e:
        raise data.QADataError(f"{path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    if not isinstance(preds, dict):
        raise data.QADataError(f"{path}: expected {{question id: answer text}}")
    for qid, text in preds.items():
        if not isinstance(text, str):
            raise data.QADataError(f"{path}: the answer of id {qid} is {type(text).__name__}, expected a string")
    return preds


def run(argv=None):
    """Parse ``argv`` and run; returns the report (for tests and scripts)."""
    logging.basicConfig(
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO, stream=sys.stderr
    )
    args = get_parser().parse_args(argv)
    if args.command == "score":
        info = data.describe_file(args.eval)
        scheme = args.normalization or ("mlqa" if args.lang else info.scheme)
        lang = args.lang or info.context_lang
        try:
            metrics.check_scheme(scheme, lang)
        except OptionError as e:
            raise OptionError(f"{args.eval}: {e}") from None
        examples = data.read_squad(args.eval)
        if not data.has_gold(examples):
            raise data.QADataError(
                f"{args.eval}: every answer is blank (XTREME's test copies remove them); score with the original file"
            )
        golds = data.gold_answers(examples)
        report = {
            "file": args.eval,
            "normalization": scheme,
            "lang": lang,
            **metrics.score(golds, _read_predictions(args.predictions), lang, scheme),
        }
        print(json.dumps(report))
        return report
    if args.checkpoint and not args.data:
        raise UsageError("--checkpoint needs --data (the prepared data directory it was trained on)")
    precision = choose_precision(args.device, args.fp16, args.bf16)
    cfg = FinetuneConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        seed=args.seed,
        max_steps=args.max_steps,
    )
    window = WindowConfig(
        max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride,
        max_query_length=args.max_query_length,
        max_answer_length=args.max_answer_length,
        n_best=args.n_best,
    )
    hf_model, identity = args.hf_model, None
    if hf_model:  # before any fine-tuning: safetensors weights whose shapes match config.json
        from fairseq_weam.interop.model_dir import check_model_dir

        check_model_dir(hf_model)
    if args.checkpoint:
        hf_model, identity = exported_model(args.checkpoint, args.data, args.out)
    return runner.run_qa(
        hf_model,
        args.train,
        args.eval,
        args.out,
        precision,
        cfg,
        window,
        max_train=args.max_train,
        eval_batch_size=args.eval_batch_size,
        scheme=args.normalization,
        model_identity=identity,
    )


def exported_model(checkpoint, data_dir, out_dir):
    """``(OUT/hf-export, identity)``: the checkpoint exported to transformers once (kept while the
    checkpoint's SHA-256 is the same), and what identifies it for the fine-tune's reuse."""
    from fairseq_weam.interop import hf_export

    if not data_dir:
        raise OptionError("--checkpoint needs --data (the prepared data directory it was trained on)")
    identity = {
        "checkpoint": os.path.abspath(checkpoint),
        "sha256": hf_export.sha256(checkpoint),
        "data": os.path.abspath(data_dir),
    }
    target = os.path.join(out_dir, "hf-export")
    stamp = os.path.join(target, "weam_export.json")
    if os.path.exists(stamp):
        with open(stamp, encoding="utf-8") as f:
            if json.load(f).get("source_sha256") == identity["sha256"]:
                return target, identity
    os.makedirs(out_dir, exist_ok=True)
    hf_export.export(checkpoint, data_dir, target, overwrite=True)
    with open(stamp + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"source_sha256": identity["sha256"]}, f)
    os.replace(stamp + ".tmp", stamp)
    return target, identity


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli("fairseq-weam-qa", run, argv)


if __name__ == "__main__":
    sys.exit(main())
