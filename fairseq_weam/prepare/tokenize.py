"""Sentencepiece and the fairseq dictionary of the prepared data.

Words are what the aligner links and what WEAM masks as a whole. The WEAM dataset finds words
among subwords by the sentencepiece word-start marker U+2581, so a word here is exactly a
whitespace-separated token of the pre-tokenized line (:mod:`fairseq_weam.core.pretokenize`):
sentencepiece (``split_by_whitespace``) never lets a piece cross a space, and every space becomes a
U+2581 on the next piece.
"""

import os
import re
from dataclasses import dataclass
from itertools import chain
from typing import Dict, List, Sequence

import numpy as np
import sentencepiece as spm
from fairseq.data import Dictionary

from fairseq_weam.core.data_dir import piece_symbols
from fairseq_weam.data.language_sampling import temperature_probs
from fairseq_weam.data.masking import WORD_START, word_start_mask
from fairseq_weam.prepare.errors import PrepareError


@dataclass
class Tokens:
    """Sentences as one flat id array plus lengths (no eos), cheap to filter and binarize."""

    flat: np.ndarray
    lengths: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    def __len__(self):
        return len(self.lengths)

    def select(self, keep: np.ndarray) -> "Tokens":
        keep = np.asarray(keep, dtype=bool)
        return Tokens(self.flat[np.repeat(keep, self.lengths)], self.lengths[keep])

    def map(self, lut: np.ndarray) -> "Tokens":
        return Tokens(lut[self.flat], self.lengths)

    def sentence(self, k: int) -> np.ndarray:
        off = self.offsets
        return self.flat[off[k] : off[k + 1]]


def sample_for_spm(texts_by_lang: Dict[str, Sequence[str]], alpha: float, max_sentences: int, seed: int) -> List[str]:
    """Sentences to train sentencepiece on, languages re-weighted by ``q_l ~ p_l ** alpha``.

    ``p_l`` is language l's share of the distinct sentences; alpha < 1 flattens the distribution
    (XLM: 0.5; XLM-R: 0.3) so a low-resource script still gets pieces of its own. A language whose
    quota exceeds its sentences is up-sampled by repetition. At most ``max_sentences`` in all.
    """
    rng = np.random.default_rng(seed)
    unique = {lang: sorted(set(texts)) for lang, texts in texts_by_lang.items()}
    unique = {lang: t for lang, t in unique.items() if t}
    if not unique:
        return []
    n = np.array([len(t) for t in unique.values()], dtype=np.float64)
    q = temperature_probs(n, alpha)
    budget = min(max_sentences, int(n.sum())) if max_sentences > 0 else int(n.sum())
    out = []
    for (lang, texts), share in zip(unique.items(), q):
        want = max(1, int(round(share * budget)))
        if want <= len(texts):
            idx = rng.choice(len(texts), size=want, replace=False)
        else:
            idx = np.concatenate([np.arange(len(texts)), rng.choice(len(texts), size=want - len(texts))])
        out.extend(texts[i] for i in idx)
    return out


def train_sentencepiece(
    sentences: Sequence[str],
    prefix: str,
    vocab_size: int,
    character_coverage: float = 0.9995,
    model_type: str = "unigram",
    threads: int = 1,
    seed: int = 1,
) -> spm.SentencePieceProcessor:
    try:
        _train_sentencepiece(sentences, prefix, vocab_size, character_coverage, model_type, threads, seed)
    except RuntimeError as e:  # sentencepiece's own check, e.g. "Vocabulary size is smaller than required_chars"
        detail = str(e).split("] ", 1)[-1].splitlines()[0]
        m = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", detail)
        if m:
            raise PrepareError(
                f"--vocab-size {vocab_size}: smaller than the {m.group(2)} characters and pieces sentencepiece "
                f"needs for this text; use at least {m.group(2)}"
            ) from None
        raise PrepareError(f"sentencepiece could not be trained with --vocab-size {vocab_size}: {detail}") from None
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def _train_sentencepiece(sentences, prefix, vocab_size, character_coverage, model_type, threads, seed) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_prefix=prefix,
        vocab_size=vocab_size,
        # A soft limit: a small corpus yields a smaller vocabulary instead of an error.
        hard_vocab_limit=False,
        character_coverage=character_coverage,
        model_type=model_type,
        # fairseq's Dictionary owns <s>, <pad>, </s>; sentencepiece keeps only <unk>.
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        unk_id=0,
        num_threads=threads,
        input_sentence_size=0,  # the sample is already drawn (sample_for_spm)
        shuffle_input_sentence=False,
        minloglevel=2,
    )


def load_sentencepiece(path: str) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=path)


def encode(sp: spm.SentencePieceProcessor, texts: Sequence[str], threads: int = 1) -> Tokens:
    """Sentencepiece ids of each text (in the model's own id space)."""
    ids = sp.encode(list(texts), out_type=int, num_threads=threads)
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    return Tokens(flat, lengths)


def build_dictionary(sp: spm.SentencePieceProcessor, counts: np.ndarray) -> Dictionary:
    """A fairseq Dictionary of every piece of the model, sorted by count like fairseq-preprocess.

    Unlike fairseq-preprocess we keep pieces unseen in training (count 0): a piece mapped to
    <unk> would lose its U+2581 and merge two words in the dataset's view.
    """
    d = Dictionary()
    for i, sym in enumerate(piece_symbols(sp)):
        if sym is not None:
            d.add_symbol(sym, n=int(counts[i]) if i < len(counts) else 0)
    d.finalize(threshold=-1, nwords=-1, padding_factor=8)
    return d


def is_word_start(d: Dictionary) -> np.ndarray:
    """Per dictionary id, does it open a word: the very rule the WEAM dataset applies."""
    return word_start_mask(d.symbols, "sentencepiece")


def words_per_sentence(tokens: Tokens, starts_lut: np.ndarray) -> np.ndarray:
    """Word count of each sentence as the dataset will see it (first token always opens a word)."""
    starts = starts_lut[tokens.flat].astype(np.int64)
    off = tokens.offsets
    nonempty = tokens.lengths > 0
    starts[off[:-1][nonempty]] = 1
    counts = np.zeros(len(tokens), dtype=np.int64)
    if starts.size:
        counts[nonempty] = np.add.reduceat(starts, off[:-1][nonempty])
    return counts


def pieces_per_word_flat(tokens: Tokens, starts_lut: np.ndarray) -> np.ndarray:
    """Pieces of each word, concatenated over all sentences (empty sentences contribute none)."""
    starts = starts_lut[tokens.flat].copy()
    off = tokens.offsets
    starts[off[:-1][tokens.lengths > 0]] = True
    pos = np.flatnonzero(starts)
    return np.diff(np.concatenate([pos, [len(tokens.flat)]]))


def words_from_pieces(pieces: Sequence[str], starts: Sequence[bool]) -> List[str]:
    """Group piece strings into words at ``starts`` (position 0 always starts), dropping U+2581."""
    words = []
    for k, (piece, start) in enumerate(zip(pieces, starts)):
        if start or k == 0:
            words.append(piece)
        else:
            words[-1] += piece
    return [w.replace(WORD_START, "") or WORD_START for w in words]


def copy_model(sp_path: str, out_dir: str) -> str:
    dst = os.path.join(out_dir, "spm.model")
    with open(sp_path, "rb") as f, open(dst, "wb") as g:
        g.write(f.read())
    return dst
