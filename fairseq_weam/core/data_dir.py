"""A prepared data directory, as fairseq-weam-prepare writes it and ``--task weam`` reads it:
``dict.txt`` (the shared dictionary), ``train.SRC-TGT.{SRC,TGT}.{bin,idx}`` per language pair
(+ ``.align``), the held-out split, and the sentencepiece model and manifest beside them."""

import glob
import os
import re
from typing import List, Tuple

import numpy as np
from fairseq.data import Dictionary, indexed_dataset

from fairseq_weam.core.errors import WeamDataError


def parse_lang_pairs(spec: str) -> List[Tuple[str, str]]:
    pairs = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        src, sep, tgt = item.partition("-")
        if not sep or not src or not tgt:
            raise WeamDataError(f"--lang-pairs: {item!r} is not of the form SRC-TGT")
        pairs.append((src, tgt))
    return pairs


def discover_lang_pairs(data_path: str, split: str = "train") -> List[Tuple[str, str]]:
    """Pairs for which ``SPLIT.SRC-TGT.SRC.idx`` exists, sorted."""
    pattern = re.compile(rf"^{re.escape(split)}\.([^.\-]+)-([^.\-]+)\.([^.]+)\.idx$")
    pairs = set()
    for path in glob.glob(os.path.join(data_path, f"{split}.*-*.*.idx")):
        m = pattern.match(os.path.basename(path))
        if m and m.group(3) == m.group(1) and m.group(2) != "None":  # None: --only-source output
            pairs.add((m.group(1), m.group(2)))
    return sorted(pairs)


def load_dictionary(data_path: str, lang_pairs=(), *, add_mask: bool = False) -> Dictionary:
    """The shared dictionary of a data directory: ``dict.txt``, else ``dict.SRC.txt`` of the
    first pair. ``add_mask``: append ``<mask>`` as the weam and sentence_prediction tasks do when
    they build a model, so the dictionary matches a trained model's embedding table (evaluation,
    export); the task itself adds it in ``setup_task``."""
    candidates = [os.path.join(data_path, "dict.txt")]
    if lang_pairs:
        candidates.append(os.path.join(data_path, f"dict.{lang_pairs[0][0]}.txt"))
    for path in candidates:
        if os.path.exists(path):
            dictionary = Dictionary.load(path)
            if add_mask:
                dictionary.add_symbol("<mask>")
            return dictionary
    raise WeamDataError(f"no dictionary found: looked for {' and '.join(candidates)}")


def flat_contents(ds, prefix: str) -> np.ndarray:
    """All items of the indexed dataset ``ds`` (loaded from ``prefix``) concatenated. An mmap
    dataset's ``.bin`` file is exactly that, so it is mapped in one go (its dtype read by fairseq's
    public ``MMapIndexedDataset.Index``); other formats are read item by item."""
    if isinstance(ds, indexed_dataset.MMapIndexedDataset):
        dtype = indexed_dataset.MMapIndexedDataset.Index(indexed_dataset.index_file_path(prefix)).dtype
        total = int(np.asarray(ds.sizes, dtype=np.int64).sum())
        flat = np.memmap(indexed_dataset.data_file_path(prefix), dtype=dtype, mode="r", shape=(total,))
        return flat.view(np.ndarray)  # still mapped; a plain array for the arithmetic
    return np.concatenate([ds[i].numpy() for i in range(len(ds))]) if len(ds) else np.zeros(0, np.int64)
