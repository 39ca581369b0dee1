"""WEAM masking and target construction as pure numpy functions.

A training example is a parallel pair laid out as in TLM with RoBERTa / XLM-R separators::

    <s> x_1 .. x_m </s> </s> y_1 .. y_n </s>

Whole words are selected for masking; words joined by alignment links form one *aligned unit*
(a connected component of the bipartite link graph) and are masked together, so a masked word's
translation is never visible on the other side. Every masked token predicts its own original
token (the multilingual target); every masked word that has an aligned partner also predicts
content pieces of that partner (the cross-lingual, word-exchange target).

The rules, each tested on exact positions in ``tests/test_masking.py``:

* **Rate.** Units are visited in random order and taken while they fit in the budget
  ``mask_prob * n_words``; the first unit that does not fit is taken with the probability that
  makes the *expected* number of masked words exactly ``mask_prob * n_words`` (for single words
  this is fairseq's ``int(p * n + u)`` rounding). WEAM, TLM and MLM therefore mask the same share
  of words in expectation, however large the aligned units.
* **Partner.** Of a word's linked partners, the one whose first content piece is rarest
  (smallest dictionary count, then longest piece, then smallest index) is the exchange partner:
  for ``house`` aligned to ``la maison``, ``maison``.
* **Targets.** A *content* piece is one that is more than a word-start marker (sentencepiece's
  bare ``▁`` is not). ``first-content``: the partner's first content piece, one target.
  ``all-pieces``: every content piece of the partner, each weighted ``1 / n_pieces``. A partner
  without content pieces gives no target.
* **Weights.** Each masked word with a partner carries cross-lingual weight 1 in total, spread
  over its carrying positions (``xl_positions``: its first piece, or all its pieces) and target
  pieces, so the cross-lingual mean counts words, whatever the flags.

Nothing here imports fairseq or torch so the math can be tested on hand-made cases.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fairseq_weam.core.errors import OptionError
from fairseq_weam.data.alignment import AlignmentError

XL_POSITIONS = ("first", "all")
XL_TARGETS = ("first-content", "all-pieces")
WORD_BOUNDARIES = ("sentencepiece", "token")
WORD_START = "\u2581"


@dataclass(frozen=True)
class MaskingParams:
    """How tokens are masked and replaced (BERT's 80/10/10 by default)."""

    mask_prob: float = 0.3
    leave_unmasked_prob: float = 0.1
    random_token_prob: float = 0.1
    # "first": only the first subword of a masked aligned word carries the cross-lingual target;
    # "all": every subword of it does (each with an equal share of the word's weight).
    xl_positions: str = "first"
    # "first-content": the partner's first content piece; "all-pieces": all its content pieces.
    xl_target: str = "first-content"

    def __post_init__(self):
        if not 0.0 < self.mask_prob <= 1.0:
            raise OptionError(f"--mask-prob must be in (0, 1], got {self.mask_prob}")
        if self.leave_unmasked_prob < 0 or self.random_token_prob < 0:
            raise OptionError("--leave-unmasked-prob and --random-token-prob must be >= 0")
        if self.leave_unmasked_prob + self.random_token_prob > 1.0:
            raise OptionError("--leave-unmasked-prob + --random-token-prob must be <= 1")
        if self.xl_positions not in XL_POSITIONS:
            raise OptionError(f"--xl-positions must be one of {XL_POSITIONS}, got {self.xl_positions!r}")
        if self.xl_target not in XL_TARGETS:
            raise OptionError(f"--xl-target must be one of {XL_TARGETS}, got {self.xl_target!r}")


@dataclass(frozen=True)
class PieceTable:
    """What masking needs to know about each vocabulary symbol, as arrays over the vocabulary."""

    is_word_start: np.ndarray  # bool: the symbol opens a word
    is_content: np.ndarray  # bool: the symbol is more than a word-start marker (or a special)
    count: np.ndarray  # int64: corpus count (dictionary count); smaller = rarer partner
    length: np.ndarray  # int64: characters of the symbol without the marker (partner tie-break)

    @classmethod
    def from_symbols(
        cls,
        symbols: Sequence[str],
        counts: Optional[Sequence[int]] = None,
        word_boundary: str = "sentencepiece",
        nspecial: int = 4,
        specials: Sequence[int] = (),
    ) -> "PieceTable":
        """``sentencepiece``: symbols starting with U+2581 open a word; ``token``: every symbol is a
        word. The first ``nspecial`` symbols and the ids in ``specials`` (e.g. ``<mask>``) are
        never content."""
        if word_boundary not in WORD_BOUNDARIES:
            raise OptionError(f"--word-boundary must be one of {WORD_BOUNDARIES}, got {word_boundary!r}")
        if word_boundary == "token":
            starts = np.ones(len(symbols), dtype=bool)
            body = list(symbols)
        else:
            starts = np.array([s.startswith(WORD_START) for s in symbols], dtype=bool)
            body = [s.replace(WORD_START, "") for s in symbols]
        length = np.array([len(b) for b in body], dtype=np.int64)
        content = length > 0
        content[:nspecial] = False
        content[list(specials)] = False
        count = np.zeros(len(symbols), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        return cls(is_word_start=starts, is_content=content, count=count, length=length)


def word_start_mask(symbols: Sequence[str], word_boundary: str) -> np.ndarray:
    """Boolean array over a vocabulary's symbols: does this symbol open a word?"""
    return PieceTable.from_symbols(symbols, None, word_boundary, nspecial=0).is_word_start


@dataclass
class WeamExample:
    """One laid-out pair: model input and target rows.

    ``ml_target`` ``[L]``: the original token at masked positions, ``pad`` elsewhere.
    ``xl_target`` ``[L, K]`` / ``xl_weight`` ``[L, K]``: up to K exchange targets per position and
    their weights (``pad`` / 0 where none)."""

    tokens: np.ndarray
    ml_target: np.ndarray
    xl_target: np.ndarray
    xl_weight: np.ndarray


def word_ids(is_word_start: np.ndarray) -> np.ndarray:
    """Index of the word each token belongs to; the first token always opens a word."""
    starts = np.asarray(is_word_start, dtype=bool).copy()
    if starts.size:
        starts[0] = True
    return np.cumsum(starts) - 1


def word_links(token_links: np.ndarray, src_word: np.ndarray, tgt_word: np.ndarray) -> np.ndarray:
    """Map subword links ``(i, j)`` to unique word links, sorted by (source word, target word)."""
    token_links = np.asarray(token_links, dtype=np.int64).reshape(-1, 2)
    if token_links.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.int64)
    links = np.stack([src_word[token_links[:, 0]], tgt_word[token_links[:, 1]]], axis=1)
    return np.unique(links, axis=0)


def aligned_units(n_src_words: int, n_tgt_words: int, links: np.ndarray) -> np.ndarray:
    """Unit id of each word (source words first, then target words).

    A unit is a connected component of the graph whose nodes are words and whose edges are the
    word links, so masking a unit masks every word that is linked, directly or through a chain of
    one-to-many links, to any word in it.
    """
    n = n_src_words + n_tgt_words
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if links.shape[0] == 0:
        return np.arange(n, dtype=np.int64)
    rows = links[:, 0]
    cols = links[:, 1] + n_src_words
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def select_units(unit_of_word: np.ndarray, mask_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Choose whole units at random so that the expected share of masked words is ``mask_prob``.

    Units are visited in a random order; those that fit wholly within the budget
    ``b = mask_prob * n_words`` are taken; the first that does not fit, with ``t`` words taken
    before it and ``s`` words of its own, is taken with probability ``(b - t) / s``, so
    ``E[masked words] = t + (b - t) = b`` exactly. With single-word units this is fairseq's
    ``int(b + u)``. A pair may get no masked word (short pairs, small ``mask_prob``).
    Returns a boolean mask over words.
    """
    n_words = unit_of_word.shape[0]
    if n_words == 0:
        return np.zeros(0, dtype=bool)
    n_units = int(unit_of_word.max()) + 1
    unit_size = np.bincount(unit_of_word, minlength=n_units)
    budget = mask_prob * n_words
    order = rng.permutation(n_units)
    u = rng.random()
    after = np.cumsum(unit_size[order])
    take = after <= budget + 1e-9
    k = int(take.sum())  # the first unit past the budget (after is increasing)
    if k < n_units:
        before = after[k] - unit_size[order[k]]
        take[k] = u < (budget - before) / unit_size[order[k]]
    chosen = np.zeros(n_units, dtype=bool)
    chosen[order[take]] = True
    return chosen[unit_of_word]


def first_content_piece(word: np.ndarray, is_content: np.ndarray, n_words: int) -> np.ndarray:
    """Per word: position of its first content piece, or -1 when it has none."""
    first = np.full(n_words, -1, dtype=np.int64)
    pos = np.flatnonzero(is_content)
    words, at = np.unique(word[pos], return_index=True)
    first[words] = pos[at]
    return first


def exchange_partner(links: np.ndarray, key: int, n_words: int, score_count, score_length, usable) -> np.ndarray:
    """For each word on side ``key`` (0 source, 1 target): its exchange partner, or -1.

    Among linked words on the other side that are ``usable`` (have a content piece), the one with
    the smallest ``score_count`` (the rarest), then the largest ``score_length``, then the
    smallest index. The three arrays are indexed by the other side's word index.
    """
    partner = np.full(n_words, -1, dtype=np.int64)
    if links.shape[0] == 0:
        return partner
    other = links[:, 1 - key]
    keep = usable[other]
    if not keep.any():
        return partner
    links, other = links[keep], other[keep]
    order = np.lexsort((other, -score_length[other], score_count[other], links[:, key]))
    ordered = links[order]
    words, first = np.unique(ordered[:, key], return_index=True)
    partner[words] = ordered[first, 1 - key]
    return partner


def one_to_one_links(links: np.ndarray) -> np.ndarray:
    """The word links whose two words have no other link (``[P, 2]``, sorted): the unambiguous
    translation pairs a word-level contrastive loss can use as positives."""
    if links.shape[0] == 0:
        return links
    src_n = np.bincount(links[:, 0])
    tgt_n = np.bincount(links[:, 1])
    return links[(src_n[links[:, 0]] == 1) & (tgt_n[links[:, 1]] == 1)]


def random_token_weights(vocab_size: int, nspecial: int, mask_idx: int) -> np.ndarray:
    """Uniform distribution over ordinary symbols for the 10% random replacement."""
    weights = np.ones(vocab_size, dtype=np.float64)
    weights[:nspecial] = 0.0
    weights[mask_idx] = 0.0
    return weights / weights.sum()


class RandomTokenSampler:
    """Draws token ids from fixed ``weights`` over the vocabulary.

    Exactly the draws of ``rng.choice(len(weights), size, p=weights)`` (numpy's Generator builds
    the same normalized CDF and searches it with ``rng.random(size)``), without the O(vocabulary)
    validation and cumulative sum that ``choice`` redoes on every call: with XLM-R's 250k
    vocabulary that work was most of the time of building an example.
    """

    def __init__(self, weights):
        weights = np.asarray(weights, dtype=np.float64)
        if (
            weights.ndim != 1
            or weights.size == 0
            or np.any(weights < 0)
            or abs(weights.sum() - 1.0) > np.sqrt(np.finfo(np.float64).eps)
        ):
            raise ValueError("weights must be a non-empty 1-D probability vector")
        self.weights = weights
        self.cdf = np.cumsum(weights)
        self.cdf /= self.cdf[-1]

    def __len__(self):
        return self.weights.shape[0]

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.cdf.searchsorted(rng.random(size), side="right").astype(np.int64)


def _strip_eos(tokens: np.ndarray, eos: int) -> np.ndarray:
    if tokens.size and tokens[-1] == eos:
        return tokens[:-1]
    return tokens


def build_weam_example(
    src: np.ndarray,
    tgt: np.ndarray,
    token_links: np.ndarray,
    *,
    pieces: PieceTable,
    bos: int,
    eos: int,
    pad: int,
    mask_idx: int,
    params: MaskingParams,
    rng: np.random.Generator,
    sampler: Optional[RandomTokenSampler] = None,
) -> WeamExample:
    """Lay out one pair, mask it and build both targets (rules in the module docstring).

    ``src`` / ``tgt`` are token ids as fairseq stores them (a trailing ``eos`` is optional).
    ``token_links`` is an ``(L, 2)`` array of 0-based subword positions within each sentence
    (eos excluded); any link of any piece of two words links those words.
    """
    src = _strip_eos(np.asarray(src, dtype=np.int64), eos)
    tgt = _strip_eos(np.asarray(tgt, dtype=np.int64), eos)
    token_links = np.asarray(token_links, dtype=np.int64).reshape(-1, 2)
    len_src, len_tgt = src.shape[0], tgt.shape[0]
    if token_links.shape[0] and (
        token_links.min() < 0 or token_links[:, 0].max() >= len_src or token_links[:, 1].max() >= len_tgt
    ):
        raise AlignmentError(
            f"alignment link out of range for a pair of {len_src} and {len_tgt} tokens: {token_links.tolist()}"
        )

    src_word = word_ids(pieces.is_word_start[src])
    tgt_word = word_ids(pieces.is_word_start[tgt])
    n_src = int(src_word[-1]) + 1 if len_src else 0
    n_tgt = int(tgt_word[-1]) + 1 if len_tgt else 0
    links = word_links(token_links, src_word, tgt_word)

    word_masked = select_units(aligned_units(n_src, n_tgt, links), params.mask_prob, rng)

    # Positions in the layout <s> src </s> </s> tgt </s>.
    src_pos = 1 + np.arange(len_src)
    tgt_pos = len_src + 3 + np.arange(len_tgt)
    original = np.concatenate([[bos], src, [eos, eos], tgt, [eos]]).astype(np.int64)
    length = original.shape[0]

    masked = np.zeros(length, dtype=bool)
    masked[src_pos] = word_masked[:n_src][src_word]
    masked[tgt_pos] = word_masked[n_src:][tgt_word]

    ml_target = np.full(length, pad, dtype=np.int64)
    ml_target[masked] = original[masked]

    sides = (
        (src, src_word, n_src, src_pos, word_masked[:n_src]),
        (tgt, tgt_word, n_tgt, tgt_pos, word_masked[n_src:]),
    )
    entries = []  # (layout positions, target pieces per position (list of arrays))
    for key in (0, 1):
        tokens, word, n_words, pos, masked_words = sides[key]
        o_tokens, o_word, o_n, _, _ = sides[1 - key]
        o_content = pieces.is_content[o_tokens]
        o_first = first_content_piece(o_word, o_content, o_n)
        usable = o_first >= 0
        first_tok = o_tokens[np.maximum(o_first, 0)]
        partner = exchange_partner(links, key, n_words, pieces.count[first_tok], pieces.length[first_tok], usable)
        for w in np.flatnonzero((partner >= 0) & masked_words):
            p = partner[w]
            if params.xl_target == "first-content":
                targets = o_tokens[o_first[p] : o_first[p] + 1]
            else:
                targets = o_tokens[(o_word == p) & o_content]
            carriers = np.flatnonzero(word == w)
            if params.xl_positions == "first":
                carriers = carriers[:1]
            entries.append((pos[carriers], targets))

    width = max((t.shape[0] for _, t in entries), default=1)
    xl_target = np.full((length, width), pad, dtype=np.int64)
    xl_weight = np.zeros((length, width), dtype=np.float32)
    for positions, targets in entries:
        xl_target[positions, : targets.shape[0]] = targets
        xl_weight[positions, : targets.shape[0]] = 1.0 / (positions.shape[0] * targets.shape[0])

    tokens = replace_masked(original, masked, mask_idx=mask_idx, params=params, rng=rng, sampler=sampler)
    return WeamExample(tokens=tokens, ml_target=ml_target, xl_target=xl_target, xl_weight=xl_weight)


def replace_masked(
    original, masked, *, mask_idx, params: MaskingParams, rng, sampler: Optional[RandomTokenSampler] = None
) -> np.ndarray:
    """BERT's replacement of the masked positions: ``<mask>`` / random token / unchanged.

    ``sampler``: the sampler of random replacement tokens (required when
    ``random_token_prob`` > 0)."""
    tokens = original.copy()
    masked_pos = np.flatnonzero(masked)
    u = rng.random(masked_pos.shape[0])
    keep_threshold = 1.0 - params.leave_unmasked_prob - params.random_token_prob
    tokens[masked_pos[u < keep_threshold]] = mask_idx
    if params.random_token_prob > 0:
        to_random = masked_pos[(u >= keep_threshold) & (u < keep_threshold + params.random_token_prob)]
        if to_random.shape[0]:
            if sampler is None:
                raise ValueError("a random token sampler is required when random_token_prob > 0")
            tokens[to_random] = sampler.sample(rng, to_random.shape[0])
    return tokens


def build_mlm_example(
    sentence: np.ndarray,
    *,
    pieces: PieceTable,
    bos: int,
    eos: int,
    pad: int,
    mask_idx: int,
    params: MaskingParams,
    rng: np.random.Generator,
    sampler: Optional[RandomTokenSampler] = None,
) -> WeamExample:
    """One monolingual sentence ``<s> x </s>`` with whole-word masking (no cross-lingual target)."""
    body = _strip_eos(np.asarray(sentence, dtype=np.int64), eos)
    words = word_ids(pieces.is_word_start[body])
    n_words = int(words[-1]) + 1 if body.shape[0] else 0
    word_masked = select_units(np.arange(n_words, dtype=np.int64), params.mask_prob, rng)
    original = np.concatenate([[bos], body, [eos]]).astype(np.int64)
    length = original.shape[0]
    masked = np.zeros(length, dtype=bool)
    masked[1 : 1 + body.shape[0]] = word_masked[words]
    ml_target = np.full(length, pad, dtype=np.int64)
    ml_target[masked] = original[masked]
    tokens = replace_masked(original, masked, mask_idx=mask_idx, params=params, rng=rng, sampler=sampler)
    return WeamExample(
        tokens=tokens,
        ml_target=ml_target,
        xl_target=np.full((length, 1), pad, dtype=np.int64),
        xl_weight=np.zeros((length, 1), dtype=np.float32),
    )
