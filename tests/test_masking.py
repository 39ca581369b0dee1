"""Masking and target construction on hand-made pairs (exact positions and targets)."""

import numpy as np
import pytest

from fairseq_weam.data.masking import (
    MaskingParams,
    PieceTable,
    RandomTokenSampler,
    aligned_units,
    build_mlm_example,
    build_weam_example,
    random_token_weights,
    select_units,
    word_ids,
    word_links,
)

# Vocabulary: 0 <s>, 1 <pad>, 2 </s>, 3 <unk>, then pieces; U+2581 opens a word.
BOS, PAD, EOS, UNK = 0, 1, 2, 3
SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>", "\u2581a", "\u2581b", "c", "\u2581d", "\u2581e", "f", "\u2581g"]
MASK = len(SYMBOLS)  # <mask> is appended last, as the task does
PIECES = PieceTable.from_symbols(SYMBOLS + ["<mask>"], nspecial=4, specials=(len(SYMBOLS),))
A, B, C, D, E, F, G = 4, 5, 6, 7, 8, 9, 10

# src "a bc" (2 words), tgt "d ef" (2 words); fairseq stores a trailing </s>.
SRC = np.array([A, B, C, EOS])
TGT = np.array([D, E, F, EOS])
# Layout positions: 0 <s> | 1 a | 2 b | 3 c | 4 </s> | 5 </s> | 6 d | 7 e | 8 f | 9 </s>


def example(links, params, seed=0, src=SRC, tgt=TGT, pieces=PIECES, rng=None):
    return build_weam_example(
        src,
        tgt,
        np.array(links, dtype=np.int64).reshape(-1, 2),
        pieces=pieces,
        bos=BOS,
        eos=EOS,
        pad=PAD,
        mask_idx=MASK,
        params=params,
        rng=np.random.default_rng(seed) if rng is None else rng,
        sampler=RandomTokenSampler(random_token_weights(len(pieces.is_content), 4, MASK)),
    )


ALL_MASKED = MaskingParams(mask_prob=1.0, leave_unmasked_prob=0.0, random_token_prob=0.0)


def test_word_ids_and_links():
    assert word_ids(np.array([True, True, False, True, False, False])).tolist() == [0, 1, 1, 2, 2, 2]
    # The first token opens a word even without a marker.
    assert word_ids(np.array([False, False, True])).tolist() == [0, 0, 1]
    src_word = np.array([0, 1, 1])
    tgt_word = np.array([0, 1, 1])
    # Links of two pieces of the same words collapse into one word link.
    links = word_links(np.array([[2, 2], [1, 1], [0, 0]]), src_word, tgt_word)
    assert links.tolist() == [[0, 0], [1, 1]]


def test_layout_and_targets_with_everything_masked():
    ex = example([[0, 1], [1, 0]], ALL_MASKED)  # a<->e, bc<->d
    assert ex.tokens.tolist() == [BOS, MASK, MASK, MASK, EOS, EOS, MASK, MASK, MASK, EOS]
    assert ex.ml_target.tolist() == [PAD, A, B, C, PAD, PAD, D, E, F, PAD]
    # Word exchange: a -> e, b(c) -> d on the first piece; d -> b, e(f) -> a; weight 1 each.
    assert ex.xl_target.shape == (10, 1)
    assert ex.xl_target[:, 0].tolist() == [PAD, E, D, PAD, PAD, PAD, B, A, PAD, PAD]
    assert ex.xl_weight[:, 0].tolist() == [0, 1, 1, 0, 0, 0, 1, 1, 0, 0]


def test_xl_on_all_positions():
    params = MaskingParams(mask_prob=1.0, leave_unmasked_prob=0.0, random_token_prob=0.0, xl_positions="all")
    ex = example([[0, 1], [1, 0]], params)
    # Every piece of a masked aligned word predicts the partner's first content piece; a word's
    # weight is 1 in total, shared by its pieces.
    assert ex.xl_target[:, 0].tolist() == [PAD, E, D, D, PAD, PAD, B, A, A, PAD]
    assert ex.xl_weight[:, 0].tolist() == [0, 1, 0.5, 0.5, 0, 0, 1, 0.5, 0.5, 0]


def test_xl_all_pieces_of_the_partner():
    params = MaskingParams(mask_prob=1.0, leave_unmasked_prob=0.0, random_token_prob=0.0, xl_target="all-pieces")
    ex = example([[0, 1], [1, 0]], params)
    # a -> both pieces of its partner "ef" (e, f), each weighted 1/2; bc -> d; d -> b, c; e(f) -> a.
    assert ex.xl_target.shape == (10, 2)
    assert ex.xl_target.tolist() == [
        [PAD, PAD],
        [E, F],
        [D, PAD],
        [PAD, PAD],
        [PAD, PAD],
        [PAD, PAD],
        [B, C],
        [A, PAD],
        [PAD, PAD],
        [PAD, PAD],
    ]
    assert ex.xl_weight[1].tolist() == [0.5, 0.5] and ex.xl_weight[6].tolist() == [0.5, 0.5]
    assert ex.xl_weight[2].tolist() == [1, 0] and ex.xl_weight[7].tolist() == [1, 0]
    # Every masked aligned word carries weight 1 in total: 4 words.
    assert ex.xl_weight.sum() == 4


def test_links_on_any_piece_link_the_words():
    # Link from piece "c" (second piece of word bc) to piece "f" (second piece of ef).
    ex = example([[2, 2]], ALL_MASKED)
    assert ex.xl_target[:, 0].tolist() == [PAD, PAD, E, PAD, PAD, PAD, PAD, B, PAD, PAD]


# A vocabulary with a bare word-start piece and a French article/noun pair with real counts.
BARE = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "\u2581",
    "x",
    "\u2581y",
    "\u2581house",
    "\u2581la",
    "\u2581maison",
    "\u2581z",
    "<mask>",
]
BARE_COUNTS = [1, 1, 1, 1, 900, 5, 40, 30, 1000, 12, 7, 1]
assert BARE.index("<mask>") == MASK
BARE_PIECES = PieceTable.from_symbols(BARE, BARE_COUNTS, nspecial=4, specials=(MASK,))
SPACE, X, Y, HOUSE, LA, MAISON = 4, 5, 6, 7, 8, 9


def bare_example(src, tgt, links, params=ALL_MASKED):
    return example(links, params, src=np.array(src + [EOS]), tgt=np.array(tgt + [EOS]), pieces=BARE_PIECES)


def test_bare_word_start_piece_is_never_an_exchange_target():
    # src "y", tgt "▁ x" (one word split as the bare marker + x): y predicts x, not ▁.
    ex = bare_example([Y], [SPACE, X], [[0, 0]])
    # Layout: 0 <s> | 1 y | 2 </s> | 3 </s> | 4 ▁ | 5 x | 6 </s>
    assert ex.xl_target[:, 0].tolist() == [PAD, X, PAD, PAD, Y, PAD, PAD]
    assert (ex.xl_target != SPACE).all()
    # all-pieces: the bare marker is not among the targets either.
    ex = bare_example(
        [Y],
        [SPACE, X],
        [[0, 0]],
        MaskingParams(mask_prob=1.0, xl_target="all-pieces", leave_unmasked_prob=0.0, random_token_prob=0.0),
    )
    assert ex.xl_target[1].tolist() == [X]


def test_partner_without_content_gives_no_exchange_target():
    # tgt word is only the bare marker: y has nothing to predict from it (it keeps its own ml
    # target); the other direction still has content to predict (y).
    ex = bare_example([Y], [SPACE], [[0, 0]])
    assert ex.xl_target[:, 0].tolist() == [PAD, PAD, PAD, PAD, Y, PAD]
    assert ex.ml_target.tolist() == [PAD, Y, PAD, PAD, SPACE, PAD]


def test_one_to_many_link_predicts_the_rarest_partner():
    # "house" <-> "la maison": house predicts maison (count 12), not the article la (count 1000);
    # both la and maison predict house.
    ex = bare_example([HOUSE], [LA, MAISON], [[0, 0], [0, 1]])
    # Layout: 0 <s> | 1 house | 2 </s> | 3 </s> | 4 la | 5 maison | 6 </s>
    assert ex.xl_target[:, 0].tolist() == [PAD, MAISON, PAD, PAD, HOUSE, HOUSE, PAD]
    # Whatever the order of the links and of the words.
    ex = bare_example([HOUSE], [MAISON, LA], [[0, 1], [0, 0]])
    assert ex.xl_target[1, 0] == MAISON


def test_unaligned_words_get_only_the_multilingual_target():
    ex = example([], ALL_MASKED)
    assert ex.ml_target.tolist() == [PAD, A, B, C, PAD, PAD, D, E, F, PAD]
    assert (ex.xl_target == PAD).all() and (ex.xl_weight == 0).all()


def test_one_to_many_tie_is_the_smallest_index():
    # a -> d and a -> ef with equal counts and equal piece lengths: d (smaller index).
    ex = example([[0, 1], [0, 0]], ALL_MASKED)
    assert ex.xl_target[:, 0].tolist() == [PAD, D, PAD, PAD, PAD, PAD, A, A, PAD, PAD]


def test_partners_are_masked_together():
    links = [[0, 1], [1, 0]]
    params = MaskingParams(mask_prob=0.5, leave_unmasked_prob=0.0, random_token_prob=0.0)
    seen = set()
    for seed in range(60):
        ex = example(links, params, seed=seed)
        masked = ex.ml_target != PAD
        # Units: {a, ef} -> positions {1, 7, 8}; {bc, d} -> positions {2, 3, 6}.
        unit_ae, unit_bd = masked[[1, 7, 8]], masked[[2, 3, 6]]
        assert unit_ae.all() or not unit_ae.any()
        assert unit_bd.all() or not unit_bd.any()
        seen.add((bool(unit_ae[0]), bool(unit_bd[0])))
    # budget 0.5 * 4 = 2 words: the first unit (2 words) fits, the second does not (p = 0).
    assert seen == {(True, False), (False, True)}


def test_special_tokens_are_never_masked_or_targeted():
    params = MaskingParams(mask_prob=1.0)
    for seed in range(20):
        ex = example([[0, 1]], params, seed=seed)
        for pos in (0, 4, 5, 9):
            assert ex.ml_target[pos] == PAD and (ex.xl_target[pos] == PAD).all()
            assert ex.tokens[pos] in (BOS, EOS)


def test_aligned_units_follow_link_chains():
    # x0-y0, x1-y0, x1-y1: all four words are one unit; x2 is alone.
    units = aligned_units(3, 2, np.array([[0, 0], [1, 0], [1, 1]]))
    assert units[0] == units[1] == units[3] == units[4]
    assert units[2] != units[0]
    assert aligned_units(2, 2, np.zeros((0, 2), dtype=np.int64)).tolist() == [0, 1, 2, 3]


class FixedDraws:
    """An rng stand-in that returns a given unit order and a given uniform draw."""

    def __init__(self, order, u):
        self.order, self.u = np.array(order), u

    def permutation(self, n):
        assert n == len(self.order)
        return self.order

    def random(self, size=None):
        return self.u if size is None else np.full(size, self.u)


def test_select_units_takes_what_fits_then_the_next_unit_with_the_exact_probability():
    units = np.array([0, 0, 0, 1, 2, 3, 4, 5, 6, 7])  # one 3-word unit and 7 single words
    # budget 0.3 * 10 = 3 words. Order: single 1, single 2, then the 3-word unit: 2 words taken,
    # the unit does not fit and is taken with probability (3 - 2) / 3.
    take = select_units(units, 0.3, FixedDraws([1, 2, 0, 3, 4, 5, 6, 7], u=0.33))
    assert take.tolist() == [True] * 3 + [True, True] + [False] * 5
    take = select_units(units, 0.3, FixedDraws([1, 2, 0, 3, 4, 5, 6, 7], u=0.34))
    assert take.tolist() == [False] * 3 + [True, True] + [False] * 5
    # Units that fit exactly are taken; the next is then taken with probability 0.
    take = select_units(units, 0.3, FixedDraws([0, 1, 2, 3, 4, 5, 6, 7], u=0.0))
    assert take.tolist() == [True] * 3 + [False] * 7


def test_select_units_expected_rate_is_mask_prob():
    # Large units (4 words) among singles: the expectation is exact, not above the budget.
    units = np.array([0] * 4 + [1] * 4 + list(range(2, 12)))  # 18 words
    rng = np.random.default_rng(0)
    taken = np.array([select_units(units, 0.3, rng).sum() for _ in range(20000)])
    mean, se = taken.mean(), taken.std() / np.sqrt(len(taken))
    assert abs(mean - 0.3 * 18) < 4 * se, (mean, se)
    for sel in (select_units(units, 0.3, np.random.default_rng(s)) for s in range(50)):
        assert sel[:4].all() or not sel[:4].any()


def test_single_word_units_are_fairseqs_rounding():
    # 7 single words at p = 0.3: 2.1 words -> 2 words, or 3 with probability 0.1.
    units = np.arange(7)
    counts = [select_units(units, 0.3, FixedDraws(range(7), u)).sum() for u in (0.05, 0.0999, 0.1001, 0.9)]
    assert counts == [3, 3, 2, 2]


def test_replacement_80_10_10():
    long_src = np.array([A, B, D, E, G] * 40 + [EOS])
    long_tgt = np.array([D, E] * 50 + [EOS])
    params = MaskingParams(mask_prob=1.0, leave_unmasked_prob=0.1, random_token_prob=0.1)
    ex = example([], params, src=long_src, tgt=long_tgt)
    masked = ex.ml_target != PAD
    n = masked.sum()
    as_mask = (ex.tokens[masked] == MASK).mean()
    unchanged = (ex.tokens[masked] == ex.ml_target[masked]).mean()
    assert n == 300
    assert 0.72 < as_mask < 0.88
    assert 0.08 < unchanged < 0.25  # 10% left + random draws that hit the same token
    # Random replacements come from ordinary symbols only.
    assert set(ex.tokens[masked].tolist()) <= set(range(4, MASK + 1))


def test_only_unmasked_leave():
    params = MaskingParams(mask_prob=1.0, leave_unmasked_prob=1.0, random_token_prob=0.0)
    ex = example([[0, 1]], params)
    assert ex.tokens.tolist() == [BOS, A, B, C, EOS, EOS, D, E, F, EOS]
    assert ex.ml_target.tolist() == [PAD, A, B, C, PAD, PAD, D, E, F, PAD]


def test_deterministic_for_a_seed():
    params = MaskingParams(mask_prob=0.3)
    a = example([[0, 1], [1, 0]], params, seed=7)
    b = example([[0, 1], [1, 0]], params, seed=7)
    assert (a.tokens == b.tokens).all() and (a.xl_target == b.xl_target).all()


def test_mlm_example_has_no_exchange_target():
    ex = build_mlm_example(
        SRC, pieces=PIECES, bos=BOS, eos=EOS, pad=PAD, mask_idx=MASK, params=ALL_MASKED, rng=np.random.default_rng(0)
    )
    assert ex.tokens.tolist() == [BOS, MASK, MASK, MASK, EOS]
    assert ex.xl_target.shape == (5, 1) and (ex.xl_target == PAD).all() and (ex.xl_weight == 0).all()


def test_out_of_range_link_is_an_error():
    with pytest.raises(ValueError, match="out of range"):
        example([[3, 0]], ALL_MASKED)  # source has 3 tokens (0..2)


def test_bad_params():
    with pytest.raises(ValueError):
        MaskingParams(mask_prob=0.0)
    with pytest.raises(ValueError):
        MaskingParams(leave_unmasked_prob=0.6, random_token_prob=0.6)
    with pytest.raises(ValueError):
        MaskingParams(xl_positions="last")
    with pytest.raises(ValueError):
        MaskingParams(xl_target="first")
