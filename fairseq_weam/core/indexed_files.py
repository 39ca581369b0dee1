"""fairseq's binarized files (``PREFIX.idx`` + ``PREFIX.bin``, the mmap format that
fairseq-weam-prepare writes) checked for truncation before fairseq opens them: a cut-short file
otherwise fails deep inside fairseq (``AttributeError ... _bin_buffer_mmap``, ``cannot mmap an
empty file``) without naming it, or reads garbage."""

import os
import struct

import numpy as np

from fairseq_weam.core.errors import WeamDataError

MAGIC = b"MMIDIDX\x00\x00"  # fairseq.data.indexed_dataset.MMapIndexedDataset.Index._HDR_MAGIC
HEADER = len(MAGIC) + 8 + 1 + 8  # magic, version <Q, dtype code <B, item count <Q
# fairseq's indexed_dataset._code_to_dtype, as item sizes in bytes.
ITEM_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 8, 7: 8, 8: 2, 9: 4, 10: 8}

FIX = "re-run fairseq-weam-prepare for this data directory"


def check_indexed(prefix: str) -> None:
    """Fail with a message naming the file if ``prefix.idx`` or ``prefix.bin`` is shorter than the
    index says. Files in another format, or absent, are left to fairseq's loader."""
    idx, binary = prefix + ".idx", prefix + ".bin"
    if not (os.path.isfile(idx) and os.path.isfile(binary)):
        return
    size = os.path.getsize(idx)
    with open(idx, "rb") as f:
        head = f.read(HEADER)
        if not (MAGIC.startswith(head) or head.startswith(MAGIC)):
            return  # another fairseq format (lazy / cached): fairseq checks it
        if len(head) < HEADER:
            raise WeamDataError(f"{idx}: truncated ({size} bytes, shorter than the {HEADER}-byte header); {FIX}")
        (code,) = struct.unpack("<B", head[17:18])
        (count,) = struct.unpack("<Q", head[18:26])
        need = HEADER + count * (4 + 8)
        if code not in ITEM_SIZES:
            raise WeamDataError(f"{idx}: unknown item type {code} in the header (corrupt file); {FIX}")
        if size < need:
            raise WeamDataError(
                f"{idx}: truncated ({size} bytes; its header describes {count} items, {need} bytes); {FIX}"
            )
        if count == 0:
            return
        last_size = int(np.fromfile(f, dtype=np.int32, count=1, offset=(count - 1) * 4)[0])
        f.seek(HEADER + count * 4 + (count - 1) * 8)
        last_pointer = int(np.frombuffer(f.read(8), dtype=np.int64)[0])
    need_bin = last_pointer + last_size * ITEM_SIZES[code]
    have = os.path.getsize(binary)
    if have < need_bin:
        raise WeamDataError(f"{binary}: truncated ({have} bytes; {idx} describes {need_bin}); {FIX}")


def read_sizes(prefix: str):
    """The item sizes of ``prefix.idx`` (mmap format; None for another format), checked first and
    read into memory (no mmap)."""
    check_indexed(prefix)
    with open(prefix + ".idx", "rb") as f:
        head = f.read(HEADER)
        if not head.startswith(MAGIC):
            return None
        (count,) = struct.unpack("<Q", head[18:26])
        return np.fromfile(f, dtype=np.int32, count=count).astype(np.int64)
