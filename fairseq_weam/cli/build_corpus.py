"""``fairseq-weam-corpus``: build the offline demo corpus from gettext catalogs."""

import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import (
    ArgumentParser,
    input_dir,
    non_negative_int,
    output_dir,
    positive_int,
    probability,
)
from fairseq_weam.prepare.gettext_corpus import DEFAULT_LANGS, CorpusOptions, build_corpus, format_summary


def get_parser():
    d = CorpusOptions()
    p = ArgumentParser(
        prog="fairseq-weam-corpus",
        description="Build an English-pivot parallel corpus (pairs en-LANG) from the gettext "
        "catalogs under LOCALE_DIR/LANG/LC_MESSAGES/*.mo, with a held-out split for evaluation.",
    )
    p.add_argument("out", type=output_dir, help="output directory (created; refused if it exists unless --overwrite)")
    p.add_argument(
        "--langs", default=",".join(DEFAULT_LANGS), help="comma-separated locale names (default: %(default)s)"
    )
    p.add_argument("--locale-dir", type=input_dir, default=d.locale_dir, help="default: %(default)s")
    p.add_argument(
        "--min-words",
        type=non_negative_int,
        default=d.min_words,
        help="min English words containing a letter (default: %(default)s)",
    )
    p.add_argument(
        "--max-words", type=positive_int, default=d.max_words, help="max English words (default: %(default)s)"
    )
    p.add_argument(
        "--max-chars",
        type=positive_int,
        default=d.max_chars,
        help="max characters of either side (default: %(default)s)",
    )
    p.add_argument(
        "--heldout-size",
        type=non_negative_int,
        default=d.heldout_size,
        help="held-out pairs per language (default: %(default)s) ...",
    )
    p.add_argument(
        "--heldout-max-share",
        type=probability,
        default=d.heldout_max_share,
        help="... but at most this share of its pairs (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    return p


def run(argv=None):
    args = get_parser().parse_args(argv)
    opts = CorpusOptions(
        langs=tuple(x.strip() for x in args.langs.split(",") if x.strip()),
        locale_dir=args.locale_dir,
        min_words=args.min_words,
        max_words=args.max_words,
        max_chars=args.max_chars,
        heldout_size=args.heldout_size,
        heldout_max_share=args.heldout_max_share,
        seed=args.seed,
    )
    summary = build_corpus(args.out, opts, overwrite=args.overwrite)
    print(format_summary(summary))
    print(f"wrote {args.out} (summary: {args.out}/summary.json)")
    return summary


def main(argv=None):
    return run_cli("fairseq-weam-corpus", run, argv)


if __name__ == "__main__":
    sys.exit(main())
