"""The whole preparation: raw line-aligned bitext -> a directory ``fairseq-train --task weam`` reads.

Steps (each a pure function in its own module; this one only sequences them and keeps the
per-line bookkeeping consistent when lines are dropped):

1. read and check the text of every pair and split (``textio``);
2. sentencepiece: train one model on all languages (re-weighted) or load the given one;
3. encode; drop pairs too long for the model; build or load the fairseq dictionary (counts from
   the --trainpref text); check imported Pharaoh links;
4. carve a valid split out of the clean training pairs unless --validpref is given;
5. word-align each pair (train and valid together; the aligner is unsupervised);
6. project word links to subword positions and binarize everything with fairseq's builders;
7. write the summary; rename the finished directory into place.
"""

import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from fairseq.data import Dictionary
from tqdm import tqdm

from ..data.alignment import project_alignments_batch
from . import aligners, binarize, summary as summary_mod, textio, tokenize
from .errors import BadLines, PrepareError
from .outdir import atomic_output_dir, check_output_dir

SPLITS = ("train", "valid")


@dataclass
class PrepareOptions:
    out: str
    trainpref: str
    validpref: Optional[str] = None
    lang_pairs: Optional[Sequence[Tuple[str, str]]] = None
    valid_size: int = 1000
    valid_max_share: float = 0.1
    spm_model: Optional[str] = None
    dictionary: Optional[str] = None
    vocab_size: int = 16000
    character_coverage: float = 0.9995
    model_type: str = "unigram"
    spm_sampling_alpha: float = 0.5
    spm_max_sentences: int = 100000
    split_cjk: Optional[bool] = None  # None: on, unless alignments are imported
    aligner: str = "fast_align"
    align_suffix: str = "align"
    align_iterations: int = 5
    max_positions: int = 256
    skip_bad_lines: bool = False
    overwrite: bool = False
    seed: int = 1
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)


@dataclass
class Part:
    """One split of one pair, every per-line array kept in step."""

    raw: textio.RawSplit
    src_text: List[str]
    tgt_text: List[str]
    src_spm: Optional[tokenize.Tokens] = None
    tgt_spm: Optional[tokenize.Tokens] = None
    links: Optional[aligners.Links] = None  # word links, once aligned

    def __len__(self):
        return len(self.src_text)

    def subset(self, keep: np.ndarray) -> "Part":
        keep = np.asarray(keep, dtype=bool)
        pick = lambda xs: [x for x, k in zip(xs, keep) if k]  # noqa: E731
        return Part(
            self.raw.select(keep),
            pick(self.src_text),
            pick(self.tgt_text),
            self.src_spm.select(keep) if self.src_spm is not None else None,
            self.tgt_spm.select(keep) if self.tgt_spm is not None else None,
            self.links.select(keep) if self.links is not None else None,
        )

    def select(self, keep: np.ndarray) -> None:
        """Drop lines in place (every per-line field at once)."""
        if not np.asarray(keep, dtype=bool).all():
            self.__dict__.update(self.subset(keep).__dict__)


def resolve_pairs(opts: PrepareOptions) -> List[Tuple[str, str]]:
    pairs = list(opts.lang_pairs or textio.discover_pairs(opts.trainpref))
    if not pairs:
        raise PrepareError(
            f"no language pairs found for --trainpref {opts.trainpref}: expected files like "
            f"{opts.trainpref}.en-de.en and {opts.trainpref}.en-de.de (or {opts.trainpref}.en-de with 'en ||| de' lines)"
        )
    for s, t in pairs:
        for lang in (s, t):
            if not lang or any(c in lang for c in "-./ \t"):
                raise PrepareError(f"invalid language code {lang!r} in pair {s}-{t} (fairseq file names forbid '-', '.', '/')")
        if s == t:
            raise PrepareError(f"pair {s}-{t}: source and target languages must differ")
    if len(set(pairs)) != len(pairs):
        raise PrepareError(f"duplicate language pairs in {pairs}")
    return pairs


def carve_valid(train: Part, n_valid: int, rng: np.random.Generator) -> Part:
    """Move ``n_valid`` random pairs from ``train`` into a new valid Part (order kept)."""
    mask = np.zeros(len(train), dtype=bool)
    mask[rng.choice(len(train), size=n_valid, replace=False)] = True
    valid = train.subset(mask)
    train.select(~mask)
    return valid


def _aligner_words(part: Part, side: str, sp, dict_tokens: tokenize.Tokens, starts_lut: np.ndarray, n_words: np.ndarray):
    """Whitespace words of the pre-tokenized text; where sentencepiece normalization changed the
    word count (rare: e.g. a lone character it deletes), words rebuilt from the pieces instead, so
    link indices always match the dataset's word grouping."""
    texts = part.src_text if side == "src" else part.tgt_text
    spm_tokens = part.src_spm if side == "src" else part.tgt_spm
    words = [t.split() for t in texts]
    for k in np.flatnonzero(np.fromiter(map(len, words), dtype=np.int64, count=len(words)) != n_words):
        pieces = [sp.id_to_piece(int(i)) for i in spm_tokens.sentence(k)]
        words[k] = tokenize.words_from_pieces(pieces, starts_lut[dict_tokens.sentence(k)])
    # fast_align's C++ (systran_align) crashes on a NUL character; the aligner only returns
    # word indices, so renaming the character for it changes nothing else.
    return [[w.replace("\x00", "\ufffd") for w in ws] for ws in words]


def prepare(opts: PrepareOptions) -> dict:
    """Run the preparation; returns the summary (also written to OUT/summary.json)."""
    t_start = time.perf_counter()
    timings: Dict[str, float] = {}

    def lap(name, t0):
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return time.perf_counter()

    if opts.aligner not in aligners.ALIGNERS:
        raise PrepareError(f"--aligner must be one of {aligners.ALIGNERS}, got {opts.aligner!r}")
    if opts.max_positions < 6:
        raise PrepareError("--max-positions must leave room for <s> x </s> </s> y </s>")
    pairs = resolve_pairs(opts)
    imported = opts.aligner == "pharaoh"
    split_cjk = (not imported) if opts.split_cjk is None else opts.split_cjk
    prefixes = {"train": opts.trainpref, **({"valid": opts.validpref} if opts.validpref else {})}
    files = {
        (split, f"{s}-{t}"): textio.locate(prefix, s, t, opts.align_suffix if imported else None)
        for split, prefix in prefixes.items()
        for s, t in pairs
    }
    inputs = [p for f in files.values() for p in f.paths] + [p for p in (opts.spm_model, opts.dictionary) if p]
    for p in (opts.spm_model, opts.dictionary):
        if p and not os.path.isfile(p):
            raise PrepareError(f"file not found: {p}")
    if opts.dictionary and not opts.spm_model:
        raise PrepareError("--dictionary needs the sentencepiece model it was made for (--spm-model)")
    check_output_dir(opts.out, opts.overwrite, inputs)
    bad = BadLines(opts.skip_bad_lines)
    rng = np.random.default_rng(opts.seed)

    with atomic_output_dir(opts.out, opts.overwrite, inputs) as tmp:
        # 1. read, pre-tokenize
        t0 = time.perf_counter()
        parts: Dict[Tuple[str, str], Part] = {}
        lines_read: Dict[str, Dict[str, int]] = {f"{s}-{t}": {} for s, t in pairs}
        for (split, pair), f in tqdm(files.items(), desc="reading", unit="file"):
            raw = textio.read_split(f, bad)
            lines_read[pair][split] = raw.lines_read
            parts[(split, pair)] = Part(
                raw,
                [tokenize.pretokenize(x, split_cjk) for x in raw.src],
                [tokenize.pretokenize(x, split_cjk) for x in raw.tgt],
            )
        t0 = lap("read", t0)

        # 2. sentencepiece
        sampled = {}
        if opts.spm_model:
            sp = tokenize.load_sentencepiece(opts.spm_model)
            tokenize.copy_model(opts.spm_model, tmp)
        else:
            by_lang: Dict[str, List[str]] = {}
            for (split, pair), part in parts.items():
                if split == "train":
                    s, t = pair.split("-")
                    by_lang.setdefault(s, []).extend(part.src_text)
                    by_lang.setdefault(t, []).extend(part.tgt_text)
            sample = tokenize.sample_for_spm(by_lang, opts.spm_sampling_alpha, opts.spm_max_sentences, opts.seed)
            sampled = {"sentences": len(sample), "alpha": opts.spm_sampling_alpha}
            print(f"training sentencepiece ({opts.model_type}, vocab {opts.vocab_size}) on {len(sample)} sentences ...", flush=True)
            sp = tokenize.train_sentencepiece(
                sample, os.path.join(tmp, "spm"), opts.vocab_size, opts.character_coverage, opts.model_type, opts.workers, opts.seed
            )
        t0 = lap("sentencepiece", t0)

        # 3. encode, length filter, dictionary, imported links; 4. valid split
        for key, part in tqdm(parts.items(), desc="encoding", unit="file"):
            part.src_spm = tokenize.encode(sp, part.src_text, opts.workers)
            part.tgt_spm = tokenize.encode(sp, part.tgt_text, opts.workers)
        for (split, pair), part in parts.items():
            ls, lt = part.src_spm.lengths, part.tgt_spm.lengths
            laid_out = ls + lt + 4  # <s> x </s> </s> y </s>
            bad_mask = (ls == 0) | (lt == 0) | (laid_out > opts.max_positions)
            for k in np.flatnonzero(bad_mask):
                f = part.raw.files
                if ls[k] == 0 or lt[k] == 0:
                    side, path = (f.src, f.src_path or f.joint_path) if ls[k] == 0 else (f.tgt, f.tgt_path or f.joint_path)
                    bad.reject(pair, "empty after tokenization", path, int(part.raw.lineno[k]), f"{side} side")
                else:
                    bad.reject(
                        pair, "too long for the model", f.src_path or f.joint_path, int(part.raw.lineno[k]),
                        f"{ls[k]} + {lt[k]} subword tokens, {laid_out[k]} laid out as <s> x </s></s> y </s> > --max-positions {opts.max_positions}",
                    )
            part.select(~bad_mask)
        if opts.dictionary:
            dictionary = Dictionary.load(opts.dictionary)
        else:
            counts = np.zeros(sp.get_piece_size(), dtype=np.int64)
            for (split, _), part in parts.items():
                if split == "train":
                    counts += np.bincount(part.src_spm.flat, minlength=len(counts))
                    counts += np.bincount(part.tgt_spm.flat, minlength=len(counts))
            dictionary = tokenize.build_dictionary(sp, counts)
        if opts.dictionary:  # verbatim, so ids line up with the checkpoint the dictionary belongs to
            shutil.copyfile(opts.dictionary, os.path.join(tmp, "dict.txt"))
        else:
            dictionary.save(os.path.join(tmp, "dict.txt"))
        lut = tokenize.spm_to_dict(sp, dictionary)
        starts_lut = tokenize.is_word_start(dictionary)
        if imported:  # checked before the valid split is drawn, so it never loses lines later
            for (split, pair), part in parts.items():
                _import_links(part, pair, lut, starts_lut, bad)
        if not opts.validpref:
            for s, t in pairs:
                train = parts[("train", f"{s}-{t}")]
                if len(train) < 2:
                    raise PrepareError(f"{s}-{t}: {len(train)} usable pair(s) left; need at least 2 to split off a valid set")
                # at least one: the task loads a valid split for every pair
                n_valid = max(1, min(opts.valid_size, int(opts.valid_max_share * len(train))))
                parts[("valid", f"{s}-{t}")] = carve_valid(train, n_valid, rng)
                lines_read[f"{s}-{t}"]["valid"] = 0
        t0 = lap("encode", t0)

        # 5. alignment
        pair_stats = {}
        for s, t in tqdm(pairs, desc="aligning", unit="pair"):
            pair = f"{s}-{t}"
            split_parts = [parts[(split, pair)] for split in SPLITS]
            if not imported:
                words = {"src": [], "tgt": []}
                for part in split_parts:
                    for side, spm_tokens in (("src", part.src_spm), ("tgt", part.tgt_spm)):
                        dict_tokens = spm_tokens.map(lut)
                        n_words = tokenize.words_per_sentence(dict_tokens, starts_lut)
                        words[side].extend(_aligner_words(part, side, sp, dict_tokens, starts_lut, n_words))
                if opts.aligner == "fast_align":
                    links = aligners.fast_align(words["src"], words["tgt"], tmp, iterations=opts.align_iterations, desc=f"fast_align {pair}")
                else:
                    links = aligners.eflomal_align(words["src"], words["tgt"], tmp, desc=f"eflomal {pair}")
                n_train = len(split_parts[0])
                in_train = np.arange(len(links.counts)) < n_train
                split_parts[0].links, split_parts[1].links = links.select(in_train), links.select(~in_train)
        t0 = lap("align", t0)

        # 6. project + binarize
        tokens_per_lang: Counter = Counter()
        vocab_size = len(dictionary)
        for s, t in tqdm(pairs, desc="binarizing", unit="pair"):
            pair = f"{s}-{t}"
            n_links, cov_words, cov_linked, unk = 0, np.zeros(2), np.zeros(2), 0
            for split in SPLITS:
                part = parts[(split, pair)]
                src_tok, tgt_tok = part.src_spm.map(lut), part.tgt_spm.map(lut)
                n_src_words = tokenize.words_per_sentence(src_tok, starts_lut)
                n_tgt_words = tokenize.words_per_sentence(tgt_tok, starts_lut)
                sub = project_alignments_batch(
                    part.links.flat, part.links.sentence,
                    tokenize.pieces_per_word_flat(src_tok, starts_lut), n_src_words,
                    tokenize.pieces_per_word_flat(tgt_tok, starts_lut), n_tgt_words,
                )
                binarize.write_tokens(binarize.pair_prefix(tmp, split, s, t, s), src_tok, dictionary.eos(), vocab_size)
                binarize.write_tokens(binarize.pair_prefix(tmp, split, s, t, t), tgt_tok, dictionary.eos(), vocab_size)
                binarize.write_alignments(binarize.align_prefix(tmp, split, s, t), aligners.Links(sub, part.links.counts))
                n_links += len(part.links.flat)
                for side, n_words in enumerate((n_src_words, n_tgt_words)):
                    cov_words[side] += n_words.sum()
                    cov_linked[side] += summary_mod.coverage(part.links, n_words, side) * n_words.sum()
                tokens_per_lang[s] += int(src_tok.lengths.sum())
                tokens_per_lang[t] += int(tgt_tok.lengths.sum())
                unk += int((src_tok.flat == dictionary.unk()).sum() + (tgt_tok.flat == dictionary.unk()).sum())
            pair_stats[pair] = summary_mod.pair_entry(
                lines_read[pair],
                {split: len(parts[(split, pair)]) for split in SPLITS},
                bad.dropped(pair),
                links=n_links,
                coverage={"src": float(cov_linked[0] / max(cov_words[0], 1)), "tgt": float(cov_linked[1] / max(cov_words[1], 1))},
                words={"src": int(cov_words[0]), "tgt": int(cov_words[1])},
                unk_tokens=unk,
            )
        t0 = lap("binarize", t0)
        timings["total"] = time.perf_counter() - t_start

        result = {
            "output": os.path.abspath(opts.out),
            "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()},
            "pretokenize": {"split_cjk": split_cjk},
            "sentencepiece": {"model": "spm.model", "trained": not opts.spm_model, "pieces": sp.get_piece_size(), **sampled},
            "dictionary": {"file": "dict.txt", "size": len(dictionary), "source": opts.dictionary or "built from train"},
            "lang_pairs": [f"{s}-{t}" for s, t in pairs],
            "pairs": pair_stats,
            "tokens_per_language": dict(sorted(tokens_per_lang.items())),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
        if result["options"]["lang_pairs"] is not None:
            result["options"]["lang_pairs"] = [f"{s}-{t}" for s, t in pairs]
        summary_mod.write_summary(tmp, result)
    return result


def _import_links(part: Part, pair: str, lut, starts_lut, bad: BadLines) -> None:
    """Check imported Pharaoh links against the words the dataset will see; drop or stop on errors."""
    f = part.raw.files
    n_in = {side: np.fromiter((len(x.split()) for x in texts), dtype=np.int64, count=len(texts))
            for side, texts in (("src", part.raw.src), ("tgt", part.raw.tgt))}
    n_tok = {side: tokenize.words_per_sentence(tokens.map(lut), starts_lut)
             for side, tokens in (("src", part.src_spm), ("tgt", part.tgt_spm))}
    mismatch = (n_in["src"] != n_tok["src"]) | (n_in["tgt"] != n_tok["tgt"])
    for k in np.flatnonzero(mismatch):
        side = "src" if n_in["src"][k] != n_tok["src"][k] else "tgt"
        path = (f.src_path if side == "src" else f.tgt_path) or f.joint_path
        bad.reject(
            pair, "word count changed by tokenization", path, int(part.raw.lineno[k]),
            f"{n_in[side][k]} words in the input, {n_tok[side][k]} after pre-tokenization and sentencepiece; "
            "imported alignments must index the words prepare sees (pass --no-split-cjk)",
        )
    part.select(~mismatch)
    links, keep = aligners.import_pharaoh(
        part.raw.align, n_in["src"][~mismatch], n_in["tgt"][~mismatch],
        path=f.align_path, linenos=part.raw.lineno, bad=bad, pair=pair,
    )
    part.select(keep)
    part.links = links
