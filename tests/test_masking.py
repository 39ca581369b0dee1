"""Masking and target construction on hand-made pairs (exact positions and targets)."""

import numpy as np
import pytest

from fairseq_weam.data.masking import (
    MaskingParams,
    aligned_units,
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
IS_START = np.array([s.startswith("\u2581") for s in SYMBOLS] + [False])
A, B, C, D, E, F, G = 4, 5, 6, 7, 8, 9, 10

# src "a bc" (2 words), tgt "d ef" (2 words); fairseq stores a trailing </s>.
SRC = np.array([A, B, C, EOS])
TGT = np.array([D, E, F, EOS])
# Layout positions: 0 <s> | 1 a | 2 b | 3 c | 4 </s> | 5 </s> | 6 d | 7 e | 8 f | 9 </s>


def example(links, params, seed=0, src=SRC, tgt=TGT):
    return build_weam_example(
        src,
        tgt,
        np.array(links, dtype=np.int64).reshape(-1, 2),
        is_word_start=IS_START,
        bos=BOS,
        eos=EOS,
        pad=PAD,
        mask_idx=MASK,
        params=params,
        rng=np.random.default_rng(seed),
        random_weights=random_token_weights(len(SYMBOLS) + 1, 4, MASK),
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
    # Word exchange: a -> e, b(c) -> d on the first piece; d -> b, e(f) -> a.
    assert ex.xl_target.tolist() == [PAD, E, D, PAD, PAD, PAD, B, A, PAD, PAD]


def test_xl_on_all_pieces():
    params = MaskingParams(mask_prob=1.0, leave_unmasked_prob=0.0, random_token_prob=0.0, xl_positions="all")
    ex = example([[0, 1], [1, 0]], params)
    # Every piece of a masked aligned word predicts the first piece of its partner.
    assert ex.xl_target.tolist() == [PAD, E, D, D, PAD, PAD, B, A, A, PAD]


def test_links_on_any_piece_link_the_words():
    # Link from piece "c" (second piece of word bc) to piece "f" (second piece of ef).
    ex = example([[2, 2]], ALL_MASKED)
    assert ex.xl_target.tolist() == [PAD, PAD, E, PAD, PAD, PAD, PAD, B, PAD, PAD]


def test_unaligned_words_get_only_the_multilingual_target():
    ex = example([], ALL_MASKED)
    assert ex.ml_target.tolist() == [PAD, A, B, C, PAD, PAD, D, E, F, PAD]
    assert (ex.xl_target == PAD).all()


def test_one_to_many_partner_is_the_smallest_index():
    # a -> d and a -> e: a's cross target is d (smaller index); both d and e predict a.
    ex = example([[0, 1], [0, 0]], ALL_MASKED)
    assert ex.xl_target.tolist() == [PAD, D, PAD, PAD, PAD, PAD, A, A, PAD, PAD]


def test_partners_are_masked_together():
    links = [[0, 1], [1, 0]]
    params = MaskingParams(mask_prob=0.25, leave_unmasked_prob=0.0, random_token_prob=0.0)
    seen = set()
    for seed in range(40):
        ex = example(links, params, seed=seed)
        masked = ex.ml_target != PAD
        # Units: {a, e} -> positions {1, 7, 8}; {bc, d} -> positions {2, 3, 6}.
        unit_ae, unit_bd = masked[[1, 7, 8]], masked[[2, 3, 6]]
        assert unit_ae.all() or not unit_ae.any()
        assert unit_bd.all() or not unit_bd.any()
        assert masked.any()
        seen.add((bool(unit_ae[0]), bool(unit_bd[0])))
    # budget int(0.25 * 4 + u) = 1 word, so exactly one unit each time, and both occur.
    assert seen == {(True, False), (False, True)}


def test_special_tokens_are_never_masked_or_targeted():
    params = MaskingParams(mask_prob=1.0)
    for seed in range(20):
        ex = example([[0, 1]], params, seed=seed)
        for pos in (0, 4, 5, 9):
            assert ex.ml_target[pos] == PAD and ex.xl_target[pos] == PAD
            assert ex.tokens[pos] in (BOS, EOS)


def test_aligned_units_follow_link_chains():
    # x0-y0, x1-y0, x1-y1: all four words are one unit; x2 is alone.
    units = aligned_units(3, 2, np.array([[0, 0], [1, 0], [1, 1]]))
    assert units[0] == units[1] == units[3] == units[4]
    assert units[2] != units[0]
    assert aligned_units(2, 2, np.zeros((0, 2), dtype=np.int64)).tolist() == [0, 1, 2, 3]


def test_select_units_budget():
    units = np.array([0, 0, 0, 1, 2, 3, 4, 5, 6, 7])  # one 3-word unit and 7 single words
    for seed in range(50):
        sel = select_units(units, 0.3, np.random.default_rng(seed))
        # budget is 3 or 4 words; the last unit may overshoot by at most 2 (3-word unit).
        assert 3 <= sel.sum() <= 6
        assert sel[:3].all() or not sel[:3].any()


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
