"""Writing fairseq indexed datasets: exactly the files ``fairseq-preprocess --joined-dictionary
--align-suffix align`` writes, built with fairseq's own builders and dtypes.

fairseq-preprocess re-reads text and looks every token up in the dictionary; we already hold the
dictionary ids as one flat array, so each dataset is written in one pass (the test suite checks
the files are byte-identical to fairseq-preprocess's on the same text).
"""

import os

import numpy as np
from fairseq.data import indexed_dataset

from .aligners import Links
from .tokenize import Tokens

DATASET_IMPL = "mmap"  # fairseq-preprocess's default


def _write(prefix: str, flat: np.ndarray, lengths: np.ndarray, vocab_size) -> None:
    """What MMapIndexedDatasetBuilder.add_item per sentence + finalize write, in one pass: the
    .bin is the items' concatenation in the builder's dtype, the .idx comes from fairseq's own
    index writer (add_item costs ~20 us a sentence, which dominated preparation time)."""
    dtype = indexed_dataset.best_fitting_int_dtype(vocab_size)
    flat = np.asarray(flat)
    if flat.size and (flat.min() < 0 or flat.max() > np.iinfo(dtype).max):
        raise ValueError(f"{prefix}: values do not fit {np.dtype(dtype).name}")
    with open(indexed_dataset.data_file_path(prefix), "wb") as f:
        f.write(flat.astype(dtype).tobytes(order="C"))
    with indexed_dataset.MMapIndexedDataset.Index.writer(indexed_dataset.index_file_path(prefix), dtype) as index:
        index.write([int(n) for n in lengths])


def write_tokens(prefix: str, tokens: Tokens, eos: int, vocab_size: int) -> None:
    """Sentences followed by eos, as Dictionary.encode_line(append_eos=True) makes them."""
    n = len(tokens)
    lengths = tokens.lengths + 1
    flat = np.empty(int(lengths.sum()), dtype=np.int64)
    ends = np.cumsum(lengths) - 1
    mask = np.ones(flat.shape[0], dtype=bool)
    mask[ends] = False
    flat[mask] = tokens.flat
    flat[ends] = eos
    assert len(ends) == n
    _write(prefix, flat, lengths, vocab_size)


def write_alignments(prefix: str, links: Links) -> None:
    """Flattened ``i j i j ...`` per sentence, as fairseq's utils.parse_alignment packs them."""
    _write(prefix, links.flat.reshape(-1).astype(np.int64), 2 * links.counts, None)


def pair_prefix(out_dir: str, split: str, src: str, tgt: str, lang: str) -> str:
    return os.path.join(out_dir, f"{split}.{src}-{tgt}.{lang}")


def align_prefix(out_dir: str, split: str, src: str, tgt: str) -> str:
    return os.path.join(out_dir, f"{split}.align.{src}-{tgt}")
