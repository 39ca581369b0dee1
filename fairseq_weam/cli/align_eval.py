"""fairseq-weam-align-eval: word alignments from a checkpoint's contextual embeddings
(argmax both directions, intersected) scored against gold: precision, recall, AER.

    fairseq-weam-align-eval --checkpoint CKPT --data DATA --src test.de --tgt test.en \
        --gold test.gold --layer all --json aer.json
"""

import argparse
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import ArgumentParser, output_file, text_file
from fairseq_weam.cli.encoder_args import add_encoder_args, check_encoder_args, encoder_from_args
from fairseq_weam.core.atomic import write_json_atomic, write_text_atomic
from fairseq_weam.data.alignment import format_pharaoh
from fairseq_weam.evaluation import alignment_quality, evaluate


def get_parser():
    p = ArgumentParser(
        prog="fairseq-weam-align-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_encoder_args(p, layer_lists=True)
    p.add_argument("--src", required=True, type=text_file, help="whitespace-tokenized source sentences")
    p.add_argument("--tgt", required=True, type=text_file, help="whitespace-tokenized target sentences")
    p.add_argument("--gold", required=True, type=text_file, help="gold links per line: i-j sure, i?j (or ipj) possible")
    p.add_argument("--one-indexed", action="store_true", help="gold word indices start at 1")
    p.add_argument("--extraction", choices=alignment_quality.EXTRACTIONS, default="intersect")
    p.add_argument("--word-pooling", choices=("mean", "first"), default="mean", help="pieces -> word vector")
    p.add_argument("--json", type=output_file, help="write scores here")
    p.add_argument(
        "--output-alignments",
        type=output_file,
        help="write the predicted links (Pharaoh, 0-indexed) of the first layer here",
    )
    return p


def run(argv=None):
    """Parse ``argv`` and run; returns the results (for tests and scripts)."""
    args = get_parser().parse_args(argv)
    check_encoder_args(args)
    encoder = encoder_from_args(args)
    # --layer all: one row per hidden state, to see where alignment emerges.
    layers = range(encoder.num_layers + 1) if args.layer == "all" else args.layer.split(",")
    scores, predictions = evaluate.evaluate_alignment(
        encoder,
        args.src,
        args.tgt,
        args.gold,
        layers,
        args.extraction,
        args.word_pooling,
        args.one_indexed,
        args.batch_size,
    )
    sys.stdout.write("| layer | precision | recall | AER |\n|---|---|---|---|\n")
    for layer, s in scores.items():
        sys.stdout.write(f"| {layer} | {100 * s['precision']:.1f} | {100 * s['recall']:.1f} | {100 * s['aer']:.1f} |\n")
    if args.json:
        write_json_atomic(
            args.json,
            {
                "checkpoint": args.checkpoint,
                "extraction": args.extraction,
                "scores": {str(k): v for k, v in scores.items()},
            },
        )
    if args.output_alignments:
        links = next(iter(predictions.values()))
        write_text_atomic(args.output_alignments, "".join(format_pharaoh(sorted(x)) + "\n" for x in links))
    return scores


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli("fairseq-weam-align-eval", run, argv)


if __name__ == "__main__":
    sys.exit(main())
