#!/usr/bin/env python
"""Time and size the QA windowing (fairseq-weam-qa's preprocessing) on SQuAD-shaped real text.

    .venv/bin/python scripts/benchmark_qa.py [--questions N] [--lang de]

Real English text, offline: the gettext catalogs' messages (``en-LANG`` pairs). Contexts are 16
consecutive messages (SQuAD's contexts average about 120 words), the question is one of them,
the answer a 1-3 word span of the context. A unigram tokenizer (8,000 pieces) is trained on the
English and LANG sides, then the training windows are built as ``fairseq-weam-qa run`` builds
them (384 tokens, stride 128, questions cut at 64). Prints questions per second, windows per
question, and the memory of the token ids as int32 arrays against the Python lists the
tokenizer returns (the baseline, measured in the same run).
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from qa_fixtures import make_tokenizer  # noqa: E402

from fairseq_weam.evaluation.qa import features  # noqa: E402
from fairseq_weam.evaluation.qa.data import QAExample  # noqa: E402
from fairseq_weam.evaluation.qa.finetune import WindowConfig, featurize  # noqa: E402
from fairseq_weam.prepare.gettext_corpus import CorpusOptions, collect_language  # noqa: E402


def list_bytes(rows):
    """Bytes of a list of lists of Python ints (list headers + pointers + int objects; small ints are shared)."""
    return sum(sys.getsizeof(r) + sum(sys.getsizeof(x) for x in r if not -5 <= x <= 256) for r in rows)


def squad_shaped(messages, n, rng):
    examples = []
    for k in range(n):
        start = rng.randrange(len(messages) - 16)
        block = messages[start : start + 16]
        context = " ".join(block)
        words = context.split()
        i = rng.randrange(len(words))
        answer = " ".join(words[i : i + rng.randint(1, 3)])
        examples.append(QAExample(f"q{k}", block[rng.randrange(16)], context, [answer], [context.find(answer)]))
    return examples


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=20000)
    p.add_argument("--lang", default="de")
    args = p.parse_args()
    pairs, _ = collect_language(args.lang, CorpusOptions())
    en = [s for s, _ in pairs]
    rng = random.Random(0)
    examples = squad_shaped(en, args.questions, rng)
    words = sum(len(ex.context.split()) for ex in examples) / len(examples)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tok = make_tokenizer(tmp, extra_text=en + [t for _, t in pairs], vocab_size=8000, repeat=1)
        t_tok = time.perf_counter() - t0
    window = WindowConfig()
    t0 = time.perf_counter()
    feats = featurize(features.train_features, tok, examples, window, "windows")
    secs = time.perf_counter() - t0
    n_win = len(feats["input_ids"])
    as_arrays = sum(r.nbytes + 112 for r in feats["input_ids"])  # data + ndarray header
    as_lists = list_bytes([r.tolist() for r in feats["input_ids"]])
    tokens = sum(len(r) for r in feats["input_ids"]) / n_win
    print(f"{len(pairs)} en-{args.lang} messages; {args.questions} questions, contexts of {words:.0f} words on average")
    print(f"tokenizer (8000 pieces) trained in {t_tok:.1f} s")
    print(
        f"windows: {n_win} ({n_win / len(examples):.2f} per question, {tokens:.0f} tokens each), "
        f"{len(examples) / secs:.0f} questions/s ({secs:.1f} s)"
    )
    print(
        f"token ids: {as_arrays / 2**20:.1f} MiB as int32 arrays vs {as_lists / 2**20:.1f} MiB as Python lists "
        f"(ratio {as_lists / as_arrays:.1f}x)"
    )


if __name__ == "__main__":
    main()
