"""The preparation as a chain of small stages over chunks of lines.

    read -> pretokenize -> encode -> check -> align -> binarize

Each stage is a function of its input chunk and the fitted files (sentencepiece model, fairseq
dictionary, aligner parameters), so one chunk gives the same result whatever else is prepared
with it: the one-shot path, ``fit`` and ``apply`` all run this chain, in one process or many.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from fairseq.data import Dictionary

from fairseq_weam.core.data_dir import PreparedData, spm_to_dict
from fairseq_weam.core.pretokenize import pretokenize as normalize_line
from fairseq_weam.data.alignment import project_alignments_batch
from fairseq_weam.prepare import aligners, textio, tokenize
from fairseq_weam.prepare import binarize as binarize_mod
from fairseq_weam.prepare.errors import BadLines


@dataclass
class Vocab:
    """Sentencepiece model + fairseq dictionary, and the lookups the stages derive from them."""

    sp: object
    dictionary: Dictionary
    lut: np.ndarray  # sentencepiece id -> dictionary id
    spm_starts: np.ndarray  # sentencepiece id -> opens a word, as the WEAM dataset sees it

    @classmethod
    def of(cls, sp, dictionary: Optional[Dictionary] = None) -> "Vocab":
        """Without a dictionary: a provisional one with every piece. Word starts depend only on the
        pieces' spelling, not on the dictionary's order, so they are final already (the stages up
        to ``align`` need nothing else; ``binarize`` needs the real dictionary)."""
        if dictionary is None:
            dictionary = tokenize.build_dictionary(sp, np.zeros(sp.get_piece_size(), dtype=np.int64))
        lut = spm_to_dict(sp, dictionary)
        return cls(sp, dictionary, lut, tokenize.is_word_start(dictionary)[lut])

    @classmethod
    def load(cls, model_dir: str) -> "Vocab":
        """The fitted directory's sentencepiece model and dictionary (laid out as a prepared one)."""
        fitted = PreparedData(model_dir)
        return cls.of(fitted.sentencepiece(), fitted.dictionary())


@dataclass
class Chunk:
    """Consecutive lines of one split of one pair, every per-line array kept in step."""

    raw: textio.RawSplit
    src_text: List[str]
    tgt_text: List[str]
    src_spm: Optional[tokenize.Tokens] = None
    tgt_spm: Optional[tokenize.Tokens] = None
    links: Optional[aligners.Links] = None  # word links, once aligned

    def __len__(self):
        return len(self.src_text)

    @property
    def pair(self) -> str:
        return self.raw.files.pair

    def select(self, keep: np.ndarray) -> None:
        """Drop lines in place (every per-line field at once)."""
        keep = np.asarray(keep, dtype=bool)
        if keep.all():
            return
        pick = lambda xs: [x for x, k in zip(xs, keep) if k]  # noqa: E731
        self.raw = self.raw.select(keep)
        self.src_text, self.tgt_text = pick(self.src_text), pick(self.tgt_text)
        for name in ("src_spm", "tgt_spm", "links"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).select(keep))


@dataclass
class Stats:
    """What one chunk contributed to the summary (added up over chunks)."""

    kept: int = 0
    links: int = 0
    words: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))  # src, tgt
    linked_words: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    unk: int = 0

    def __iadd__(self, other: "Stats") -> "Stats":
        self.kept += other.kept
        self.links += other.links
        self.words = self.words + other.words
        self.linked_words = self.linked_words + other.linked_words
        self.tokens = self.tokens + other.tokens
        self.unk += other.unk
        return self

    def to_json(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, d: dict) -> "Stats":
        return cls(**{k: (np.asarray(v, dtype=np.int64) if isinstance(v, list) else v) for k, v in d.items()})


# -- the stages ------------------------------------------------------------------------------


def read(files: textio.PairFiles, span: Optional[textio.Span], bad: BadLines) -> textio.RawSplit:
    """Lines of ``span`` (None: the whole split), checked; bad lines stop or are counted."""
    return textio.read_split(files, bad, span)


def pretokenize(raw: textio.RawSplit, split_cjk: bool) -> Chunk:
    return Chunk(
        raw,
        [normalize_line(x, split_cjk) for x in raw.src],
        [normalize_line(x, split_cjk) for x in raw.tgt],
    )


def encode(chunk: Chunk, sp, threads: int = 1) -> Chunk:
    chunk.src_spm = tokenize.encode(sp, chunk.src_text, threads)
    chunk.tgt_spm = tokenize.encode(sp, chunk.tgt_text, threads)
    return chunk


def check(chunk: Chunk, max_positions: int, bad: BadLines, vocab: Vocab, imported: bool) -> Chunk:
    """Drop (or stop at) pairs empty after tokenization or too long for the model; parse and check
    imported links against the words the dataset will see."""
    ls, lt = chunk.src_spm.lengths, chunk.tgt_spm.lengths
    laid_out = ls + lt + 4  # <s> x </s> </s> y </s>
    bad_mask = (ls == 0) | (lt == 0) | (laid_out > max_positions)
    f = chunk.raw.files
    for k in np.flatnonzero(bad_mask):
        if ls[k] == 0 or lt[k] == 0:
            side, path = (f.src, f.src_path or f.joint_path) if ls[k] == 0 else (f.tgt, f.tgt_path or f.joint_path)
            bad.reject(chunk.pair, "empty after tokenization", path, int(chunk.raw.lineno[k]), f"{side} side")
        else:
            bad.reject(
                chunk.pair,
                "too long for the model",
                f.src_path or f.joint_path,
                int(chunk.raw.lineno[k]),
                f"{ls[k]} + {lt[k]} subword tokens, {laid_out[k]} laid out as <s> x </s></s> y </s> > --max-positions "
                f"{max_positions}",
            )
    chunk.select(~bad_mask)
    if imported:
        _import_links(chunk, vocab, bad)
    return chunk


def aligner_words(chunk: Chunk, vocab: Vocab) -> Tuple[List[List[str]], List[List[str]]]:
    """Whitespace words of the pre-tokenized text, per side; where sentencepiece normalization
    changed the word count (rare: e.g. a lone character it deletes), words rebuilt from the pieces
    instead, so link indices always match the dataset's word grouping."""
    out = []
    for texts, spm_tokens in ((chunk.src_text, chunk.src_spm), (chunk.tgt_text, chunk.tgt_spm)):
        n_words = tokenize.words_per_sentence(spm_tokens, vocab.spm_starts)
        words = [t.split() for t in texts]
        for k in np.flatnonzero(np.fromiter(map(len, words), dtype=np.int64, count=len(words)) != n_words):
            ids = spm_tokens.sentence(k)
            words[k] = tokenize.words_from_pieces([vocab.sp.id_to_piece(int(i)) for i in ids], vocab.spm_starts[ids])
        # fast_align's C++ (systran_align) crashes on a NUL character; the aligner only returns
        # word indices, so renaming the character for it changes nothing else.
        out.append([[w.replace("\x00", "\ufffd") for w in ws] for ws in words])
    return out[0], out[1]


def align(chunk: Chunk, vocab: Vocab, aligner) -> Chunk:
    """Word links of every pair from the fitted ``aligner`` (imported links are already there)."""
    if chunk.links is None:
        chunk.links = aligner.align(*aligner_words(chunk, vocab), desc=f"align {chunk.pair}")
    return chunk


@dataclass
class Binarized:
    """A chunk as the three fairseq datasets' items ``(flat, lengths)``, and its statistics."""

    src: Tuple[np.ndarray, np.ndarray]
    tgt: Tuple[np.ndarray, np.ndarray]
    align: Tuple[np.ndarray, np.ndarray]
    stats: Stats


def binarize(chunk: Chunk, vocab: Vocab) -> Binarized:
    """Dictionary ids with eos, and word links projected to subword positions."""
    d = vocab.dictionary
    starts = tokenize.is_word_start(d)
    src_tok, tgt_tok = chunk.src_spm.map(vocab.lut), chunk.tgt_spm.map(vocab.lut)
    n_src_words = tokenize.words_per_sentence(src_tok, starts)
    n_tgt_words = tokenize.words_per_sentence(tgt_tok, starts)
    links = chunk.links
    sub = project_alignments_batch(
        links.flat,
        links.sentence,
        tokenize.pieces_per_word_flat(src_tok, starts),
        n_src_words,
        tokenize.pieces_per_word_flat(tgt_tok, starts),
        n_tgt_words,
    )
    stats = Stats(
        kept=len(chunk),
        links=len(links.flat),
        words=np.array([n_src_words.sum(), n_tgt_words.sum()], dtype=np.int64),
        linked_words=np.array(
            [linked_words(links, n_src_words, 0), linked_words(links, n_tgt_words, 1)], dtype=np.int64
        ),
        tokens=np.array([src_tok.lengths.sum(), tgt_tok.lengths.sum()], dtype=np.int64),
        unk=int((src_tok.flat == d.unk()).sum() + (tgt_tok.flat == d.unk()).sum()),
    )
    return Binarized(
        binarize_mod.with_eos(src_tok, d.eos()),
        binarize_mod.with_eos(tgt_tok, d.eos()),
        binarize_mod.alignment_items(aligners.Links(sub, links.counts)),
        stats,
    )


def linked_words(links: aligners.Links, n_words: np.ndarray, side: int) -> int:
    """Words (of one side) with at least one link."""
    if not links.flat.size:
        return 0
    word_offset = np.concatenate([[0], np.cumsum(n_words)[:-1]])
    return len(np.unique(word_offset[links.sentence] + links.flat[:, side]))


def _import_links(chunk: Chunk, vocab: Vocab, bad: BadLines) -> None:
    """Check imported Pharaoh links against the words the dataset will see; drop or stop on errors."""
    f = chunk.raw.files
    n_in = {
        side: np.fromiter((len(x.split()) for x in texts), dtype=np.int64, count=len(texts))
        for side, texts in (("src", chunk.raw.src), ("tgt", chunk.raw.tgt))
    }
    n_tok = {
        side: tokenize.words_per_sentence(tokens, vocab.spm_starts)
        for side, tokens in (("src", chunk.src_spm), ("tgt", chunk.tgt_spm))
    }
    mismatch = (n_in["src"] != n_tok["src"]) | (n_in["tgt"] != n_tok["tgt"])
    for k in np.flatnonzero(mismatch):
        side = "src" if n_in["src"][k] != n_tok["src"][k] else "tgt"
        path = (f.src_path if side == "src" else f.tgt_path) or f.joint_path
        bad.reject(
            chunk.pair,
            "word count changed by tokenization",
            path,
            int(chunk.raw.lineno[k]),
            f"{n_in[side][k]} words in the input, {n_tok[side][k]} after pre-tokenization and sentencepiece; "
            "imported alignments must index the words prepare sees (pass --no-split-cjk)",
        )
    chunk.select(~mismatch)
    links, keep = aligners.import_pharaoh(
        chunk.raw.align,
        n_in["src"][~mismatch],
        n_in["tgt"][~mismatch],
        path=f.align_path,
        linenos=chunk.raw.lineno,
        bad=bad,
        pair=chunk.pair,
    )
    chunk.select(keep)
    chunk.links = links


def encoded_chunk(
    files: textio.PairFiles,
    span: Optional[textio.Span],
    bad: BadLines,
    vocab: Vocab,
    *,
    split_cjk: bool,
    max_positions: int,
    imported: bool,
    threads: int = 1,
) -> Chunk:
    """read -> pretokenize -> encode -> check: the clean, encoded pairs of one span."""
    chunk = pretokenize(read(files, span, bad), split_cjk)
    return check(encode(chunk, vocab.sp, threads), max_positions, bad, vocab, imported)


def drop_lines(chunk: Chunk, linenos: np.ndarray) -> Chunk:
    """Remove the pairs whose 1-based input line is in ``linenos`` (the carved valid split)."""
    if len(linenos):
        chunk.select(~np.isin(chunk.raw.lineno, linenos))
    return chunk


def merge_counts(total: Dict[str, Dict], part: Dict[str, Dict]) -> None:
    for pair, reasons in part.items():
        bucket = total.setdefault(pair, {})
        for reason, n in reasons.items():
            bucket[reason] = bucket.get(reason, 0) + n
