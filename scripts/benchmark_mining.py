#!/usr/bin/env python
"""Time BUCC-style mining (k-NN both ways, margin, greedy candidates) with the blocked torch
k-NN against faiss, on the same random embeddings, and check they mine the same candidates.

    .venv/bin/python scripts/benchmark_mining.py [--n 20000] [--dim 256] [--k 4] [--repeat 3] [--device cpu]

The source pool has n sentences, the target pool 1.1 n; the first half of each are noisy copies
of each other (the "translations"). Each path runs --repeat times, alternating; the fastest run
counts (the machines here are shared). Prints both times, their ratio, and whether the
candidate sets differ (float32 rounding can reorder near-tied scores).
"""

import argparse
import time

import numpy as np

from fairseq_weam.evaluation import bucc, retrieval


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.dim)).astype(np.float32) + 0.2
    half = args.n // 2
    y = np.concatenate(
        [
            x[:half] + 0.7 * rng.normal(size=(half, args.dim)),
            rng.normal(size=(int(1.1 * args.n) - half, args.dim)) + 0.2,
        ]
    ).astype(np.float32)
    paths = {"torch": False}
    if retrieval._faiss() is not None:
        paths["faiss"] = True
    best, mined = {}, {}
    for _ in range(args.repeat):
        for name, use_faiss in paths.items():
            t0 = time.perf_counter()
            mined[name] = bucc.mine(x, y, args.k, use_faiss=use_faiss, device=args.device)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    for name, t in best.items():
        print(f"{name:6s} {t:7.2f} s  {len(mined[name])} candidates")
    if "faiss" in best:
        a, b = ({(i, j) for i, j, _ in mined[n]} for n in ("torch", "faiss"))
        same_order = [(i, j) for i, j, _ in mined["torch"]] == [(i, j) for i, j, _ in mined["faiss"]]
        print(
            f"faiss / torch time: {best['faiss'] / best['torch']:.2f}; candidate pairs found by one path only: "
            f"{len(a ^ b)} of {len(a | b)}; same order: {same_order}"
        )
    else:
        print("faiss is not installed (pip install 'fairseq-weam[faiss]'): torch path only")


if __name__ == "__main__":
    main()
