"""WEAM masking and target construction as pure numpy functions.

A training example is a parallel pair laid out as in TLM with RoBERTa / XLM-R separators::

    <s> x_1 .. x_m </s> </s> y_1 .. y_n </s>

Whole words are selected for masking; words joined by alignment links form one *aligned unit*
(a connected component of the bipartite link graph) and are masked together, so a masked word's
translation is never visible on the other side. Every masked token predicts its own original
token (the multilingual target); every masked word that has an aligned partner also predicts the
partner's token (the cross-lingual, word-exchange target).

Nothing here imports fairseq or torch so the math can be tested on hand-made cases.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

XL_POSITIONS = ("first", "all")


@dataclass(frozen=True)
class MaskingParams:
    """How tokens are masked and replaced (BERT's 80/10/10 by default)."""

    mask_prob: float = 0.3
    leave_unmasked_prob: float = 0.1
    random_token_prob: float = 0.1
    # "first": only the first subword of a masked aligned word carries the cross-lingual target;
    # "all": every subword of it does. In both cases the target is the first subword of the
    # partner word (the linked partner with the smallest index).
    xl_positions: str = "first"

    def __post_init__(self):
        if not 0.0 < self.mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in (0, 1], got {self.mask_prob}")
        if self.leave_unmasked_prob < 0 or self.random_token_prob < 0:
            raise ValueError("leave_unmasked_prob and random_token_prob must be >= 0")
        if self.leave_unmasked_prob + self.random_token_prob > 1.0:
            raise ValueError("leave_unmasked_prob + random_token_prob must be <= 1")
        if self.xl_positions not in XL_POSITIONS:
            raise ValueError(f"xl_positions must be one of {XL_POSITIONS}, got {self.xl_positions!r}")


@dataclass
class WeamExample:
    """One laid-out pair: model input and the two target rows (``pad`` where no target)."""

    tokens: np.ndarray
    ml_target: np.ndarray
    xl_target: np.ndarray


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
    """Choose whole units at random until about ``mask_prob`` of all words are covered.

    The word budget is ``int(mask_prob * n_words + u)`` with ``u ~ U[0, 1)`` (fairseq's rounding),
    at least one word. Units are visited in random order and taken while the words already taken
    are under budget, so the last unit may overshoot the budget by its own size minus one.
    Returns a boolean mask over words.
    """
    n_words = unit_of_word.shape[0]
    if n_words == 0:
        return np.zeros(0, dtype=bool)
    n_units = int(unit_of_word.max()) + 1
    unit_size = np.bincount(unit_of_word, minlength=n_units)
    budget = max(1, int(mask_prob * n_words + rng.random()))
    order = rng.permutation(n_units)
    taken_before = np.cumsum(unit_size[order]) - unit_size[order]
    chosen = np.zeros(n_units, dtype=bool)
    chosen[order[taken_before < budget]] = True
    return chosen[unit_of_word]


def _first_partner(links: np.ndarray, key: int, n_words: int) -> np.ndarray:
    """For each word on side ``key`` (0 source, 1 target): the smallest linked word, or -1."""
    partner = np.full(n_words, -1, dtype=np.int64)
    if links.shape[0] == 0:
        return partner
    other = 1 - key
    order = np.lexsort((links[:, other], links[:, key]))
    ordered = links[order]
    words, first = np.unique(ordered[:, key], return_index=True)
    partner[words] = ordered[first, other]
    return partner


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
        if weights.ndim != 1 or weights.size == 0 or np.any(weights < 0) or abs(weights.sum() - 1.0) > np.sqrt(np.finfo(np.float64).eps):
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
    is_word_start: np.ndarray,
    bos: int,
    eos: int,
    pad: int,
    mask_idx: int,
    params: MaskingParams,
    rng: np.random.Generator,
    random_weights: Optional[np.ndarray] = None,
) -> WeamExample:
    """Lay out one pair, mask it and build both targets.

    ``src`` / ``tgt`` are token ids as fairseq stores them (a trailing ``eos`` is optional).
    ``token_links`` is an ``(L, 2)`` array of 0-based subword positions within each sentence
    (eos excluded); any link of any piece of two words links those words. ``is_word_start`` is a
    boolean array over the vocabulary telling which symbols open a word.
    """
    src = _strip_eos(np.asarray(src, dtype=np.int64), eos)
    tgt = _strip_eos(np.asarray(tgt, dtype=np.int64), eos)
    token_links = np.asarray(token_links, dtype=np.int64).reshape(-1, 2)
    len_src, len_tgt = src.shape[0], tgt.shape[0]
    if token_links.shape[0] and (
        token_links.min() < 0
        or token_links[:, 0].max() >= len_src
        or token_links[:, 1].max() >= len_tgt
    ):
        raise ValueError(
            f"alignment link out of range for a pair of {len_src} and {len_tgt} tokens: "
            f"{token_links.tolist()}"
        )

    src_word = word_ids(is_word_start[src])
    tgt_word = word_ids(is_word_start[tgt])
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

    # Word-exchange targets: the first subword of each word's first partner.
    xl_target = np.full(length, pad, dtype=np.int64)
    src_first = np.flatnonzero(np.diff(src_word, prepend=-1))
    tgt_first = np.flatnonzero(np.diff(tgt_word, prepend=-1))
    for key, word, n_words, pos, other_tokens, other_first in (
        (0, src_word, n_src, src_pos, tgt, tgt_first),
        (1, tgt_word, n_tgt, tgt_pos, src, src_first),
    ):
        partner = _first_partner(links, key, n_words)
        tok_partner = partner[word]
        carries = tok_partner >= 0
        if params.xl_positions == "first":
            carries &= np.diff(word, prepend=-1) > 0
        carries &= masked[pos]
        xl_target[pos[carries]] = other_tokens[other_first[tok_partner[carries]]]

    tokens = replace_masked(original, masked, mask_idx=mask_idx, params=params, rng=rng, random_weights=random_weights)
    return WeamExample(tokens=tokens, ml_target=ml_target, xl_target=xl_target)


def replace_masked(original, masked, *, mask_idx, params: MaskingParams, rng, random_weights=None) -> np.ndarray:
    """BERT's replacement of the masked positions: ``<mask>`` / random token / unchanged."""
    tokens = original.copy()
    masked_pos = np.flatnonzero(masked)
    u = rng.random(masked_pos.shape[0])
    keep_threshold = 1.0 - params.leave_unmasked_prob - params.random_token_prob
    tokens[masked_pos[u < keep_threshold]] = mask_idx
    if params.random_token_prob > 0:
        to_random = masked_pos[(u >= keep_threshold) & (u < keep_threshold + params.random_token_prob)]
        if to_random.shape[0]:
            if random_weights is None:
                raise ValueError("random_weights is required when random_token_prob > 0")
            sampler = random_weights if isinstance(random_weights, RandomTokenSampler) else RandomTokenSampler(random_weights)
            tokens[to_random] = sampler.sample(rng, to_random.shape[0])
    return tokens


def build_mlm_example(
    sentence: np.ndarray,
    *,
    is_word_start: np.ndarray,
    bos: int,
    eos: int,
    pad: int,
    mask_idx: int,
    params: MaskingParams,
    rng: np.random.Generator,
    random_weights: Optional[np.ndarray] = None,
) -> WeamExample:
    """One monolingual sentence ``<s> x </s>`` with whole-word masking (no cross-lingual target)."""
    body = _strip_eos(np.asarray(sentence, dtype=np.int64), eos)
    words = word_ids(is_word_start[body])
    n_words = int(words[-1]) + 1 if body.shape[0] else 0
    word_masked = select_units(np.arange(n_words, dtype=np.int64), params.mask_prob, rng)
    original = np.concatenate([[bos], body, [eos]]).astype(np.int64)
    masked = np.zeros(original.shape[0], dtype=bool)
    masked[1 : 1 + body.shape[0]] = word_masked[words]
    ml_target = np.full(original.shape[0], pad, dtype=np.int64)
    ml_target[masked] = original[masked]
    tokens = replace_masked(original, masked, mask_idx=mask_idx, params=params, rng=rng, random_weights=random_weights)
    return WeamExample(tokens=tokens, ml_target=ml_target, xl_target=np.full(original.shape[0], pad, dtype=np.int64))
