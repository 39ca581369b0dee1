"""flat_contents (core/data_dir.py) on a prepared data directory's train datasets: the public-API
reader (fairseq's MMapIndexedDataset.Index for the dtype, the .bin file memory-mapped) against
the former reader of fairseq's private ``_index`` / ``_bin_buffer`` and against reading item by
item, measured in the same process, best of N passes.

    PYTHONPATH=. python scripts/benchmark_flat_contents.py /work/data/data
"""

import argparse
import glob
import logging
import time

import numpy as np
from fairseq.data import data_utils

from fairseq_weam.core.data_dir import flat_contents


def private_reader(ds, prefix):
    """The reader before issue 24: fairseq's private index and buffer."""
    total = int(np.asarray(ds.sizes, dtype=np.int64).sum())
    start = int(ds._index._pointers[0]) if len(ds) else 0
    return np.frombuffer(ds._bin_buffer, dtype=ds._index.dtype, count=total, offset=start)


def item_reader(ds, prefix):
    return np.concatenate([ds[i].numpy() for i in range(len(ds))])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("--passes", type=int, default=7)
    args = p.parse_args()
    logging.disable(logging.INFO)
    prefixes = sorted({f[:-4] for f in glob.glob(f"{args.data}/train.*.bin")})
    datasets = [(prefix, data_utils.load_indexed_dataset(prefix, None, "mmap")) for prefix in prefixes]
    items = sum(int(np.asarray(ds.sizes).sum()) for _, ds in datasets)
    print(f"{len(datasets)} datasets, {items:,} items in all")
    readers = {"public (flat_contents)": flat_contents, "private _bin_buffer": private_reader}
    if args.passes and items < 20_000_000:
        readers["item by item"] = item_reader
    best = {name: float("inf") for name in readers}
    checks = {}
    for _ in range(args.passes):
        for name, reader in readers.items():
            if name == "item by item" and best[name] < float("inf"):
                continue  # one pass is enough for the slow path
            t = time.perf_counter()
            checks[name] = sum(int(reader(ds, prefix).sum()) for prefix, ds in datasets)
            best[name] = min(best[name], time.perf_counter() - t)
    assert len(set(checks.values())) == 1, checks
    base = best["private _bin_buffer"]
    for name, seconds in best.items():
        print(f"{name:24s} {seconds * 1000:9.2f} ms  ({seconds / base:.2f}x the private reader)")


if __name__ == "__main__":
    main()
