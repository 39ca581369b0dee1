"""Word alignments: parsing Pharaoh ``i-j`` links, projecting them onto subword positions, and
checking binarized alignment files against their sentences.

Alignments are computed on whitespace words (that is what statistical aligners see) and stored,
in fairseq's own ``--align-suffix`` format, on subword positions: each word link ``(a, b)``
becomes one link between the *first* pieces of words ``a`` and ``b``. That is lossless for a
reader that knows the word boundaries (the WEAM dataset groups pieces back into words), and it
keeps the files as small as the word alignments themselves.
"""

import re
from typing import Optional, Sequence

import numpy as np

from fairseq_weam.core.errors import WeamError


class AlignmentError(WeamError, ValueError):
    """A malformed or out-of-range alignment; the message names the file and line."""


_LINK = re.compile(r"([0-9]+)-([0-9]+)")  # ASCII digits only (str.isdigit() also accepts "\u00b2")
_MAX_INDEX = 2**63 - 1


def _index(digits: str) -> Optional[int]:
    digits = digits.lstrip("0") or "0"
    if len(digits) > 19:  # also keeps int() clear of Python's 4300-digit limit
        return None
    value = int(digits)
    return value if value <= _MAX_INDEX else None


def parse_pharaoh(line: str, *, path: str = "<alignments>", lineno: int = 0) -> np.ndarray:
    """Parse ``"0-0 1-2 2-1"`` into an ``(L, 2)`` int64 array; raise AlignmentError if malformed."""
    fields = line.split()
    links = np.empty((len(fields), 2), dtype=np.int64)
    for k, field in enumerate(fields):
        m = _LINK.fullmatch(field)
        i, j = (_index(m.group(1)), _index(m.group(2))) if m else (None, None)
        if i is None or j is None:
            raise AlignmentError(f"{path}:{lineno}: malformed alignment link {field!r} (expected i-j)")
        links[k] = (i, j)
    return links


def check_links_in_range(links: np.ndarray, n_src: int, n_tgt: int, *, path: str, lineno: int) -> None:
    """Raise AlignmentError naming file, line and link when a link points past its sentence."""
    if links.shape[0] == 0:
        return
    bad = (links[:, 0] >= n_src) | (links[:, 1] >= n_tgt)
    if bad.any():
        i, j = links[np.flatnonzero(bad)[0]]
        raise AlignmentError(
            f"{path}:{lineno}: alignment link {i}-{j} out of range for a pair of "
            f"{n_src} source and {n_tgt} target words/tokens"
        )


def first_piece_positions(pieces_per_word: Sequence[int]) -> np.ndarray:
    """Subword position of the first piece of each word."""
    counts = np.asarray(pieces_per_word, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(counts)[:-1]]) if counts.size else counts


def project_alignments(
    word_links: np.ndarray, src_pieces_per_word: Sequence[int], tgt_pieces_per_word: Sequence[int]
) -> np.ndarray:
    """Project word links onto subword positions (first piece to first piece)."""
    word_links = np.asarray(word_links, dtype=np.int64).reshape(-1, 2)
    if word_links.shape[0] == 0:
        return word_links
    src_first = first_piece_positions(src_pieces_per_word)
    tgt_first = first_piece_positions(tgt_pieces_per_word)
    return np.stack([src_first[word_links[:, 0]], tgt_first[word_links[:, 1]]], axis=1)


def format_pharaoh(links) -> str:
    """``i-j`` links separated by spaces, in the order given (an ``[N, 2]`` array or pairs)."""
    return " ".join(f"{i}-{j}" for i, j in np.asarray(links, dtype=np.int64).reshape(-1, 2))


def validate_binarized_alignments(
    link_counts: np.ndarray,
    flat_links: np.ndarray,
    src_lengths: np.ndarray,
    tgt_lengths: np.ndarray,
    *,
    path: str,
) -> None:
    """Check every sentence's links at once (vectorized over the whole file).

    ``link_counts[k]`` is the number of ints stored for sentence k (2 per link), ``flat_links``
    all of them concatenated, ``src_lengths`` / ``tgt_lengths`` the token counts without eos.
    Lines in messages are 1-based like the text file the alignments came from.
    """
    link_counts = np.asarray(link_counts, dtype=np.int64)
    odd = np.flatnonzero(link_counts % 2)
    if odd.size:
        raise AlignmentError(f"{path}: line {odd[0] + 1}: odd number of alignment indices ({link_counts[odd[0]]})")
    pairs = np.asarray(flat_links, dtype=np.int64).reshape(-1, 2)
    sentence = np.repeat(np.arange(link_counts.shape[0]), link_counts // 2)
    bad = (pairs[:, 0] < 0) | (pairs[:, 1] < 0)
    bad |= pairs[:, 0] >= src_lengths[sentence]
    bad |= pairs[:, 1] >= tgt_lengths[sentence]
    if bad.any():
        k = np.flatnonzero(bad)[0]
        s = sentence[k]
        raise AlignmentError(
            f"{path}: line {s + 1}: alignment link {pairs[k, 0]}-{pairs[k, 1]} out of range for a "
            f"pair of {src_lengths[s]} source and {tgt_lengths[s]} target tokens"
        )


def pieces_per_word(pieces: Sequence[str]) -> np.ndarray:
    """Pieces of each whitespace word in a sentencepiece encoding (U+2581 opens a word)."""
    starts = [k for k, p in enumerate(pieces) if p.startswith("\u2581") or k == 0]
    return np.diff(np.asarray(starts + [len(pieces)], dtype=np.int64))


def project_alignments_batch(
    word_links: np.ndarray,
    link_sentence: np.ndarray,
    src_pieces_per_word: np.ndarray,
    src_words_per_sentence: np.ndarray,
    tgt_pieces_per_word: np.ndarray,
    tgt_words_per_sentence: np.ndarray,
) -> np.ndarray:
    """``project_alignments`` over a whole corpus at once (no Python loop over sentences).

    ``word_links[k]`` is a word link of sentence ``link_sentence[k]``; ``*_pieces_per_word`` are
    concatenated over all sentences' words and ``*_words_per_sentence`` says how many words each
    sentence has. Returns the ``(L, 2)`` subword links, first piece to first piece.
    """
    word_links = np.asarray(word_links, dtype=np.int64).reshape(-1, 2)
    link_sentence = np.asarray(link_sentence, dtype=np.int64)

    def first_in_sentence(pieces_per_word, words_per_sentence):
        words_per_sentence = np.asarray(words_per_sentence, dtype=np.int64)
        first = first_piece_positions(pieces_per_word)  # over the concatenation
        word_offset = np.concatenate([[0], np.cumsum(words_per_sentence)[:-1]])
        sentence_start = first[np.minimum(word_offset, max(len(first) - 1, 0))] if len(first) else first
        return first - np.repeat(sentence_start, words_per_sentence), word_offset

    src_first, src_off = first_in_sentence(src_pieces_per_word, src_words_per_sentence)
    tgt_first, tgt_off = first_in_sentence(tgt_pieces_per_word, tgt_words_per_sentence)
    if word_links.shape[0] == 0:
        return word_links
    return np.stack(
        [src_first[src_off[link_sentence] + word_links[:, 0]], tgt_first[tgt_off[link_sentence] + word_links[:, 1]]],
        axis=1,
    )
