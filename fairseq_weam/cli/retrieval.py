"""fairseq-weam-retrieval: top-1 bitext retrieval accuracy (cosine and ratio margin), both
directions, per language, for a pre-trained checkpoint.

    fairseq-weam-retrieval --checkpoint CKPT --data DATA --heldout CORPUS/heldout --json r.json
    fairseq-weam-retrieval --checkpoint CKPT --data DATA --src x.en --tgt x.de --lang de
    fairseq-weam-retrieval --checkpoint CKPT --data DATA --tatoeba LASER/data/tatoeba/v1 --json t.json
    fairseq-weam-retrieval --checkpoint CKPT --data DATA --tatoeba xtreme/download/tatoeba \
        --tatoeba-gold LASER/data/tatoeba/v1 --tatoeba-predictions predictions/tatoeba
"""

import argparse
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import (
    ArgumentParser,
    input_dir,
    non_negative_int,
    output_dir,
    output_file,
    positive_int,
    text_file,
)
from fairseq_weam.cli.encoder_args import add_encoder_args, check_encoder_args, encoder_from_args
from fairseq_weam.core.atomic import write_json_atomic
from fairseq_weam.core.checks import check_text_files
from fairseq_weam.evaluation import evaluate, retrieval, tatoeba
from fairseq_weam.evaluation.embeddings import POOLINGS


def get_parser():
    p = ArgumentParser(
        prog="fairseq-weam-retrieval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_encoder_args(p)
    p.add_argument(
        "--heldout", type=input_dir, help="dir with SRC-XX.SRC / SRC-XX.XX line-aligned files (the corpus's heldout/)"
    )
    p.add_argument(
        "--tatoeba",
        metavar="DIR",
        type=input_dir,
        help="every Tatoeba pair in DIR: LASER originals (tatoeba.XXX-eng.*) or XTREME's processed copy (xx-en.*)",
    )
    p.add_argument(
        "--tatoeba-gold",
        metavar="DIR",
        type=input_dir,
        help="gold for XTREME's copy: the LASER originals or XTREME's label files test-xx.tsv",
    )
    p.add_argument(
        "--tatoeba-predictions",
        metavar="DIR",
        type=output_dir,
        help="write XTREME's submission files DIR/test-xx.tsv for XTREME's copy (first of --methods)",
    )
    p.add_argument("--src", type=text_file, help="one source file (instead of --heldout)")
    p.add_argument("--tgt", type=text_file, help="its line-aligned translation")
    p.add_argument("--lang", default="xx", help="name of the --tgt language in the report")
    p.add_argument("--src-lang", default="en")
    p.add_argument("--langs", help="comma-separated subset of the held-out languages")
    p.add_argument("--pooling", choices=POOLINGS, default="mean")
    p.add_argument("--methods", default="cosine,margin", help="comma-separated: cosine, margin")
    p.add_argument("--k", type=positive_int, default=4, help="neighbours in the margin's k-NN means (LASER: 4)")
    p.add_argument(
        "--score-batch-size", type=positive_int, default=1024, help="queries scored at once against all candidates"
    )
    p.add_argument("--max-sentences", type=positive_int, help="first N pairs of each set")
    p.add_argument("--faiss", action="store_true", help="k-NN search with faiss (must be installed)")
    p.add_argument(
        "--min-heldout",
        type=non_negative_int,
        default=100,
        help="languages with fewer held-out pairs are reported but left out of the averages (default: %(default)s)",
    )
    p.add_argument("--json", type=output_file, help="write results here")
    return p


def run(argv=None):
    """Parse ``argv`` and run; returns the results (for tests and scripts)."""
    args = get_parser().parse_args(argv)
    if sum(map(bool, (args.heldout, args.src and args.tgt, args.tatoeba))) != 1:
        get_parser().error("give one of --heldout, --tatoeba, or both --src and --tgt")
    methods = tuple(m for m in args.methods.split(",") if m)
    if set(methods) - set(retrieval.METHODS):
        get_parser().error(f"--methods: choose from {retrieval.METHODS}")
    if args.faiss and retrieval._faiss() is None:
        get_parser().error("--faiss: faiss is not installed (pip install faiss-cpu)")
    check_encoder_args(args)
    if args.tatoeba:
        sets = tatoeba.find_sets(args.tatoeba, args.tatoeba_gold, args.langs.split(",") if args.langs else None)
        for s in sets.values():  # every file read is UTF-8 text, before the model is loaded
            check_text_files(filter(None, (s.xx_path, s.en_path, s.gold_path, s.laser_xx_path)), "--tatoeba")
        encoder = encoder_from_args(args)
        results = tatoeba.evaluate(
            encoder,
            sets,
            args.pooling,
            args.layer,
            args.k,
            methods,
            args.batch_size,
            args.score_batch_size,
            args.faiss,
            args.tatoeba_predictions,
        )
        sys.stdout.write(tatoeba.format_table(results, methods))
        if args.json:
            config = {k: getattr(args, k) for k in ("checkpoint", "pooling", "k", "tatoeba", "tatoeba_gold")}
            config.update(
                layer=encoder.resolve_layer(args.layer),
                xtreme_direction=tatoeba.XTREME_DIRECTION,
                device=str(encoder.device),
                dtype=str(encoder.dtype).replace("torch.", ""),
            )
            write_json_atomic(args.json, {"config": config, "results": results})
        return results
    if args.heldout:
        sets = evaluate.find_parallel_sets(args.heldout, args.src_lang, args.langs.split(",") if args.langs else None)
        for pair in sets.values():
            check_text_files(pair, "--heldout")
    else:
        sets = {args.lang: (args.src, args.tgt)}
    encoder = encoder_from_args(args)
    results = evaluate.evaluate_retrieval(
        encoder,
        sets,
        args.pooling,
        args.layer,
        args.k,
        methods,
        args.batch_size,
        args.score_batch_size,
        args.max_sentences,
        args.faiss,
    )
    sys.stdout.write(retrieval.format_table(results, args.src_lang, args.min_heldout))
    if args.json:
        config = {k: getattr(args, k) for k in ("checkpoint", "pooling", "k", "max_sentences", "min_heldout")}
        config.update(
            layer=encoder.resolve_layer(args.layer),
            device=str(encoder.device),
            dtype=str(encoder.dtype).replace("torch.", ""),
        )
        write_json_atomic(
            args.json, {"config": config, "averages": retrieval.averages(results, args.min_heldout), "results": results}
        )
    return results


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli("fairseq-weam-retrieval", run, argv)


if __name__ == "__main__":
    sys.exit(main())
