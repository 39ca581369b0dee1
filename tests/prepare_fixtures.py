"""Helpers for the preparation tests: raw bitext files and a quick prepare() call."""

import os

from fairseq_weam.prepare.pipeline import PrepareOptions, prepare
from synthetic_corpus import make_pairs


def write_lines(path, lines, newline="\n"):
    with open(path, "w", encoding="utf-8", newline="") as f:
        for line in lines:
            f.write(line + newline)


def write_pair(prefix, src, tgt, src_lines, tgt_lines, align_lines=None, joint=False):
    """Write PREFIX.SRC-TGT.{SRC,TGT} (or PREFIX.SRC-TGT with '|||' lines) and optional .align."""
    stem = f"{prefix}.{src}-{tgt}"
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    if joint:
        write_lines(stem, [f"{s} ||| {t}" for s, t in zip(src_lines, tgt_lines)])
    else:
        write_lines(f"{stem}.{src}", src_lines)
        write_lines(f"{stem}.{tgt}", tgt_lines)
    if align_lines is not None:
        write_lines(f"{stem}.align", align_lines)
    return stem


def synthetic_raw(root, pairs=(("xx", "yy"),), n=200, seed=0):
    """Synthetic bitext per pair under ROOT/raw/train; returns (prefix, {pair: (src, tgt, gold links)})."""
    prefix = os.path.join(root, "raw", "train")
    data = {}
    for k, (s, t) in enumerate(pairs):
        src_lines, tgt_lines, links = make_pairs(n, seed=seed + k)
        write_pair(prefix, s, t, src_lines, tgt_lines)
        data[f"{s}-{t}"] = (src_lines, tgt_lines, links)
    return prefix, data


def quick_prepare(prefix, out, **kw):
    """prepare() with settings small enough for a test corpus."""
    kw.setdefault("vocab_size", 100)
    kw.setdefault("workers", 1)
    kw.setdefault("valid_size", 10)
    return prepare(PrepareOptions(out=out, trainpref=prefix, **kw))
