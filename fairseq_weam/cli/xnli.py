"""fairseq-weam-xnli: zero-shot XNLI (convert MNLI/XNLI, fine-tune on English, test everywhere).

    fairseq-weam-xnli prepare  --pretrain-data DATA --mnli-train T --xnli-dev D --xnli-test X --out NLI
    fairseq-weam-xnli finetune --checkpoint CKPT --data NLI --save-dir FT [-- extra fairseq-train args]
    fairseq-weam-xnli evaluate --checkpoint FT/checkpoint_best.pt --data NLI --json out.json
    fairseq-weam-xnli run      (all three; writes OUT/xnli.json and OUT/xnli.md)

XTREME's processed copy: --xnli-dev xtreme/download/xnli --xnli-test xtreme/download/xnli
(the dev-XX.tsv / test-XX.tsv files in it; --xnli-test-labels DIR for the withheld test labels).
"""

import argparse
import logging
import os
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import (
    ArgumentParser,
    binary_file,
    float_range,
    input_dir,
    output_dir,
    output_file,
    positive_float,
    positive_int,
    text_file,
    text_file_or_dir,
)
from fairseq_weam.core import device
from fairseq_weam.core.atomic import write_json_atomic, write_text_atomic
from fairseq_weam.core.checks import check_input_file, check_sentencepiece_model
from fairseq_weam.core.data_dir import PreparedData
from fairseq_weam.core.outdir import atomic_output_dir, check_output_dir
from fairseq_weam.evaluation import xnli


def _split_passthrough(argv):
    if "--" in argv:
        k = argv.index("--")
        return argv[:k], argv[k + 1 :]
    return argv, []


def _prepare_args(p, need_out=True):
    p.add_argument("--pretrain-data", required=True, type=input_dir, help="pre-training data dir (spm.model, dict.txt)")
    p.add_argument("--spm-model", type=binary_file, help="default: PRETRAIN_DATA/spm.model")
    p.add_argument(
        "--mnli-train", required=True, type=text_file, help="GLUE MNLI train.tsv (or XNLI-MT multinli.train.en.tsv)"
    )
    p.add_argument(
        "--mnli-dev", type=text_file, help="GLUE MNLI dev_matched.tsv (validation when --xnli-dev is not given)"
    )
    p.add_argument(
        "--xnli-dev",
        nargs="+",
        type=text_file_or_dir,
        metavar="FILE_OR_DIR",
        help="XNLI-1.0 xnli.dev.tsv, or XTREME's dev-XX.tsv files / their directory "
        "(the English part is the validation set)",
    )
    p.add_argument(
        "--xnli-test",
        nargs="+",
        type=text_file_or_dir,
        metavar="FILE_OR_DIR",
        help="XNLI-1.0 xnli.test.tsv, or XTREME's test-XX.tsv files / their directory",
    )
    p.add_argument(
        "--xnli-test-labels",
        metavar="DIR",
        type=input_dir,
        help="XTREME's withheld test labels (DIR/test-XX.tsv, one label per line) for unlabelled test files",
    )
    p.add_argument("--max-train", type=positive_int, help="use only the first N training examples")


def _finetune_args(p):
    device.add_args(p)
    p.add_argument("--max-update", type=positive_int, default=10000)
    p.add_argument("--lr", type=positive_float, default=1e-5)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--warmup-ratio", type=float_range(0, 1, max_open=True), default=0.06)


def get_parser():
    parser = ArgumentParser(
        prog="fairseq-weam-xnli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="convert MNLI / XNLI TSVs to sentence_prediction data")
    _prepare_args(p)
    p.add_argument(
        "--out", required=True, type=output_dir, help="output directory (refused if it exists, unless --overwrite)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out (only once the new one is complete)"
    )
    p = sub.add_parser("finetune", help="fine-tune a pre-trained checkpoint on the English training set")
    p.add_argument("--checkpoint", required=True, type=binary_file, help="pre-trained checkpoint")
    p.add_argument("--data", required=True, type=input_dir, help="output of `prepare`")
    p.add_argument("--save-dir", required=True, type=output_dir)
    _finetune_args(p)
    p = sub.add_parser("evaluate", help="per-language accuracy of a fine-tuned checkpoint")
    p.add_argument("--checkpoint", required=True, type=binary_file, help="fine-tuned checkpoint")
    p.add_argument("--data", required=True, type=input_dir)
    p.add_argument("--splits", help="comma-separated; default every xnli_* split")
    p.add_argument("--json", type=output_file, help="write the results here")
    p.add_argument(
        "--predictions",
        metavar="DIR",
        type=output_dir,
        help="write predicted labels as XTREME's DIR/test-XX.tsv, dev-XX.tsv",
    )
    p.add_argument("--batch-size", type=positive_int, default=64)
    device.add_args(p)
    p = sub.add_parser("run", help="prepare + finetune + evaluate")
    p.add_argument("--checkpoint", required=True, type=binary_file, help="pre-trained checkpoint")
    _prepare_args(p)
    p.add_argument(
        "--out",
        required=True,
        type=output_dir,
        help="writes data/, finetune/, xnli.json, xnli.md, predictions/ here (a rerun resumes)",
    )
    _finetune_args(p)
    return parser


def _finetune_kwargs(args, extra):
    return dict(
        max_update=args.max_update,
        lr=args.lr,
        batch_size=args.batch_size,
        warmup_ratio=args.warmup_ratio,
        extra_args=extra,
        device_flags=device.fairseq_train_flags(*device.from_args(args)),
    )


def _evaluate_kwargs(args):
    where, dtype = device.from_args(args)
    return dict(device=where, dtype=dtype)


def _prepare(args, out, overwrite):
    """Convert the TSVs into ``out``, whole or not at all: an existing ``out`` is replaced only
    (``overwrite``) once the new one is complete."""
    spm_model = args.spm_model or os.path.join(args.pretrain_data, "spm.model")
    dict_path = os.path.join(args.pretrain_data, "dict.txt")
    check_output_dir(out, overwrite)
    check_sentencepiece_model(spm_model, "--spm-model" if args.spm_model else "--pretrain-data")
    check_input_file(dict_path, "--pretrain-data")
    with atomic_output_dir(out, overwrite) as tmp:
        return _prepare_into(args, tmp)


def _prepare_into(args, out):
    return xnli.prepare_data(
        out,
        PreparedData(args.pretrain_data, args.spm_model),
        None,
        args.mnli_train,
        args.mnli_dev,
        args.xnli_dev,
        args.xnli_test,
        args.max_train,
        args.xnli_test_labels,
    )


def _report(results, json_path=None, md_path=None, extra=None):
    table = xnli.format_table(results)
    print(table, end="")
    if json_path:
        write_json_atomic(json_path, {**(extra or {}), "results": results})
    if md_path:
        write_text_atomic(md_path, table)


def run(argv=None):
    """Parse ``argv`` and run; returns the results (for tests and scripts)."""
    logging.basicConfig(
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO, stream=sys.stderr
    )
    argv, extra = _split_passthrough(list(sys.argv[1:] if argv is None else argv))
    args = get_parser().parse_args(argv)
    if args.command == "prepare":
        for split, info in _prepare(args, args.out, args.overwrite).items():
            print(f"{split}\t{info['lang']}\t{info['n']}")
    elif args.command == "finetune":
        device.from_args(args)
        print(xnli.finetune(args.checkpoint, args.data, args.save_dir, **_finetune_kwargs(args, extra)))
    elif args.command == "evaluate":
        splits = args.splits.split(",") if args.splits else None
        results = xnli.evaluate(
            args.checkpoint,
            args.data,
            splits,
            args.batch_size,
            predictions_dir=args.predictions,
            **_evaluate_kwargs(args),
        )
        _report(results, args.json, extra={"checkpoint": args.checkpoint})
    else:
        device.from_args(args)
        data = os.path.join(args.out, "data")
        _prepare(args, data, overwrite=True)  # a rerun of `run` converts again, replacing data/ when done
        best = xnli.finetune(args.checkpoint, data, os.path.join(args.out, "finetune"), **_finetune_kwargs(args, extra))
        results = xnli.evaluate(
            best, data, predictions_dir=os.path.join(args.out, "predictions"), **_evaluate_kwargs(args)
        )
        _report(
            results,
            os.path.join(args.out, "xnli.json"),
            os.path.join(args.out, "xnli.md"),
            extra={"pretrained": args.checkpoint, "finetuned": best},
        )


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli("fairseq-weam-xnli", run, argv)


if __name__ == "__main__":
    sys.exit(main())
