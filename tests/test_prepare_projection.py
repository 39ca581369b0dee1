"""Word links -> subword links, word grouping, pre-tokenization, symmetrization: hand-made cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairseq_weam.core.pretokenize import pretokenize
from fairseq_weam.data.alignment import pieces_per_word, project_alignments, project_alignments_batch
from fairseq_weam.prepare.aligners import Links, grow_diag_final_and
from fairseq_weam.prepare.tokenize import (
    Tokens,
    pieces_per_word_flat,
    sample_for_spm,
    words_from_pieces,
    words_per_sentence,
)

W = "\u2581"


def test_projection_hand_made():
    # "▁un ▁believ able ▁day" / "▁jour ▁in croy able": unbelievable (word 1) <-> incroyable (word 1)
    src = [W + "un", W + "believ", "able", W + "day"]
    tgt = [W + "jour", W + "in", "croy", "able"]
    word_links = np.array([[0, 0], [1, 1], [2, 0]])
    sub = project_alignments(word_links, pieces_per_word(src), pieces_per_word(tgt))
    # first piece to first piece: word 2 of the source starts at piece 3
    assert sub.tolist() == [[0, 0], [1, 1], [3, 0]]


def test_projection_first_piece_without_marker():
    # A sentence whose first piece has no U+2581 still opens a word (the dataset does the same).
    assert pieces_per_word(["ab", "c", W + "d"]).tolist() == [2, 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(1, 3), min_size=1, max_size=6),
            st.lists(st.integers(1, 3), min_size=1, max_size=6),
            st.integers(0, 5),
        ),
        min_size=1,
        max_size=6,
    ),
    st.randoms(),
)
def test_batch_projection_equals_per_sentence(sentences, rnd):
    links, sent, expected = [], [], []
    for k, (ps, pt, n_links) in enumerate(sentences):
        wl = np.array(
            [[rnd.randrange(len(ps)), rnd.randrange(len(pt))] for _ in range(n_links)], dtype=np.int64
        ).reshape(-1, 2)
        links.append(wl)
        sent += [k] * len(wl)
        expected.append(project_alignments(wl, ps, pt))
    got = project_alignments_batch(
        np.concatenate(links),
        np.array(sent, dtype=np.int64),
        np.concatenate([s[0] for s in sentences]),
        [len(s[0]) for s in sentences],
        np.concatenate([s[1] for s in sentences]),
        [len(s[1]) for s in sentences],
    )
    assert got.tolist() == np.concatenate(expected).reshape(-1, 2).tolist()


def test_word_counts_follow_dictionary_word_starts():
    starts_lut = np.array([False, True, False, True])  # ids 1 and 3 open words
    tokens = Tokens(np.array([1, 2, 2, 3, 2, 3, 1], dtype=np.int64), np.array([4, 3]))
    assert words_per_sentence(tokens, starts_lut).tolist() == [2, 3]  # 2nd sentence: "2" opens (position 0)
    assert pieces_per_word_flat(tokens, starts_lut).tolist() == [3, 1, 1, 1, 1]


def test_words_from_pieces():
    assert words_from_pieces([W + "un", "believ", W + "day", W], [True, False, True, True]) == ["unbeliev", "day", W]


@pytest.mark.parametrize(
    "raw,split,expected",
    [
        ("打开文件。", True, "打 开 文 件 。"),
        ("Open  the\tfile", True, "Open the file"),
        ("重命名文件 (Rename)", True, "重 命 名 文 件 (Rename)"),
        ("打开文件", False, "打开文件"),
        ("ファイルを開く", True, "フ ァ イ ル を 開 く"),
    ],
)
def test_pretokenize(raw, split, expected):
    assert pretokenize(raw, split) == expected


def test_grow_diag_final_and_hand_made():
    fwd = np.array([[0, 0], [1, 1], [2, 1]])
    rev = np.array([[0, 0], [1, 1], [2, 2]])
    # intersection {00, 11}; grow-diag adds 21 and 22 (neighbours of 11 in the union, each with
    # an unaligned end); final-and has nothing left.
    assert grow_diag_final_and(fwd, rev).tolist() == [[0, 0], [1, 1], [2, 1], [2, 2]]
    # A link in one direction only, far from the others, comes in through final-and.
    assert grow_diag_final_and(np.array([[0, 0], [3, 3]]), np.array([[0, 0]])).tolist() == [[0, 0], [3, 3]]


def test_links_select_keeps_sentence_boundaries():
    links = Links.from_lists([[(0, 0)], [], [(1, 2), (0, 1)]])
    kept = links.select(np.array([False, True, True]))
    assert kept.counts.tolist() == [0, 2] and kept.flat.tolist() == [[1, 2], [0, 1]]


def test_spm_sampling_flattens_languages():
    texts = {"big": [f"b{i}" for i in range(1000)], "small": [f"s{i}" for i in range(10)]}
    sample = sample_for_spm(texts, alpha=0.3, max_sentences=500, seed=0)
    n_small = sum(s.startswith("s") for s in sample)
    # proportional sampling would give ~5 of 500; alpha 0.3 gives q_small = 0.01**0.3 / (...) ~ 20%
    assert 80 <= n_small <= 120 and len(sample) == pytest.approx(500, abs=2)
    assert sample_for_spm(texts, alpha=1.0, max_sentences=0, seed=0).count("b1") == 1
