"""``fairseq-weam-prepare``: raw parallel text -> binarized, word-aligned WEAM data."""

import argparse
import sys

from ..prepare.aligners import ALIGNERS
from ..prepare.errors import PrepareError
from ..prepare.pipeline import PrepareOptions, prepare
from ..prepare.summary import format_summary


def get_parser():
    d = PrepareOptions(out="", trainpref="")
    p = argparse.ArgumentParser(
        prog="fairseq-weam-prepare",
        description="Tokenize (sentencepiece), word-align (fast_align) and binarize (fairseq) "
        "line-aligned parallel text into a directory that fairseq-train --task weam reads. "
        "See docs/preparation.md.",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--trainpref", required=True, help="text of pair SRC-TGT in PREFIX.SRC-TGT.SRC + PREFIX.SRC-TGT.TGT, or PREFIX.SRC-TGT with 'source ||| target' lines")
    io.add_argument("--validpref", help="same layout for the valid split; default: carve it out of train")
    io.add_argument("--destdir", required=True, help="output directory (refused if it exists, unless --overwrite)")
    io.add_argument("--lang-pairs", help="comma-separated SRC-TGT pairs; default: every pair found under --trainpref")
    io.add_argument("--valid-size", type=int, default=d.valid_size, help="valid pairs per language pair when carved from train (default: %(default)s) ...")
    io.add_argument("--valid-max-share", type=float, default=d.valid_max_share, help="... but at most this share of the pair, and at least 1 (default: %(default)s)")
    io.add_argument("--overwrite", action="store_true", help="replace an existing output directory (only once the new one is complete)")
    io.add_argument("--skip-bad-lines", action="store_true", help="drop bad lines (invalid UTF-8, empty, too long, bad alignments) and count them in the summary instead of stopping")
    io.add_argument("--max-positions", type=int, default=d.max_positions, help="longest laid-out pair <s> x </s></s> y </s> in subword tokens; use the --tokens-per-sample you will train with (default: %(default)s)")
    tok = p.add_argument_group("tokenization")
    tok.add_argument("--spm-model", help="existing sentencepiece model (e.g. XLM-R's sentencepiece.bpe.model); default: train a new one")
    tok.add_argument("--dictionary", help="the fairseq dict.txt that goes with --spm-model (e.g. XLM-R's); default: build one from the data")
    tok.add_argument("--vocab-size", type=int, default=d.vocab_size, help="new model: vocabulary size, a soft limit (default: %(default)s)")
    tok.add_argument("--character-coverage", type=float, default=d.character_coverage, help="new model (default: %(default)s)")
    tok.add_argument("--model-type", default=d.model_type, choices=["unigram", "bpe"], help="new model (default: %(default)s)")
    tok.add_argument("--spm-sampling-alpha", type=float, default=d.spm_sampling_alpha, help="new model: languages sampled with q ~ p**alpha for training it (default: %(default)s)")
    tok.add_argument("--spm-max-sentences", type=int, default=d.spm_max_sentences, help="new model: at most this many training sentences, 0 = all (default: %(default)s)")
    cjk = tok.add_mutually_exclusive_group()
    cjk.add_argument("--split-cjk", dest="split_cjk", action="store_true", default=None, help="make each CJK character a word (default unless --aligner pharaoh)")
    cjk.add_argument("--no-split-cjk", dest="split_cjk", action="store_false", help="keep CJK text as written")
    al = p.add_argument_group("alignment")
    al.add_argument("--aligner", choices=ALIGNERS, default=d.aligner, help="fast_align (Python binding, default), eflomal (if installed), or pharaoh: import PREFIX.SRC-TGT.ALIGN_SUFFIX files of word links i-j")
    al.add_argument("--align-suffix", default=d.align_suffix, help="--aligner pharaoh: suffix of the alignment files (default: %(default)s)")
    al.add_argument("--align-iterations", type=int, default=d.align_iterations, help="fast_align EM iterations (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers, help="threads for sentencepiece (default: all cores, %(default)s)")
    return p


def parse_pairs(spec):
    if not spec:
        return None
    pairs = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        src, sep, tgt = item.partition("-")
        if not sep:
            raise PrepareError(f"--lang-pairs: {item!r} is not of the form SRC-TGT")
        pairs.append((src, tgt))
    return pairs


def main(argv=None):
    args = get_parser().parse_args(argv)
    try:
        opts = PrepareOptions(
            out=args.destdir,
            trainpref=args.trainpref,
            validpref=args.validpref,
            lang_pairs=parse_pairs(args.lang_pairs),
            valid_size=args.valid_size,
            valid_max_share=args.valid_max_share,
            spm_model=args.spm_model,
            dictionary=args.dictionary,
            vocab_size=args.vocab_size,
            character_coverage=args.character_coverage,
            model_type=args.model_type,
            spm_sampling_alpha=args.spm_sampling_alpha,
            spm_max_sentences=args.spm_max_sentences,
            split_cjk=args.split_cjk,
            aligner=args.aligner,
            align_suffix=args.align_suffix,
            align_iterations=args.align_iterations,
            max_positions=args.max_positions,
            skip_bad_lines=args.skip_bad_lines,
            overwrite=args.overwrite,
            seed=args.seed,
            workers=args.workers,
        )
        summary = prepare(opts)
    except PrepareError as e:
        print(f"fairseq-weam-prepare: error: {e}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
