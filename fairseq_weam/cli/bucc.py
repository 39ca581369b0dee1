"""fairseq-weam-bucc: BUCC 2018 parallel-sentence mining with a checkpoint's sentence vectors
(ratio margin, k = 4, threshold tuned on the dev split), scored as XTREME scores it.

    fairseq-weam-bucc --checkpoint CKPT --data DATA \
        --src bucc2018/de-en.test.de --tgt bucc2018/de-en.test.en \
        --threshold-from bucc2018/de-en.dev.de bucc2018/de-en.dev.en bucc2018/de-en.dev.gold \
        --predictions predictions/bucc2018/test-de.tsv --json bucc-de.json
    # with the test gold (BUCC's own training-gold), also precision / recall / F1:
    fairseq-weam-bucc ... --gold bucc2018-de-en/de-en.training.gold
"""

import argparse
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import ArgumentParser, finite_float, output_file, positive_int, text_file
from fairseq_weam.cli.encoder_args import add_encoder_args, check_encoder_args, encoder_from_args
from fairseq_weam.core.atomic import write_json_atomic
from fairseq_weam.evaluation import bucc, retrieval
from fairseq_weam.evaluation.embeddings import POOLINGS


def get_parser():
    p = ArgumentParser(
        prog="fairseq-weam-bucc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_encoder_args(p)
    p.add_argument(
        "--src", required=True, type=text_file, help="source pool to mine, ID<TAB>sentence (e.g. de-en.test.de)"
    )
    p.add_argument("--tgt", required=True, type=text_file, help="target pool, ID<TAB>sentence (e.g. de-en.test.en)")
    p.add_argument("--gold", type=text_file, help="gold SRC_ID<TAB>TGT_ID pairs of --src/--tgt: score the predictions")
    p.add_argument(
        "--threshold-from",
        nargs=3,
        type=text_file,
        metavar=("DEV_SRC", "DEV_TGT", "DEV_GOLD"),
        help="tune the margin threshold on this split (BUCC's sample / XTREME's dev)",
    )
    p.add_argument("--threshold", type=finite_float, help="use this margin threshold")
    p.add_argument("--pooling", choices=POOLINGS, default="mean")
    p.add_argument(
        "--k", type=positive_int, default=4, help="neighbours in the margin's k-NN means and candidate search"
    )
    p.add_argument(
        "--score-batch-size", type=positive_int, default=1024, help="queries searched at once against a pool"
    )
    p.add_argument("--faiss", action="store_true", help="k-NN search with faiss (pip install 'fairseq-weam[faiss]')")
    p.add_argument(
        "--predictions", type=output_file, help="write the predicted pairs here (XTREME's submission file test-xx.tsv)"
    )
    p.add_argument("--json", type=output_file, help="write thresholds and scores here")
    return p


def _table(rows):
    lines = ["| split | threshold | candidates | predicted | gold | precision | recall | F1 |", "|---" * 8 + "|"]
    for name, r in rows.items():
        cells = [f"{100 * r[m]:.2f}" if m in r else "-" for m in ("precision", "recall", "f1")]
        lines.append(
            f"| {name} | {r['threshold']:.4f} | {r['candidates']} | {r.get('predicted', '-')} | "
            f"{r.get('gold', '-')} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def run(argv=None):
    """Parse ``argv`` and run; returns the results (for tests and scripts)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.threshold_from and args.threshold is not None:
        parser.error("give --threshold-from or --threshold, not both")
    if not (args.threshold_from or args.threshold is not None or args.gold):
        parser.error("no threshold: give --threshold-from DEV_SRC DEV_TGT DEV_GOLD, --threshold, or --gold")
    if args.faiss and retrieval._faiss() is None:
        parser.error("--faiss: faiss is not installed (pip install 'fairseq-weam[faiss]')")
    check_encoder_args(args)
    # Read every file before the (long) encoding, so format errors come first.
    src, tgt = bucc.read_pool(args.src), bucc.read_pool(args.tgt)
    gold = bucc.read_gold(args.gold, src, tgt) if args.gold else None
    if args.threshold_from:
        dev_src, dev_tgt = bucc.read_pool(args.threshold_from[0]), bucc.read_pool(args.threshold_from[1])
        dev_gold = bucc.read_gold(args.threshold_from[2], dev_src, dev_tgt)
    encoder = encoder_from_args(args)
    mine_args = (args.pooling, args.layer, args.k, args.batch_size, args.score_batch_size, args.faiss)
    results = {}
    if args.threshold_from:
        dev = bucc.mine_pools(encoder, dev_src, dev_tgt, *mine_args)
        threshold = bucc.optimize_threshold(dev, dev_gold)
        predicted = bucc.extract(dev, threshold)
        results["dev"] = {
            "threshold": threshold,
            "candidates": len(dev),
            "predicted": len(predicted),
            "gold": len(dev_gold),
            **bucc.prf(predicted, dev_gold),
        }
        source = "dev"
    elif args.threshold is not None:
        threshold, source = args.threshold, "given"
    test = bucc.mine_pools(encoder, src, tgt, *mine_args)
    if not args.threshold_from and args.threshold is None:
        # LASER's bucc.sh does this on BUCC's training split; optimistic on the set it scores.
        threshold, source = bucc.optimize_threshold(test, gold), "tuned on --gold (optimistic)"
    predicted = bucc.extract(test, threshold)
    results["test"] = {
        "threshold": threshold,
        "threshold_from": source,
        "candidates": len(test),
        "predicted": len(predicted),
    }
    if gold is not None:
        results["test"].update(gold=len(gold), **bucc.prf(predicted, gold))
    sys.stdout.write(_table(results))
    if args.predictions:
        bucc.write_pairs(args.predictions, predicted)
    if args.json:
        config = {k: getattr(args, k) for k in ("checkpoint", "src", "tgt", "gold", "threshold_from", "pooling", "k")}
        config.update(
            layer=encoder.resolve_layer(args.layer),
            device=str(encoder.device),
            dtype=str(encoder.dtype).replace("torch.", ""),
        )
        write_json_atomic(args.json, {"config": config, "results": results})
    return results


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli("fairseq-weam-bucc", run, argv)


if __name__ == "__main__":
    sys.exit(main())
