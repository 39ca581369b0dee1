"""Property-based tests (hypothesis) of WEAM masking and of alignment parsing / projection.

Random sentence lengths, word boundaries, link sets (duplicates, one-to-many, links on any
piece of a word) and masking parameters; the invariants hold for every draw:
special tokens are never masked or targeted, whole words and their aligned partners are masked
together, targets sit only at masked positions, the cross-lingual target exists only where a
partner exists and is the partner's first piece, every index is in range, and the output is a
function of the rng seed.
"""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_masking import FixedDraws  # noqa: E402

from fairseq_weam.data import alignment as al
from fairseq_weam.data.alignment import (
    AlignmentError,
    check_links_in_range,
    first_piece_positions,
    format_pharaoh,
    parse_pharaoh,
    pieces_per_word,
    project_alignments,
    validate_binarized_alignments,
)
from fairseq_weam.data.masking import (
    MaskingParams,
    PieceTable,
    RandomTokenSampler,
    aligned_units,
    build_weam_example,
    random_token_weights,
    select_units,
    word_ids,
    word_links,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Vocabulary: 0 <s>, 1 <pad>, 2 </s>, 3 <unk>, ordinary symbols 4..N_SYM-1, then <mask>.
BOS, PAD, EOS, UNK, NSPECIAL = 0, 1, 2, 3, 4
N_SYM = 40
MASK = N_SYM
VOCAB = N_SYM + 1
WEIGHTS = RandomTokenSampler(random_token_weights(VOCAB, NSPECIAL, MASK))


@st.composite
def sentences(draw, max_words=12):
    """(token ids, pieces per word, is_word_start over the vocabulary is fixed below)."""
    n_words = draw(st.integers(0, max_words))
    ppw = draw(st.lists(st.integers(1, 4), min_size=n_words, max_size=n_words))
    tokens = []
    for n in ppw:
        tokens.append(draw(st.integers(NSPECIAL, N_SYM // 2 - 1)))  # a word-opening symbol
        tokens += draw(st.lists(st.integers(N_SYM // 2, N_SYM - 1), min_size=n - 1, max_size=n - 1))
    return np.array(tokens, dtype=np.int64), np.array(ppw, dtype=np.int64)


# Symbols NSPECIAL .. N_SYM/2-1 open a word, N_SYM/2 .. N_SYM-1 continue one; specials and
# <mask> are marked as openers on purpose (they must never matter).
IS_START = np.zeros(VOCAB, dtype=bool)
IS_START[: N_SYM // 2] = True
IS_START[MASK] = True
# Symbol NSPECIAL is a bare word-start marker (no content); counts and lengths rank partners.
CONTENT = np.ones(VOCAB, dtype=bool)
CONTENT[:NSPECIAL] = CONTENT[MASK] = CONTENT[NSPECIAL] = False
COUNT = np.random.default_rng(0).integers(1, 6, VOCAB)
LENGTH = np.random.default_rng(1).integers(1, 4, VOCAB)
PIECES = PieceTable(is_word_start=IS_START, is_content=CONTENT, count=COUNT, length=LENGTH)


@st.composite
def pairs(draw):
    src, src_ppw = draw(sentences())
    tgt, tgt_ppw = draw(sentences())
    if len(src) and len(tgt):
        links = draw(
            st.lists(
                st.tuples(st.integers(0, len(src) - 1), st.integers(0, len(tgt) - 1)),
                max_size=3 * max(len(src), len(tgt)),
            )
        )
    else:
        links = []
    links = np.array(links, dtype=np.int64).reshape(-1, 2)
    params = MaskingParams(
        mask_prob=draw(st.sampled_from([0.15, 0.3, 0.5, 1.0])),
        leave_unmasked_prob=draw(st.sampled_from([0.0, 0.1, 0.5])),
        random_token_prob=draw(st.sampled_from([0.0, 0.1, 0.5])),
        xl_positions=draw(st.sampled_from(["first", "all"])),
        xl_target=draw(st.sampled_from(["first-content", "all-pieces"])),
    )
    with_eos = draw(st.booleans())  # fairseq stores a trailing </s>; optional for the function
    if with_eos:
        src, tgt = np.append(src, EOS), np.append(tgt, EOS)
    return src, tgt, links, params, draw(st.integers(0, 2**32 - 1))


def build(src, tgt, links, params, seed):
    return build_weam_example(
        src,
        tgt,
        links,
        pieces=PIECES,
        bos=BOS,
        eos=EOS,
        pad=PAD,
        mask_idx=MASK,
        params=params,
        rng=np.random.default_rng(seed),
        sampler=WEIGHTS,
    )


def strip(x):
    return x[:-1] if len(x) and x[-1] == EOS else x


@SETTINGS
@given(pairs())
def test_weam_example_invariants(case):
    src, tgt, links, params, seed = case
    ex = build(src, tgt, links, params, seed)
    s, t = strip(src), strip(tgt)
    n = len(s) + len(t) + 4
    original = np.concatenate([[BOS], s, [EOS, EOS], t, [EOS]])
    assert ex.tokens.shape == ex.ml_target.shape == (n,)
    assert ex.xl_target.shape == ex.xl_weight.shape and ex.xl_target.shape[0] == n
    for arr in (ex.tokens, ex.ml_target, ex.xl_target):
        assert arr.dtype == np.int64 and arr.min() >= 0 and arr.max() < VOCAB

    special = np.array([0, len(s) + 1, len(s) + 2, n - 1])
    masked = ex.ml_target != PAD
    # Special tokens: never masked, replaced or targeted.
    assert (ex.tokens[special] == original[special]).all()
    assert not masked[special].any() and (ex.xl_target[special] == PAD).all()
    # Multilingual target = the original token, only at masked positions.
    assert (ex.ml_target[masked] == original[masked]).all()
    # Unmasked positions keep their token; masked ones get <mask>, themselves or an ordinary symbol.
    assert (ex.tokens[~masked] == original[~masked]).all()
    replaced = ex.tokens[masked]
    assert ((replaced == MASK) | (replaced == original[masked]) | ((replaced >= NSPECIAL) & (replaced < N_SYM))).all()
    if params.leave_unmasked_prob == 0 and params.random_token_prob == 0:
        assert (replaced == MASK).all()

    src_pos = 1 + np.arange(len(s))
    tgt_pos = len(s) + 3 + np.arange(len(t))
    sw, tw = word_ids(IS_START[s]), word_ids(IS_START[t])
    src_word_masked = {int(w): bool(m) for w, m in zip(sw, masked[src_pos])} if len(s) else {}
    tgt_word_masked = {int(w): bool(m) for w, m in zip(tw, masked[tgt_pos])} if len(t) else {}
    # Whole words: every piece of a word agrees.
    for words, pos in ((sw, src_pos), (tw, tgt_pos)):
        for w in np.unique(words):
            assert len(set(masked[pos[words == w]].tolist())) == 1
    # Closure: linked words (links on any piece) are masked together.
    for i, j in links:
        assert src_word_masked[int(sw[i])] == tgt_word_masked[int(tw[j])]

    # Cross-lingual targets: at masked positions of words with a partner that has content: the
    # rarest such partner's first content piece (or all its content pieces), never a bare marker;
    # weights 1 per word in total, 0 exactly where there is no target.
    assert ((ex.xl_weight > 0) == (ex.xl_target != PAD)).all()
    assert not np.isin(ex.xl_target[ex.xl_target != PAD], np.flatnonzero(~CONTENT)).any()
    wl = word_links(links, sw, tw) if len(links) else np.zeros((0, 2), np.int64)
    for side, words, pos, other, other_words in ((0, sw, src_pos, t, tw), (1, tw, tgt_pos, s, sw)):
        for w in np.unique(words):
            word_pos = pos[words == w]
            partners = sorted(set(wl[wl[:, side] == w][:, 1 - side].tolist()))
            content = {q: other[(other_words == q) & CONTENT[other]] for q in partners}
            usable = [q for q in partners if len(content[q])]
            if not masked[word_pos[0]] or not usable:
                assert (ex.xl_target[word_pos] == PAD).all(), (side, w)
                continue
            best = min(usable, key=lambda q: (COUNT[content[q][0]], -LENGTH[content[q][0]], q))
            expected = content[best][:1] if params.xl_target == "first-content" else content[best]
            carriers = word_pos if params.xl_positions == "all" else word_pos[:1]
            for p in carriers:
                assert ex.xl_target[p][: len(expected)].tolist() == expected.tolist(), (side, w)
            assert ex.xl_weight[word_pos].sum() == pytest.approx(1.0)
    assert (ex.xl_target[~masked] == PAD).all()


@SETTINGS
@given(pairs())
def test_weam_example_is_a_function_of_the_seed(case):
    src, tgt, links, params, seed = case
    a, b = build(src, tgt, links, params, seed), build(src, tgt, links, params, seed)
    for x, y in ((a.tokens, b.tokens), (a.ml_target, b.ml_target), (a.xl_target, b.xl_target)):
        assert np.array_equal(x, y)
    # The order of the links does not matter either.
    c = build(src, tgt, links[::-1].copy(), params, seed)
    assert np.array_equal(a.tokens, c.tokens) and np.array_equal(a.xl_target, c.xl_target)


@SETTINGS
@given(pairs())
def test_links_past_the_sentence_are_an_error(case):
    src, tgt, links, params, seed = case
    s, t = strip(src), strip(tgt)
    bad = np.array([[len(s), 0]]) if len(t) else np.array([[0, 0]])
    with pytest.raises(ValueError, match="out of range"):
        build(src, tgt, np.concatenate([links, bad]), params, seed)


@SETTINGS
@given(
    st.integers(0, 15).flatmap(
        lambda n_src: st.integers(0, 15).flatmap(
            lambda n_tgt: st.tuples(
                st.just(n_src),
                st.just(n_tgt),
                st.lists(
                    st.tuples(st.integers(0, max(n_src - 1, 0)), st.integers(0, max(n_tgt - 1, 0))),
                    max_size=20 if n_src and n_tgt else 0,
                ),
            )
        )
    ),
    st.floats(0.01, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_units_are_link_components_and_selection_takes_whole_units(case, mask_prob, seed):
    n_src, n_tgt, links = case
    links = np.unique(np.array(links, dtype=np.int64).reshape(-1, 2), axis=0)
    unit = aligned_units(n_src, n_tgt, links)
    assert unit.shape == (n_src + n_tgt,)
    for i, j in links:
        assert unit[i] == unit[n_src + j]
    chosen = select_units(unit, mask_prob, np.random.default_rng(seed))
    for u in np.unique(unit):
        assert len(set(chosen[unit == u].tolist())) == 1
    if n_src + n_tgt:
        # Whole units fill the budget, the one past it may or may not be taken.
        budget = mask_prob * (n_src + n_tgt)
        largest = np.bincount(unit).max()
        assert budget - largest < chosen.sum() <= budget + largest


@SETTINGS
@given(
    st.lists(st.integers(1, 7), min_size=1, max_size=25),
    st.sampled_from([0.1, 0.15, 0.3, 0.5, 0.77]),
    st.integers(0, 2**32 - 1),
)
def test_expected_masked_words_equal_the_budget_for_any_unit_sizes_and_order(sizes, mask_prob, seed):
    # For a fixed visiting order, average over a fine grid of the uniform draw: the expectation
    # is exactly mask_prob * n_words (up to the grid's resolution), however large the units.
    unit = np.repeat(np.arange(len(sizes)), sizes)
    order = np.random.default_rng(seed).permutation(len(sizes))
    grid = (np.arange(400) + 0.5) / 400
    mean = np.mean([select_units(unit, mask_prob, FixedDraws(order, u)).sum() for u in grid])
    assert abs(mean - mask_prob * unit.shape[0]) <= max(sizes) / 400 + 1e-9


# ---------------------------------------------------------------------------------------------
# Alignment projection and parsing


@st.composite
def word_aligned(draw):
    n_src, n_tgt = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    src_ppw = np.array(draw(st.lists(st.integers(1, 4), min_size=n_src, max_size=n_src)))
    tgt_ppw = np.array(draw(st.lists(st.integers(1, 4), min_size=n_tgt, max_size=n_tgt)))
    links = draw(st.lists(st.tuples(st.integers(0, n_src - 1), st.integers(0, n_tgt - 1)), max_size=20))
    return np.array(links, dtype=np.int64).reshape(-1, 2), src_ppw, tgt_ppw


def _starts(ppw):
    starts = np.zeros(int(ppw.sum()), dtype=bool)
    starts[first_piece_positions(ppw)] = True
    return starts


@SETTINGS
@given(word_aligned())
def test_projection_lands_on_first_pieces_and_round_trips(case):
    links, src_ppw, tgt_ppw = case
    sub = project_alignments(links, src_ppw, tgt_ppw)
    assert sub.shape == links.shape
    if len(sub):
        assert sub.min() >= 0 and (sub[:, 0] < src_ppw.sum()).all() and (sub[:, 1] < tgt_ppw.sum()).all()
        assert _starts(src_ppw)[sub[:, 0]].all() and _starts(tgt_ppw)[sub[:, 1]].all()
    # Grouping the pieces back into words gives the word links again.
    back = word_links(sub, word_ids(_starts(src_ppw)), word_ids(_starts(tgt_ppw)))
    expected = np.unique(links, axis=0) if len(links) else np.zeros((0, 2), np.int64)
    assert np.array_equal(back, expected)
    # In range for the pair, by both checkers.
    check_links_in_range(sub, int(src_ppw.sum()), int(tgt_ppw.sum()), path="p", lineno=1)


@SETTINGS
@given(st.lists(word_aligned(), min_size=1, max_size=6))
def test_batch_projection_equals_per_sentence_projection(corpus):
    batch = getattr(al, "project_alignments_batch", None)
    if batch is None:
        pytest.skip("no project_alignments_batch in this version")
    links = np.concatenate([c[0] for c in corpus])
    link_sentence = np.concatenate([np.full(len(c[0]), k) for k, c in enumerate(corpus)]).astype(np.int64)
    got = batch(
        links,
        link_sentence,
        np.concatenate([c[1] for c in corpus]),
        np.array([len(c[1]) for c in corpus]),
        np.concatenate([c[2] for c in corpus]),
        np.array([len(c[2]) for c in corpus]),
    )
    expected = np.concatenate([project_alignments(*c) for c in corpus]).reshape(-1, 2)
    assert np.array_equal(got.reshape(-1, 2), expected)


@SETTINGS
@given(st.lists(st.text(alphabet="ab\u2581", min_size=1, max_size=4), max_size=12))
def test_pieces_per_word_partitions_the_pieces(pieces):
    counts = pieces_per_word(pieces)
    assert counts.sum() == len(pieces) and (counts >= 1).all()
    assert len(counts) == (sum(p.startswith("\u2581") for p in pieces[1:]) + 1 if pieces else 0)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=20))
def test_pharaoh_round_trip(links):
    arr = np.array(links, dtype=np.int64).reshape(-1, 2)
    assert np.array_equal(parse_pharaoh(format_pharaoh(arr)), arr)


PHARAOH = re.compile(r"(\d+)-(\d+)")  # \d: Unicode decimal digits, which int() reads


def _expected_links(line):
    """The links a correct parser returns, or None where it must raise AlignmentError."""
    out = []
    for field in line.split():
        m = PHARAOH.fullmatch(field)
        if not m:
            return None
        i, j = int(m.group(1)), int(m.group(2))
        if max(i, j) >= 2**63:
            return None
        out.append([i, j])
    return out


@SETTINGS
@given(st.text(max_size=40))
@example("\u00b2-1")  # a Unicode digit that str.isdigit() accepts and int() does not
@example("99999999999999999999-1")  # past int64
@example("1-2 3-4")
@example("1-2\t3-4\n")
def test_parse_pharaoh_parses_links_or_names_the_line(line):
    """Any text: either parsed exactly, or AlignmentError naming file:line -- nothing else.
    (Non-ASCII decimal digits may go either way.)"""
    expected = _expected_links(line)
    try:
        got = parse_pharaoh(line, path="x.align", lineno=7)
    except AlignmentError as e:
        assert str(e).startswith("x.align:7: ")
        assert expected is None or not line.isascii(), f"{line!r} is valid Pharaoh but was refused: {e}"
    else:
        assert expected is not None, f"{line!r} is not i-j links but parsed as {got.tolist()}"
        assert got.tolist() == expected


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(1, 8), st.integers(1, 8)).flatmap(
            lambda lens: st.tuples(
                st.just(lens),
                st.lists(st.tuples(st.integers(-1, lens[0]), st.integers(-1, lens[1])), max_size=5),
                st.booleans(),
            )
        ),
        min_size=1,
        max_size=8,
    )
)
def test_binarized_alignment_validation_finds_the_first_bad_line(corpus):
    src_len = np.array([c[0][0] for c in corpus])
    tgt_len = np.array([c[0][1] for c in corpus])
    counts, flat, first_bad = [], [], None
    for k, ((ls, lt), links, odd) in enumerate(corpus):
        values = [v for link in links for v in link] + ([0] if odd else [])
        counts.append(len(values))
        flat += values
        bad = odd or any(not (0 <= i < ls and 0 <= j < lt) for i, j in links)
        if bad and first_bad is None:
            first_bad = k
    counts = np.array(counts)
    flat = np.array(flat, dtype=np.int64)
    if first_bad is None:
        validate_binarized_alignments(counts, flat, src_len, tgt_len, path="a.bin")
        return
    with pytest.raises(AlignmentError) as err:
        validate_binarized_alignments(counts, flat, src_len, tgt_len, path="a.bin")
    assert str(err.value).startswith("a.bin: line ")
    line = int(str(err.value).split("line ")[1].split(":")[0])
    # An odd count anywhere is reported first (whole-file check), else the first bad link.
    odd_lines = [k for k, c in enumerate(corpus) if c[2]]
    assert line - 1 == (odd_lines[0] if odd_lines else first_bad)
