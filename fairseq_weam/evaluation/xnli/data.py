"""The ``sentence_prediction`` data directory of zero-shot XNLI: the examples of every split
(:mod:`.tsv`) encoded with the pre-training data's normalization, sentencepiece model and
dictionary (:class:`~fairseq_weam.core.data_dir.PreparedData`), and binarized as
``fairseq-preprocess --only-source --srcdict`` would (by :mod:`fairseq_weam.prepare.binarize`)."""

import json
import os
import shutil
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Union

import numpy as np

from fairseq_weam.core.data_dir import PreparedData
from fairseq_weam.core.errors import OptionError
from fairseq_weam.evaluation.xnli.tsv import LABELS, Example, NliFormatError, by_language, read_nli_tsv, read_sources
from fairseq_weam.prepare.binarize import write_stream


def _write_raw(sp, pretokenize, raw_dir: str, split: str, examples: Sequence[Example]) -> None:
    def pieces(text):
        return " ".join(sp.encode(pretokenize(text), out_type=str))

    with (
        open(os.path.join(raw_dir, f"{split}.input0"), "w", encoding="utf-8") as f0,
        open(os.path.join(raw_dir, f"{split}.input1"), "w", encoding="utf-8") as f1,
        open(os.path.join(raw_dir, f"{split}.label"), "w", encoding="utf-8") as fl,
    ):
        for _, premise, hypothesis, label in examples:
            f0.write(pieces(premise) + "\n")
            f1.write(pieces(hypothesis) + "\n")
            # sentence_prediction needs a label per row; unlabelled splits are never scored.
            fl.write((label or LABELS[1]) + "\n")


def _binarize(raw_dir: str, splits: Sequence[str], key: str, dict_path: str, dest: str) -> None:
    """Binarize one input column of every split exactly as ``fairseq-preprocess --only-source
    --srcdict`` does (whitespace tokens, </s> appended, mmap format, the same bytes), but
    in-process with the preparation's writer: the preprocess CLI only knows train/valid/test names
    and costs seconds of start-up per call."""
    from fairseq.data import Dictionary

    os.makedirs(dest, exist_ok=True)
    shutil.copyfile(dict_path, os.path.join(dest, "dict.txt"))
    dictionary = Dictionary.load(dict_path)
    for split in splits:
        with open(os.path.join(raw_dir, f"{split}.{key}"), encoding="utf-8") as f:
            items = [dictionary.encode_line(line, add_if_not_exist=False, append_eos=True).numpy() for line in f]
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        flat = np.concatenate(items).astype(np.int64) if items else np.zeros(0, dtype=np.int64)
        write_stream(os.path.join(dest, split), lambda: [(flat, lengths)], len(dictionary))


def prepare_data(
    out_dir: str,
    pretrain: Union[PreparedData, str],
    dict_path: Optional[str],
    mnli_train: str,
    mnli_dev: Optional[str] = None,
    xnli_dev=None,
    xnli_test=None,
    max_train: Optional[int] = None,
    xnli_test_labels: Optional[str] = None,
) -> Dict[str, dict]:
    """Write the sentence_prediction data dir; return the split table (also in splits.json).
    ``pretrain``: the pre-training data (its sentencepiece model, pre-tokenization and, unless
    ``dict_path`` names another, dictionary), or the path of a sentencepiece model inside one.
    ``xnli_dev`` / ``xnli_test``: a file, a list of files, or XTREME directories (see
    :func:`read_sources`). Unlabelled test sets (XTREME withholds the test labels) become splits
    with ``"labelled": false``, which evaluation predicts but does not score."""
    if not (mnli_dev or xnli_dev):
        raise OptionError("need an English validation set: --mnli-dev or --xnli-dev")
    if not (xnli_dev or xnli_test):
        raise OptionError("need XNLI evaluation data: --xnli-dev and/or --xnli-test")
    if isinstance(pretrain, str):
        pretrain = PreparedData(os.path.dirname(os.path.abspath(pretrain)), spm_model=pretrain)
    dict_path = dict_path or pretrain.dict_path
    sp = pretrain.sentencepiece()
    # Normalize like the pre-training text was (CJK split into characters when prepared so).
    pretokenize = pretrain.pretokenizer()
    splits = OrderedDict()
    train = read_nli_tsv(mnli_train)
    if any(lang not in (None, "en") for lang, *_ in train):
        raise NliFormatError(f"{mnli_train}: the zero-shot training set must be English only")
    if any(ex[3] is None for ex in train):
        raise NliFormatError(f"{mnli_train}: has no labels; the training set must be labelled")
    splits["train"] = (mnli_train, "en", train[:max_train] if max_train else train)
    sources = {name: p for name, p in (("dev", xnli_dev), ("test", xnli_test)) if p}
    xnli = {
        name: by_language(read_sources(p, name, xnli_test_labels if name == "test" else None))
        for name, p in sources.items()
    }
    name_of = {name: ",".join([p] if isinstance(p, str) else p) for name, p in sources.items()}
    if "dev" in xnli and "en" in xnli["dev"] and xnli["dev"]["en"][0][3] is not None:
        # Model selection on English dev keeps the other languages truly zero-shot.
        splits["valid"] = (name_of["dev"], "en", xnli["dev"]["en"])
    elif mnli_dev:
        splits["valid"] = (mnli_dev, "en", read_nli_tsv(mnli_dev))
    else:
        raise OptionError("need a labelled English validation set: --mnli-dev, or --xnli-dev with English")
    for name in ("dev", "test"):
        for lang, examples in xnli.get(name, {}).items():
            if len({ex[3] is None for ex in examples}) > 1:
                raise NliFormatError(f"{name_of[name]}: {lang} {name} examples are partly labelled, partly not")
            splits[f"xnli_{name}_{lang}"] = (name_of[name], lang, examples)

    raw_dir = os.path.join(out_dir, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    for split, (_, _, examples) in splits.items():
        _write_raw(sp, pretokenize, raw_dir, split, examples)
    label_dict = os.path.join(raw_dir, "label.dict.txt")
    with open(label_dict, "w") as f:
        # A fixed label order, so label ids do not depend on training-set frequencies.
        f.writelines(f"{label} 1\n" for label in LABELS)
    for key, srcdict in (("input0", dict_path), ("input1", dict_path), ("label", label_dict)):
        _binarize(raw_dir, list(splits), key, srcdict, os.path.join(out_dir, key))
    table = {
        s: {
            "source": ",".join(os.path.abspath(x) for x in p.split(",")),
            "lang": l,
            "n": len(ex),
            "labelled": ex[0][3] is not None,
        }
        for s, (p, l, ex) in splits.items()
    }
    with open(os.path.join(out_dir, "splits.json"), "w") as f:
        json.dump(table, f, indent=2)
    return table
