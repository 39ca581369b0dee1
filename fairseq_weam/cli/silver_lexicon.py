"""fairseq-weam-lexicon: silver BLI lexicons (SRC-XX.txt, MUSE format) from fast_align links of
the corpus's held-out pairs, for fairseq-weam-bli --lexicon-dir when no human dictionary is at hand.

    fairseq-weam-lexicon --corpus corpus/ --data data/ --out lexicons/

--out is written whole or not at all (a temporary directory renamed at the end); an existing
--out is refused unless --overwrite, and kept as it was when the new run fails.

The aligner is trained on the held-out pairs plus CORPUS/train.SRC-XX.* (more data, better
links; --heldout-only to skip), and pairs are read off the held-out pairs' links only. See
fairseq_weam/evaluation/silver_lexicon.py for the selection rules.
"""

import argparse
import functools
import os
import sys
import tempfile
import time

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import ArgumentParser, input_dir, non_negative_int, output_dir, positive_int, probability
from fairseq_weam.core.checks import check_text_files
from fairseq_weam.core.data_dir import PreparedData
from fairseq_weam.core.outdir import atomic_output_dir, check_output_dir
from fairseq_weam.core.pretokenize import pretokenize
from fairseq_weam.evaluation import retrieval, silver_lexicon
from fairseq_weam.evaluation.evaluate import find_parallel_sets
from fairseq_weam.prepare.aligners import fast_align

PROG = "fairseq-weam-lexicon"


def get_parser():
    p = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--corpus",
        required=True,
        type=input_dir,
        help="fairseq-weam-corpus output: heldout/SRC-XX.{SRC,XX}, train.SRC-XX.{SRC,XX}",
    )
    p.add_argument(
        "--out",
        required=True,
        type=output_dir,
        help="directory for the SRC-XX.txt lexicons (refused if it exists, unless --overwrite)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (only once the new one is complete)",
    )
    p.add_argument(
        "--data",
        type=input_dir,
        help="prepared data dir: pretokenize like it (summary.json); default: CJK split, as prepare does",
    )
    p.add_argument("--src-lang", default="en")
    p.add_argument("--langs", help="comma-separated subset of the held-out languages")
    p.add_argument("--heldout-only", action="store_true", help="train the aligner on the held-out pairs alone")
    p.add_argument("--min-count", type=positive_int, default=3, help="links of a pair in the held-out data (default 3)")
    p.add_argument("--min-share", type=probability, default=0.3, help="share of the source word's links (default 0.3)")
    p.add_argument(
        "--max-pairs", type=non_negative_int, default=1000, help="keep the N most linked source words (0: all)"
    )
    return p


def lines_of(src_path, tgt_path, pretok):
    src, tgt = retrieval.read_parallel(src_path, tgt_path)
    return [pretok(s).split() for s in src], [pretok(t).split() for t in tgt]


def run(argv=None):
    args = get_parser().parse_args(argv)
    pretok = PreparedData(args.data).pretokenizer() if args.data else functools.partial(pretokenize, split_cjk=True)
    sets = find_parallel_sets(
        os.path.join(args.corpus, "heldout"), args.src_lang, args.langs.split(",") if args.langs else None
    )
    check_output_dir(args.out, args.overwrite, [args.corpus])
    trains = {}
    for lang, pair in sets.items():  # every file read is UTF-8 text, before any alignment
        check_text_files(pair, "--corpus")
        train = [os.path.join(args.corpus, f"train.{args.src_lang}-{lang}.{x}") for x in (args.src_lang, lang)]
        if not args.heldout_only and all(os.path.exists(p) for p in train):
            trains[lang] = check_text_files(train, "--corpus")
    with atomic_output_dir(args.out, args.overwrite, [args.corpus]) as tmp:
        return _induce(args, sets, trains, pretok, tmp)


def _induce(args, sets, trains, pretok, out):
    summary = {}
    print("| pair | held-out pairs | aligner pairs | lexicon pairs | seconds |\n|---|---|---|---|---|")
    for lang, (src_path, tgt_path) in sets.items():
        start = time.time()
        src, tgt = lines_of(src_path, tgt_path, pretok)
        n_heldout = len(src)
        if lang in trains:
            more_src, more_tgt = lines_of(*trains[lang], pretok)
            src, tgt = src + more_src, tgt + more_tgt
        with tempfile.TemporaryDirectory() as tmp:
            links = fast_align(src, tgt, tmp, desc=f"fast_align {args.src_lang}-{lang}")
        offsets = links.counts.cumsum()
        per_pair = [links.flat[o - c : o].tolist() for o, c in zip(offsets[:n_heldout], links.counts[:n_heldout])]
        pairs = silver_lexicon.induce_lexicon(
            src[:n_heldout], tgt[:n_heldout], per_pair, args.min_count, args.min_share, args.max_pairs or None
        )
        name = f"{args.src_lang}-{lang}"
        if pairs:  # an empty file would not be a valid lexicon
            silver_lexicon.write_lexicon(os.path.join(out, f"{name}.txt"), pairs)
        summary[name] = len(pairs)
        written = len(pairs) if pairs else "0 (no file)"
        print(f"| {name} | {n_heldout} | {len(src)} | {written} | {time.time() - start:.0f} |", flush=True)
    return summary


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli(PROG, run, argv)


if __name__ == "__main__":
    sys.exit(main())
