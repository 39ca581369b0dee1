"""Writing fairseq indexed datasets: exactly the files ``fairseq-preprocess --joined-dictionary
--align-suffix align`` writes, built with fairseq's own builders and dtypes.

fairseq-preprocess re-reads text and looks every token up in the dictionary; we already hold the
dictionary ids as flat arrays, so each dataset is written from them directly (add_item costs
~20 us a sentence, which dominated preparation time), chunk by chunk, never holding more than one
chunk in memory. The test suite checks the files are byte-identical to fairseq-preprocess's on
the same text.
"""

import os
import struct
from typing import Callable, Iterable, Tuple

import numpy as np
from fairseq.data import indexed_dataset

from fairseq_weam.prepare.aligners import Links
from fairseq_weam.prepare.errors import PrepareError
from fairseq_weam.prepare.tokenize import Tokens


def write_stream(prefix: str, chunks: Callable[[], Iterable[Tuple[np.ndarray, np.ndarray]]], vocab_size) -> int:
    """The dataset whose items are the concatenation of ``chunks()``'s ``(flat, lengths)`` pairs,
    byte for byte what fairseq's MMapIndexedDatasetBuilder writes item by item (its index writer
    holds every size in a Python list; this one does not). ``chunks`` is called three
    times (data, sizes, pointers), so memory holds one chunk at a time. Returns the item count."""
    dtype = indexed_dataset.best_fitting_int_dtype(vocab_size)
    limit = np.iinfo(dtype).max
    n_items = 0
    with open(indexed_dataset.data_file_path(prefix), "wb") as f:
        for flat, lengths in chunks():
            if flat.size and (flat.min() < 0 or flat.max() > limit):
                raise PrepareError(f"{prefix}: values do not fit {np.dtype(dtype).name}")
            f.write(np.asarray(flat).astype(dtype).tobytes(order="C"))
            n_items += len(lengths)
    # MMapIndexedDataset.Index.writer's layout: header, item count, int32 sizes, int64 pointers.
    # Its writer puts the header (magic, version, dtype code); the rest is appended chunk by chunk.
    index_path = indexed_dataset.index_file_path(prefix)
    with indexed_dataset.MMapIndexedDataset.Index.writer(index_path, dtype):
        pass
    with open(index_path, "ab") as f:
        f.write(struct.pack("<Q", n_items))
        for _, lengths in chunks():
            f.write(np.asarray(lengths, dtype=np.int32).tobytes(order="C"))
        address = 0
        for _, lengths in chunks():
            ends = address + np.cumsum(np.asarray(lengths, dtype=np.int64)) * np.dtype(dtype).itemsize
            f.write(np.concatenate([[address], ends[:-1]]).astype(np.int64).tobytes(order="C") if len(lengths) else b"")
            address = int(ends[-1]) if len(lengths) else address
    return n_items


def with_eos(tokens: Tokens, eos: int) -> Tuple[np.ndarray, np.ndarray]:
    """(flat, lengths) of the sentences followed by eos, as Dictionary.encode_line(append_eos=True)."""
    lengths = tokens.lengths + 1
    flat = np.empty(int(lengths.sum()), dtype=np.int64)
    ends = np.cumsum(lengths) - 1
    mask = np.ones(flat.shape[0], dtype=bool)
    mask[ends] = False
    flat[mask] = tokens.flat
    flat[ends] = eos
    return flat, lengths


def alignment_items(links: Links) -> Tuple[np.ndarray, np.ndarray]:
    """(flat, lengths) of ``i j i j ...`` per sentence, as fairseq's utils.parse_alignment packs them."""
    return links.flat.reshape(-1).astype(np.int64), 2 * links.counts


def pair_prefix(out_dir: str, split: str, src: str, tgt: str, lang: str) -> str:
    return os.path.join(out_dir, f"{split}.{src}-{tgt}.{lang}")


def align_prefix(out_dir: str, split: str, src: str, tgt: str) -> str:
    return os.path.join(out_dir, f"{split}.align.{src}-{tgt}")
