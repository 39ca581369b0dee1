"""``fit``: everything a corpus's shards must share, computed once and written as files.

From a bounded sample of each language pair (``--sample-size``): the sentencepiece model and the
aligner's parameters. From one streaming pass over the whole corpus (chunk by chunk): the
dictionary's counts, the bad lines, and which pairs are clean, from which the valid split is drawn.
Written to MODEL_DIR:

- ``spm.model`` (+ ``spm.vocab`` when trained), ``dict.txt``;
- ``align.SRC-TGT.fwd`` / ``.bwd``: fast_align's fitted parameters for both directions (the
  binding's own files: translation tables, diagonal tension, null probability); eflomal and
  imported links have none (see docs/preparation.md);
- ``valid.SRC-TGT.SRC`` / ``.TGT`` (+ links): the valid split as text, so every ``apply`` writes
  the same one;
- ``manifest.json``: every setting, the inputs' sizes and line counts, and the sha256 of each
  file above; ``apply`` refuses fitted files that do not match it.
"""

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np
from fairseq.data import Dictionary
from tqdm import tqdm

from fairseq_weam.core.file_digest import sha256
from fairseq_weam.prepare import aligners, stages, textio, tokenize
from fairseq_weam.prepare.errors import BadLines, PrepareError
from fairseq_weam.prepare.options import PrepareOptions, resolve_pairs

MANIFEST = "manifest.json"
FORMAT = "fairseq-weam-prepare fit 1"
VALID_PREFIX = "valid"  # the valid text inside MODEL_DIR
# sentencepiece's trainer skips sentences longer than this (its max_sentence_length, in bytes)
SPM_MAX_SENTENCE_BYTES = 4192


def input_files(opts: PrepareOptions, pairs) -> Dict[Tuple[str, str], textio.PairFiles]:
    prefixes = {"train": opts.trainpref, **({"valid": opts.validpref} if opts.validpref else {})}
    suffix = aligners.get(opts.aligner).link_suffix(opts.align_suffix)
    return {
        (split, f"{s}-{t}"): textio.locate(prefix, s, t, suffix) for split, prefix in prefixes.items() for s, t in pairs
    }


def _sample_lines(n_lines: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """0-based lines of the fitting sample, ascending (all of them when size is 0 or >= n)."""
    if size <= 0 or size >= n_lines:
        return np.arange(n_lines, dtype=np.int64)
    return np.sort(rng.choice(n_lines, size=size, replace=False))


def _spans(files: textio.PairFiles, chunk_lines: int):
    return textio.split_spans(files, 0, None, chunk_lines)[1]


def _train_sentencepiece(opts, files, samples, model_dir) -> Tuple[object, dict]:
    """Pass A: read the sampled lines, train sentencepiece on them (languages re-weighted)."""
    by_lang: Dict[str, List[str]] = {}
    bad = BadLines(opts.skip_bad_lines)  # its counts are the streaming pass's job
    split_cjk = opts.resolved_split_cjk
    for (split, pair), f in files.items():
        if split != "train":
            continue
        for span in tqdm(_spans(f, opts.chunk_lines), desc=f"sample {pair}", unit="chunk", leave=False):
            raw = stages.read(f, span, bad)
            keep = np.isin(raw.lineno - 1, samples[pair])
            chunk = stages.pretokenize(raw.select(keep) if not keep.all() else raw, split_cjk)
            by_lang.setdefault(f.src, []).extend(chunk.src_text)
            by_lang.setdefault(f.tgt, []).extend(chunk.tgt_text)
    sample = tokenize.sample_for_spm(by_lang, opts.spm_sampling_alpha, opts.spm_max_sentences, opts.seed)
    where = " ".join(p for (split, _), f in files.items() if split == "train" for p in f.paths)
    if not sample:
        raise PrepareError(f"no text to train sentencepiece on: every line of {where} is empty or was dropped as bad")
    if all(len(x.encode("utf-8")) > SPM_MAX_SENTENCE_BYTES for x in sample):
        raise PrepareError(
            f"no text to train sentencepiece on: every line of {where} is longer than sentencepiece's limit of "
            f"{SPM_MAX_SENTENCE_BYTES} bytes; split long lines (or pass --spm-model)"
        )
    print(
        f"training sentencepiece ({opts.model_type}, vocab {opts.vocab_size}) on {len(sample)} sentences ...",
        flush=True,
    )
    sp = tokenize.train_sentencepiece(
        sample,
        os.path.join(model_dir, "spm"),
        opts.vocab_size,
        opts.character_coverage,
        opts.model_type,
        opts.workers,
        opts.seed,
    )
    return sp, {"sentences": len(sample), "alpha": opts.spm_sampling_alpha}


class _AlignerCorpus:
    """fast_align's training text for one pair, streamed to disk with each line's input line number."""

    def __init__(self, path: str):
        self.path = path
        self.f = open(path, "w", encoding="utf-8")
        self.linenos: List[np.ndarray] = []

    def add(self, chunk: stages.Chunk, vocab: stages.Vocab, keep: np.ndarray) -> None:
        chunk.select(keep)
        aligners.write_fast_align_input(self.f, *stages.aligner_words(chunk, vocab))
        self.linenos.append(chunk.raw.lineno)

    def finish(self, exclude: np.ndarray, tail: str) -> str:
        """The training file: the sampled lines not in ``exclude``, in order, then the file ``tail``."""
        self.f.close()
        linenos = np.concatenate(self.linenos) if self.linenos else np.zeros(0, dtype=np.int64)
        drop = np.isin(linenos, exclude)
        out = self.path + ".fit"
        with open(self.path, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
            for line, skip in zip(src, drop):
                if not skip:
                    dst.write(line)
            with open(tail, encoding="utf-8") as t:
                shutil.copyfileobj(t, dst)
        os.remove(self.path)
        return out


def _write_valid(
    model_dir: str, f: textio.PairFiles, raw: List[textio.RawSplit], align_suffix: str
) -> textio.PairFiles:
    """The valid pairs' input text (as read) under MODEL_DIR/valid.SRC-TGT.*."""
    stem = os.path.join(model_dir, f"{VALID_PREFIX}.{f.pair}")
    out = textio.PairFiles(
        f.src,
        f.tgt,
        src_path=f"{stem}.{f.src}",
        tgt_path=f"{stem}.{f.tgt}",
        align_path=f"{stem}.{align_suffix}" if f.align_path else None,
    )
    with open(out.src_path, "w", encoding="utf-8") as s, open(out.tgt_path, "w", encoding="utf-8") as t:
        a = open(out.align_path, "w", encoding="utf-8") if out.align_path else None
        for r in raw:
            s.writelines(x + "\n" for x in r.src)
            t.writelines(x + "\n" for x in r.tgt)
            if a:
                a.writelines(x + "\n" for x in r.align)
        if a:
            a.close()
    return out


def _read_lines_at(f: textio.PairFiles, linenos: np.ndarray) -> List[textio.RawSplit]:
    """The given (clean, 1-based) input lines of a split, read by seeking to each."""
    bounds = sorted(set(int(x) for x in linenos - 1) | set(int(x) for x in linenos))
    _, offsets = textio.index_split(f, bounds)
    at = {b: k for k, b in enumerate(bounds)}
    spans = [
        textio.Span(v - 1, v, {p: (int(o[at[v - 1]]), int(o[at[v]])) for p, o in offsets.items()})
        for v in map(int, linenos)
    ]
    return [textio.read_split(f, BadLines(False), span) for span in spans]


@dataclass
class _Stream:
    """What the streaming pass over the whole corpus found."""

    bad: BadLines
    counts: np.ndarray  # sentencepiece id -> occurrences in the clean training pairs
    clean: Dict[str, np.ndarray]  # pair -> per training line: passed every check
    valid_raw: Dict[str, List[textio.RawSplit]]  # pair -> the clean --validpref lines
    corpora: Dict[str, _AlignerCorpus]  # pair -> the aligner's sample, words on disk


def _stream(opts, files, n_lines, samples, vocab, work) -> _Stream:
    """Pass B, chunk by chunk: read -> pretokenize -> encode -> check every line of every split."""
    pairs = [pair for split, pair in files if split == "train"]
    st = _Stream(
        bad=BadLines(opts.skip_bad_lines),
        counts=np.zeros(vocab.sp.get_piece_size(), dtype=np.int64),
        clean={pair: np.zeros(n_lines[("train", pair)], dtype=bool) for pair in pairs},
        valid_raw={pair: [] for pair in pairs},
        corpora={pair: _AlignerCorpus(os.path.join(work, f"{pair}.txt")) for pair in pairs}
        if not opts.imported
        else {},
    )
    for (split, pair), f in files.items():
        for span in tqdm(_spans(f, opts.chunk_lines), desc=f"encoding {split} {pair}", unit="chunk", leave=False):
            chunk = stages.encoded_chunk(
                f,
                span,
                st.bad,
                vocab,
                split_cjk=opts.resolved_split_cjk,
                max_positions=opts.max_positions,
                imported=opts.imported,
                threads=opts.workers,
            )
            if split == "valid":
                st.valid_raw[pair].append(chunk.raw)
                continue
            st.counts += np.bincount(chunk.src_spm.flat, minlength=len(st.counts)) + np.bincount(
                chunk.tgt_spm.flat, minlength=len(st.counts)
            )
            st.clean[pair][chunk.raw.lineno - 1] = True
            if pair in st.corpora:
                st.corpora[pair].add(chunk, vocab, np.isin(chunk.raw.lineno - 1, samples[pair]))
    return st


def _draw_valid(opts, pair: str, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-based training lines moved to the valid split: a random share of the clean pairs."""
    n_clean = int(clean.sum())
    if n_clean < 2:
        raise PrepareError(f"{pair}: {n_clean} usable pair(s) left; need at least 2 to split off a valid set")
    # at least one: the task loads a valid split for every pair
    n_valid = max(1, min(opts.valid_size, int(opts.valid_max_share * n_clean)))
    chosen = np.zeros(n_clean, dtype=bool)
    chosen[rng.choice(n_clean, size=n_valid, replace=False)] = True
    return np.flatnonzero(clean)[chosen] + 1


def _fit_aligner(
    opts, pair: str, corpus: _AlignerCorpus, valid_lines, valid_files, vocab, model_dir: str, work: str
) -> None:
    """Fit the aligner on the sample and the valid pairs, as one corpus (train first, as before)."""
    tail = os.path.join(work, f"{pair}.valid.txt")
    with open(tail, "w", encoding="utf-8") as out:
        for span in _spans(valid_files, opts.chunk_lines):
            chunk = stages.encoded_chunk(
                valid_files,
                span,
                BadLines(False),
                vocab,
                split_cjk=opts.resolved_split_cjk,
                max_positions=opts.max_positions,
                imported=False,
                threads=opts.workers,
            )
            aligners.write_fast_align_input(out, *stages.aligner_words(chunk, vocab))
    path = corpus.finish(valid_lines, tail)
    print(f"fitting {opts.aligner} {pair} ...", flush=True)
    aligners.get(opts.aligner).fit(path, pair, model_dir, work, iterations=opts.align_iterations)


def fit(opts: PrepareOptions, model_dir: str) -> dict:
    """Fit into the (existing, empty) directory ``model_dir``; returns the manifest."""
    t_start = time.perf_counter()
    timings: Dict[str, float] = {}

    def lap(name, t0):
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return time.perf_counter()

    opts.check()
    pairs = resolve_pairs(opts)
    pair_names = [f"{s}-{t}" for s, t in pairs]
    files = input_files(opts, pairs)
    # Whole-file problems (line counts) stop the run before any work.
    n_lines = {key: textio.index_split(f)[0] for key, f in files.items()}
    sample_rng = np.random.default_rng([opts.seed, 1])  # apart from the valid split's generator
    samples = {pair: _sample_lines(n_lines[("train", pair)], opts.sample_size, sample_rng) for pair in pair_names}

    # 1. sentencepiece, on the sample (pass A)
    t0 = time.perf_counter()
    sampled = {}
    if opts.spm_model:
        sp = tokenize.load_sentencepiece(opts.spm_model)
        tokenize.copy_model(opts.spm_model, model_dir)
    else:
        sp, sampled = _train_sentencepiece(opts, files, samples, model_dir)
    vocab = stages.Vocab.of(sp, Dictionary.load(opts.dictionary) if opts.dictionary else None)
    t0 = lap("sentencepiece", t0)

    # 2. every line: bad lines, clean pairs, dictionary counts, the aligner's sample (pass B)
    work = tempfile.mkdtemp(prefix=".fit-", dir=model_dir)
    st = _stream(opts, files, n_lines, samples, vocab, work)
    t0 = lap("encode", t0)

    # 3. dictionary
    if opts.dictionary:  # verbatim, so ids line up with the checkpoint the dictionary belongs to
        shutil.copyfile(opts.dictionary, os.path.join(model_dir, "dict.txt"))
        dictionary = vocab.dictionary
    else:
        dictionary = tokenize.build_dictionary(sp, st.counts)
        dictionary.save(os.path.join(model_dir, "dict.txt"))

    # 4. valid split (given, or drawn from the clean training pairs), 5. the aligner
    rng = np.random.default_rng(opts.seed)
    for pair in pair_names:
        f = files[("train", pair)]
        if opts.validpref:
            valid_lines = np.zeros(0, dtype=np.int64)
            if not st.clean[pair].any():
                raise PrepareError(f"{pair}: no usable training pairs left in {' '.join(f.paths)}")
        else:
            valid_lines = _draw_valid(opts, pair, st.clean[pair], rng)
            st.valid_raw[pair] = _read_lines_at(f, valid_lines)
        valid_files = _write_valid(model_dir, f, st.valid_raw[pair], opts.align_suffix)
        np.savetxt(os.path.join(model_dir, f"{VALID_PREFIX}.{pair}.lines"), valid_lines, fmt="%d")
        if pair in st.corpora:
            _fit_aligner(opts, pair, st.corpora[pair], valid_lines, valid_files, vocab, model_dir, work)
    shutil.rmtree(work)
    t0 = lap("fit_aligner", t0)
    timings["total"] = time.perf_counter() - t_start

    manifest = _manifest(opts, pair_names, files, n_lines, samples, st, sp, sampled, dictionary, timings)
    manifest["files"] = {name: sha256(os.path.join(model_dir, name)) for name in sorted(os.listdir(model_dir))}
    with open(os.path.join(model_dir, MANIFEST), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, ensure_ascii=False)
    return manifest


def _manifest(opts, pair_names, files, n_lines, samples, st: _Stream, sp, sampled, dictionary, timings) -> dict:
    options = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in asdict(opts).items()
        if k not in ("out", "overwrite", "workers")
    }
    options["lang_pairs"] = pair_names
    return {
        "format": FORMAT,
        "options": options,
        "pretokenize": {"split_cjk": opts.resolved_split_cjk},
        "sentencepiece": {
            "model": "spm.model",
            "trained": not opts.spm_model,
            "pieces": sp.get_piece_size(),
            **sampled,
        },
        "dictionary": {"file": "dict.txt", "size": len(dictionary), "source": opts.dictionary or "built from train"},
        "lang_pairs": pair_names,
        "inputs": {
            pair: {
                split: {
                    "files": [os.path.abspath(p) for p in f.paths],
                    "bytes": [os.path.getsize(p) for p in f.paths],
                    "lines": n_lines[(split, pair)],
                }
                for (split, p2), f in files.items()
                if p2 == pair
            }
            for pair in pair_names
        },
        "fit": {
            pair: {
                "lines_read": {split: n_lines[(split, pair)] for (split, p2) in files if p2 == pair},
                "clean_train": int(st.clean[pair].sum()),
                "dropped": dict(sorted(st.bad.dropped(pair).items())),
                "sample": int(len(samples[pair])),
                "valid": int(sum(len(r) for r in st.valid_raw[pair])),
                "valid_source": "validpref" if opts.validpref else "carved from train",
            }
            for pair in pair_names
        },
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def load_manifest(model_dir: str) -> dict:
    """The manifest of a fitted directory, after checking every file against its checksum."""
    path = os.path.join(model_dir, MANIFEST)
    if not os.path.isfile(path):
        raise PrepareError(
            f"{model_dir} is not a fitted directory: {MANIFEST} not found (run fairseq-weam-prepare fit)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise PrepareError(f"{path}: unreadable manifest ({e})") from None
    if manifest.get("format") != FORMAT:
        raise PrepareError(f"{path}: not a manifest of this version ({manifest.get('format')!r}, expected {FORMAT!r})")
    for name, digest in manifest["files"].items():
        p = os.path.join(model_dir, name)
        if not os.path.isfile(p):
            raise PrepareError(f"{p}: listed in {MANIFEST} but missing")
        if sha256(p) != digest:
            raise PrepareError(
                f"{p}: does not match {MANIFEST} (sha256 differs); the fitted files changed since fit, run fit again"
            )
    return manifest
