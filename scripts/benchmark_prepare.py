#!/usr/bin/env python
"""Time the whole preparation against the fast_align binding alone, on the demo corpus.

    .venv/bin/python scripts/benchmark_prepare.py [--corpus DIR] [--repeat N] [prepare options]

Builds the gettext demo corpus (unless --corpus names one), then, in the same process and on
the same text:
  * aligner alone: for every pair, fast_align (same binding, same settings as prepare: -d -o -v,
    5 iterations) trained and run on the pre-tokenized whitespace words of all its pairs;
  * prepare: fairseq-weam-prepare's whole job (read, sentencepiece training, encoding,
    dictionary, the same fast_align, projection, binarization, summary) with --skip-bad-lines.
Prints both wall times and their ratio; the goal is ratio <= 2. With --repeat N each is run N
times, alternating, and the fastest run counts (the machines here are shared).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from fairseq_weam.core.pretokenize import pretokenize
from fairseq_weam.prepare import aligners, textio
from fairseq_weam.prepare.gettext_corpus import CorpusOptions, build_corpus
from fairseq_weam.prepare.pipeline import PrepareOptions, prepare


def aligner_alone(prefix, pairs, workdir):
    t0 = time.perf_counter()
    n = 0
    for s, t in pairs:
        f = textio.locate(prefix, s, t)
        src = [pretokenize(x).split() for x in textio.read_lines(f.src_path)[0]]
        tgt = [pretokenize(x).split() for x in textio.read_lines(f.tgt_path)[0]]
        n += len(aligners.fast_align(src, tgt, workdir, desc=f"fast_align {s}-{t}").counts)
    return time.perf_counter() - t0, n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--corpus", help="an existing fairseq-weam-corpus output (default: build one in a temporary directory)"
    )
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--vocab-size", type=int, default=PrepareOptions.vocab_size)
    p.add_argument("--spm-max-sentences", type=int, default=PrepareOptions.spm_max_sentences)
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="weam-bench-")
    try:
        corpus = args.corpus
        if not corpus:
            corpus = os.path.join(work, "corpus")
            t0 = time.perf_counter()
            build_corpus(corpus, CorpusOptions())
            print(f"demo corpus built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        prefix = os.path.join(corpus, "train")
        pairs = textio.discover_pairs(prefix)
        best_align = best_prep = float("inf")
        for r in range(args.repeat):
            t_align, n_align = aligner_alone(prefix, pairs, work)
            out = os.path.join(work, f"data{r}")
            t0 = time.perf_counter()
            summary = prepare(
                PrepareOptions(
                    out=out,
                    trainpref=prefix,
                    skip_bad_lines=True,
                    vocab_size=args.vocab_size,
                    spm_max_sentences=args.spm_max_sentences,
                )
            )
            t_prep = time.perf_counter() - t0
            shutil.rmtree(out)
            best_align, best_prep = min(best_align, t_align), min(best_prep, t_prep)
            print(
                f"run {r + 1}: aligner alone {t_align:.1f} s ({n_align} pairs), prepare {t_prep:.1f} s "
                f"(steps: {summary['timings_s']})",
                file=sys.stderr,
            )
        print(f"pairs: {len(pairs)} language pairs, {n_align} sentence pairs")
        print(f"aligner alone (fast_align binding): {best_align:.1f} s")
        print(f"whole preparation:                  {best_prep:.1f} s")
        print(f"ratio prepare / aligner: {best_prep / best_align:.2f} (goal: <= 2)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
