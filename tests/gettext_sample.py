"""A small real corpus for tests: the gettext catalogs of fr and zh_CN (a Latin and a CJK script),
each language's training pairs cut to the first ``n_pairs``, prepared as fairseq-weam-prepare
would (sentencepiece, fast_align, binarized)."""

import os

from fairseq_weam.prepare.gettext_corpus import CorpusOptions, build_corpus
from fairseq_weam.prepare.pipeline import PrepareOptions, prepare

LOCALES = "/usr/share/locale"


def prepared_gettext_sample(root, n_pairs: int, vocab_size: int, valid_size: int) -> str:
    """The prepared data directory under ``root``."""
    corpus = str(root / "corpus")
    build_corpus(corpus, CorpusOptions(langs=("fr", "zh_CN"), locale_dir=LOCALES, heldout_size=10))
    for name in os.listdir(corpus):  # the first n_pairs training pairs keep the test fast
        path = os.path.join(corpus, name)
        if name.startswith("train.") and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()[:n_pairs]
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(lines)
    out = str(root / "data")
    prepare(
        PrepareOptions(
            out=out,
            trainpref=os.path.join(corpus, "train"),
            vocab_size=vocab_size,
            valid_size=valid_size,
            max_positions=128,
            skip_bad_lines=True,
            workers=1,
        )
    )
    return out
