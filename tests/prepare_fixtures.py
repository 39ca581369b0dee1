"""Helpers for the preparation tests: raw bitext files, a quick prepare() call, reading the output back."""

import os

from fairseq.data import Dictionary, data_utils
from synthetic_corpus import make_pairs

from fairseq_weam.prepare.pipeline import PrepareOptions, prepare


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


def load_split(out, split, src, tgt):
    """(source pieces, target pieces, subword links (n, 2)) of each prepared pair, in order."""
    d = Dictionary.load(os.path.join(out, "dict.txt"))
    stem = os.path.join(out, f"{split}.{src}-{tgt}.")
    s = data_utils.load_indexed_dataset(stem + src, d, "mmap")
    t = data_utils.load_indexed_dataset(stem + tgt, d, "mmap")
    a = data_utils.load_indexed_dataset(os.path.join(out, f"{split}.align.{src}-{tgt}"), None, "mmap")
    assert len(s) == len(t) == len(a)
    for k in range(len(s)):
        ps = [d[i] for i in s[k][:-1]]
        pt = [d[i] for i in t[k][:-1]]
        assert s[k][-1] == t[k][-1] == d.eos()
        yield ps, pt, a[k].numpy().reshape(-1, 2)
