"""``fairseq-weam-prepare``: raw parallel text -> binarized, word-aligned WEAM data.

fairseq-weam-prepare --trainpref P --destdir OUT ...        one shot (a corpus one machine holds)
fairseq-weam-prepare fit --trainpref P --destdir MODEL ...  once, for a large corpus
fairseq-weam-prepare apply --model MODEL --trainpref P --slice K/N --destdir OUT/shardK
"""

import os
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import (
    ArgumentParser,
    binary_file,
    float_range,
    input_dir,
    int_range,
    non_negative_float,
    non_negative_int,
    output_dir,
    positive_int,
    text_file,
)
from fairseq_weam.core.data_dir import parse_lang_pairs
from fairseq_weam.core.outdir import atomic_output_dir, check_output_dir
from fairseq_weam.prepare.aligners import ALIGNERS
from fairseq_weam.prepare.fit import fit
from fairseq_weam.prepare.pipeline import PrepareOptions, prepare
from fairseq_weam.prepare.shard import ApplyOptions, Slice, apply
from fairseq_weam.prepare.summary import format_summary

FIT_SAMPLE_SIZE = 1000000
# sentencepiece's smallest vocabulary here: <unk> plus at least one piece ...
MIN_VOCAB_SIZE = 2


def get_parser(phase: str = "prepare"):
    """The one-shot parser, or (``phase="fit"``) fit's: the same settings plus the sample size."""
    d = PrepareOptions(out="", trainpref="")
    if phase == "fit":
        p = ArgumentParser(
            prog="fairseq-weam-prepare fit",
            description="Fit what every shard of a large corpus shares: sentencepiece, the dictionary (counts "
            "streamed over the whole corpus), the valid split and the aligner's parameters, written to "
            "--destdir with a manifest of checksums. Then run 'fairseq-weam-prepare apply' per slice. "
            "See docs/preparation.md.",
        )
    else:
        p = ArgumentParser(
            prog="fairseq-weam-prepare",
            description="Tokenize (sentencepiece), word-align (fast_align) and binarize (fairseq) "
            "line-aligned parallel text into a directory that fairseq-train --task weam reads. "
            "For a corpus too large for one machine or run: 'fairseq-weam-prepare fit' once, then "
            "'fairseq-weam-prepare apply' per slice. See docs/preparation.md.",
        )
    io = p.add_argument_group("input and output")
    io.add_argument(
        "--trainpref",
        required=True,
        help="text of pair SRC-TGT in PREFIX.SRC-TGT.SRC + PREFIX.SRC-TGT.TGT, or PREFIX.SRC-TGT with 'source ||| "
        "target' lines",
    )
    io.add_argument("--validpref", help="same layout for the valid split; default: carve it out of train")
    io.add_argument(
        "--destdir",
        required=True,
        type=output_dir,
        help="output directory (refused if it exists, unless --overwrite)"
        + ("; holds the fitted files" if phase == "fit" else ""),
    )
    io.add_argument("--lang-pairs", help="comma-separated SRC-TGT pairs; default: every pair found under --trainpref")
    io.add_argument(
        "--valid-size",
        type=non_negative_int,
        default=d.valid_size,
        help="valid pairs per language pair when carved from train (default: %(default)s) ...",
    )
    io.add_argument(
        "--valid-max-share",
        type=float_range(0, 1, min_open=True),
        default=d.valid_max_share,
        help="... but at most this share of the pair, and at least 1 (default: %(default)s)",
    )
    io.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output directory (only once the new one is complete)",
    )
    io.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="drop bad lines (invalid UTF-8, empty, too long, bad alignments) and count them in the summary instead "
        "of stopping",
    )
    io.add_argument(
        "--max-positions",
        type=int_range(6),
        default=d.max_positions,
        help="longest laid-out pair <s> x </s></s> y </s> in subword tokens; use the --tokens-per-sample you will "
        "train with (default: %(default)s)",
    )
    tok = p.add_argument_group("tokenization")
    tok.add_argument(
        "--spm-model",
        type=binary_file,
        help="existing sentencepiece model (e.g. XLM-R's sentencepiece.bpe.model); default: train a new one",
    )
    tok.add_argument(
        "--dictionary",
        type=text_file,
        help="the fairseq dict.txt that goes with --spm-model (e.g. XLM-R's); default: build one from the data",
    )
    tok.add_argument(
        "--vocab-size",
        type=int_range(MIN_VOCAB_SIZE),
        default=d.vocab_size,
        help="new model: vocabulary size, a soft limit (default: %(default)s)",
    )
    tok.add_argument(
        "--character-coverage",
        type=float_range(0, 1, min_open=True),
        default=d.character_coverage,
        help="new model (default: %(default)s)",
    )
    tok.add_argument(
        "--model-type", default=d.model_type, choices=["unigram", "bpe"], help="new model (default: %(default)s)"
    )
    tok.add_argument(
        "--spm-sampling-alpha",
        type=non_negative_float,
        default=d.spm_sampling_alpha,
        help="new model: languages sampled with q ~ p**alpha for training it (default: %(default)s)",
    )
    tok.add_argument(
        "--spm-max-sentences",
        type=non_negative_int,
        default=d.spm_max_sentences,
        help="new model: at most this many training sentences, 0 = all (default: %(default)s)",
    )
    cjk = tok.add_mutually_exclusive_group()
    cjk.add_argument(
        "--split-cjk",
        dest="split_cjk",
        action="store_true",
        default=None,
        help="make each CJK character a word (default unless --aligner pharaoh)",
    )
    cjk.add_argument("--no-split-cjk", dest="split_cjk", action="store_false", help="keep CJK text as written")
    al = p.add_argument_group("alignment")
    al.add_argument(
        "--aligner",
        choices=ALIGNERS,
        default=d.aligner,
        help="fast_align (Python binding, default), eflomal (if installed), or pharaoh: import "
        "PREFIX.SRC-TGT.ALIGN_SUFFIX files of word links i-j",
    )
    al.add_argument(
        "--align-suffix",
        default=d.align_suffix,
        help="--aligner pharaoh: suffix of the alignment files (default: %(default)s)",
    )
    al.add_argument(
        "--align-iterations",
        type=positive_int,
        default=d.align_iterations,
        help="fast_align EM iterations (default: %(default)s)",
    )
    if phase == "fit":
        al.add_argument(
            "--sample-size",
            type=non_negative_int,
            default=FIT_SAMPLE_SIZE,
            help="pairs per language pair (drawn at random, --seed) that sentencepiece's sample and the aligner are "
            "fitted on; 0 = all (default: %(default)s)",
        )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--workers",
        type=positive_int,
        default=d.workers,
        help="threads for sentencepiece (default: all cores, %(default)s)",
    )
    p.add_argument(
        "--chunk-lines",
        type=positive_int,
        default=d.chunk_lines,
        help="lines per chunk of the streaming passes; memory grows with it, not with the corpus (default: "
        "%(default)s)",
    )
    return p


def get_apply_parser():
    p = ArgumentParser(
        prog="fairseq-weam-prepare apply",
        description="Prepare one slice of a corpus with the files of 'fairseq-weam-prepare fit': encode, align "
        "with the fitted parameters and binarize into a shard directory, in chunks (bounded memory), "
        "with --workers processes, resumable per chunk, published only when complete. Shards made "
        "anywhere from the same fit combine as OUT/shard0:OUT/shard1:... See docs/preparation.md.",
    )
    p.add_argument(
        "--model", required=True, type=input_dir, help="the directory fit wrote (checked against its manifest)"
    )
    p.add_argument("--trainpref", required=True, help="the corpus fit was run on (same files)")
    p.add_argument(
        "--slice",
        default="0/1",
        help="K/N: lines [n*K/N, n*(K+1)/N) of every pair (default: %(default)s, the whole corpus)",
    )
    p.add_argument(
        "--destdir",
        required=True,
        type=output_dir,
        help="the shard directory, e.g. OUT/shardK (refused if it exists, unless --overwrite)",
    )
    p.add_argument(
        "--workers", type=positive_int, default=os.cpu_count() or 1, help="processes (default: all cores, %(default)s)"
    )
    p.add_argument(
        "--chunk-lines",
        type=positive_int,
        default=ApplyOptions.chunk_lines,
        help="lines per chunk: the unit of work, of memory and of resuming (default: %(default)s)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing shard (only once the new one is complete)"
    )
    return p


def parse_pairs(spec):
    return parse_lang_pairs(spec) if spec else None


def options_from_args(args) -> PrepareOptions:
    return PrepareOptions(
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
        sample_size=getattr(args, "sample_size", 0),
        chunk_lines=args.chunk_lines,
    )


def _fit(argv) -> None:
    opts = options_from_args(get_parser("fit").parse_args(argv))
    check_output_dir(opts.out, opts.overwrite)
    with atomic_output_dir(opts.out, opts.overwrite, [opts.trainpref]) as tmp:
        manifest = fit(opts, tmp)
    for pair, e in manifest["fit"].items():
        print(
            f"{pair}: {e['lines_read']['train']} lines, {e['clean_train']} usable, sample {e['sample']}, "
            f"valid {e['valid']} ({e['valid_source']}), dropped {sum(e['dropped'].values())}"
        )
    print(
        f"fitted files in {os.path.abspath(opts.out)} (manifest.json); next: fairseq-weam-prepare apply --model "
        f"{opts.out} ..."
    )


def _apply(argv) -> None:
    args = get_apply_parser().parse_args(argv)
    check_output_dir(args.destdir, args.overwrite)  # before any work, as every command does
    summary = apply(
        ApplyOptions(
            model=args.model,
            trainpref=args.trainpref,
            out=args.destdir,
            slice=Slice.parse(args.slice),
            workers=args.workers,
            chunk_lines=args.chunk_lines,
            overwrite=args.overwrite,
        )
    )
    print(format_summary(summary))


def _prepare(argv) -> None:
    opts = options_from_args(get_parser().parse_args(argv))
    check_output_dir(opts.out, opts.overwrite)  # before any work, as every command does
    print(format_summary(prepare(opts)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    phase = argv[0] if argv and argv[0] in ("fit", "apply") else None
    if phase is None:
        return run_cli("fairseq-weam-prepare", _prepare, argv)
    return run_cli(f"fairseq-weam-prepare {phase}", _fit if phase == "fit" else _apply, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
