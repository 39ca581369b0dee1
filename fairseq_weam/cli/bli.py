"""fairseq-weam-bli: bilingual lexicon induction (word translation) with a pre-trained
checkpoint's word vectors: precision@1 and @5, cosine and CSLS nearest neighbours, both
directions, per lexicon.

    fairseq-weam-bli --checkpoint CKPT --data DATA --lexicon en-fr.txt --json bli.json
    fairseq-weam-bli --checkpoint CKPT --data DATA --lexicon-dir lexicons/ \\
        --text corpus/heldout/en-fr.en corpus/heldout/en-fr.fr --json bli.json
"""

import argparse
import os
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import ArgumentParser, input_dir, output_file, positive_int, text_file
from fairseq_weam.cli.encoder_args import add_encoder_args, check_encoder_args, encoder_from_args
from fairseq_weam.core.atomic import write_json_atomic
from fairseq_weam.core.checks import check_input_file, check_text_files
from fairseq_weam.evaluation import bli, evaluate
from fairseq_weam.evaluation.embeddings import POOLINGS
from fairseq_weam.evaluation.word_vectors import texts_by_language

PROG = "fairseq-weam-bli"


def get_parser():
    p = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_encoder_args(p)
    p.add_argument(
        "--lexicon", type=text_file, help="a MUSE dictionary file: 'src_word tgt_word' per line, named SRC-TGT.txt"
    )
    p.add_argument("--lexicon-dir", type=input_dir, help="score every SRC-TGT.txt (or SRC-TGT.NAME.txt) in this dir")
    p.add_argument("--pair", help="SRC-TGT languages of --lexicon when its name does not say them")
    p.add_argument(
        "--text",
        nargs="+",
        metavar="FILE",
        help="text for contextual vectors and --candidates text; each FILE named *.LANG "
        "(held-out layout en-fr.fr) or given as LANG:FILE",
    )
    p.add_argument("--vectors", help="comma-separated: isolated, context (default: both with --text, else isolated)")
    p.add_argument(
        "--candidates",
        choices=("lexicon", "text"),
        default="lexicon",
        help="lexicon: the lexicon's words of the other side (default); text: every word of that language's --text",
    )
    p.add_argument("--pooling", choices=POOLINGS, default="mean", help="isolated words: pooling over the word's pieces")
    p.add_argument(
        "--word-pooling",
        choices=("mean", "first"),
        default="mean",
        help="contextual vectors: a token's pieces -> its vector",
    )
    p.add_argument("--methods", default="cosine,csls", help="comma-separated: cosine, csls")
    p.add_argument("--k", type=positive_int, default=10, help="neighbours in CSLS's mean similarities (MUSE: 10)")
    p.add_argument(
        "--max-occurrences", type=positive_int, default=100, help="contextual vectors: at most N occurrences per word"
    )
    p.add_argument(
        "--lowercase", action="store_true", help="lowercase the lexicon and match the text case-insensitively"
    )
    p.add_argument(
        "--score-batch-size", type=positive_int, default=256, help="queries scored at once against all candidates"
    )
    p.add_argument("--json", type=output_file, help="write results here")
    return p


def run(argv=None):
    """Parse ``argv`` and run; returns the results (for tests and scripts)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if bool(args.lexicon) == bool(args.lexicon_dir):
        parser.error("give either --lexicon or --lexicon-dir")
    methods = tuple(m for m in args.methods.split(",") if m)
    if not methods or set(methods) - set(bli.METHODS):
        parser.error(f"--methods: choose from {bli.METHODS}")
    vectors = tuple(v for v in (args.vectors or "").split(",") if v) or None
    if vectors and set(vectors) - {"isolated", "context"}:
        parser.error("--vectors: choose from isolated, context")
    if not args.text and ((vectors and "context" in vectors) or args.candidates == "text"):
        parser.error("--vectors context and --candidates text need --text")
    langs = None
    if args.pair:
        langs = args.pair.split("-")
        if len(langs) != 2 or not all(langs):
            parser.error(f"--pair: expected SRC-TGT, not {args.pair!r}")
    check_encoder_args(args)
    lexicons = bli.find_lexicons(args.lexicon_dir) if args.lexicon_dir else evaluate.lexicon_set(args.lexicon, langs)
    for name, (_, _, path) in lexicons.items():
        check_text_files([path], "--lexicon-dir" if args.lexicon_dir else "--lexicon")
        bli.read_lexicon(path)  # a malformed lexicon fails before the model is loaded
    for spec in args.text or ():  # FILE.LANG or LANG:FILE
        check_input_file(spec if os.path.exists(spec) or ":" not in spec else spec.partition(":")[2], "--text")
    texts = texts_by_language(args.text) if args.text else None
    for files in (texts or {}).values():
        check_text_files(files, "--text")
    encoder = encoder_from_args(args)  # --device / --fp16 / --bf16
    results = evaluate.evaluate_bli(
        encoder,
        lexicons,
        texts,
        vectors,
        args.candidates,
        args.layer,
        args.pooling,
        args.word_pooling,
        args.k,
        methods,
        args.max_occurrences,
        args.lowercase,
        args.batch_size,
        args.score_batch_size,
    )
    sys.stdout.write(bli.format_table(results, methods))
    if args.json:
        config = {
            k: getattr(args, k)
            for k in ("checkpoint", "candidates", "pooling", "word_pooling", "k", "max_occurrences", "lowercase")
        }
        config.update(
            layer=encoder.resolve_layer(args.layer),
            methods=list(methods),
            texts=texts,
            device=str(encoder.device),
            dtype=str(encoder.dtype).replace("torch.", ""),
        )
        write_json_atomic(args.json, {"config": config, "results": results})
    return results


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
