"""The aligned-word contrastive term: which words are paired, how their vectors are pooled, and
its loss against a hand computation through the criterion."""

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary, ListDataset

from fairseq_weam.data.aligned_pair_dataset import AlignedPairDataset, piece_table
from fairseq_weam.data.masked_examples import BatchFields, collate_examples
from fairseq_weam.data.masking import MaskingParams, one_to_one_links
from fairseq_weam.objectives.losses.contrastive_loss import info_nce
from fairseq_weam.objectives.word_contrastive import pool_words


def test_only_one_to_one_links_pair_words():
    links = np.array([[0, 0], [1, 1], [1, 2], [2, 3], [3, 3], [4, 4]])
    # word 1 has two partners, target word 3 has two: only 0-0 and 4-4 are unambiguous.
    assert one_to_one_links(links).tolist() == [[0, 0], [4, 4]]
    assert one_to_one_links(np.zeros((0, 2), dtype=np.int64)).shape == (0, 2)


def test_pool_words_is_the_mean_over_each_words_pieces():
    states = torch.arange(2 * 4 * 2, dtype=torch.float32).reshape(2, 4, 2)
    word = torch.tensor([[-1, 0, 0, 1], [-1, 2, -1, -1]])
    pooled = pool_words(states, word, 3)
    assert pooled.tolist() == [[3.0, 4.0], [6.0, 7.0], [10.0, 11.0]]


@pytest.fixture
def pair_dataset():
    d = Dictionary()
    for sym in ["\u2581a", "b", "\u2581c", "\u2581d", "\u2581e", "f"]:
        d.add_symbol(sym)
    mask_idx = d.add_symbol("<mask>")
    A, B, C, D, E, F = (d.index(s) for s in ["\u2581a", "b", "\u2581c", "\u2581d", "\u2581e", "f"])
    src = [torch.LongTensor([A, B, C, d.eos()]), torch.LongTensor([C, d.eos()])]
    tgt = [torch.LongTensor([D, E, F, d.eos()]), torch.LongTensor([D, d.eos()])]
    # pair 0: ab <-> ef (pieces 0 -> 1), c <-> d (2 -> 0); pair 1: c <-> d.
    align = [torch.LongTensor([0, 1, 2, 0]), torch.LongTensor([0, 0])]
    sizes = lambda xs: np.array([len(x) for x in xs])  # noqa: E731
    fields = BatchFields(views=True, word_pairs=True)
    ds = AlignedPairDataset(
        ListDataset(src, sizes(src)),
        ListDataset(tgt, sizes(tgt)),
        ListDataset(align, sizes(align)),
        d,
        mask_idx=mask_idx,
        pieces=piece_table(d, "sentencepiece", mask_idx),
        params=MaskingParams(),
        fields=fields,
    )
    return ds, (A, B, C, D, E, F)


def test_word_views_and_their_batch(pair_dataset):
    ds, _ = pair_dataset
    wv = ds[0]["word_view"]
    # <s> a b c </s>: words ab (0), c (1); <s> d e f </s>: d (0), ef (1).
    assert wv["src_word"].tolist() == [-1, 0, 0, 1, -1]
    assert wv["tgt_word"].tolist() == [-1, 0, 1, 1, -1]
    assert wv["pairs"].tolist() == [[0, 1], [1, 0]]
    batch = collate_examples([ds[0], ds[1]], ds.dictionary.pad())
    v = batch["views"]
    # Global ids: pair 1's words come after pair 0's (2 source words, 2 target words).
    assert v["src_word"].tolist() == [[-1, 0, 0, 1, -1], [-1, 2, -1, -1, -1]]
    assert v["tgt_word"].tolist() == [[-1, 0, 1, 1, -1], [-1, 2, -1, -1, -1]]
    assert v["word_pairs"].tolist() == [[0, 1], [1, 0], [2, 2]]
    # "c <-> d" occurs twice: the same content keys, so they are not each other's negatives.
    assert v["word_src_key"][1] == v["word_src_key"][2] and v["word_tgt_key"][1] == v["word_tgt_key"][2]
    assert v["word_src_key"][0] != v["word_src_key"][1]


def test_criterion_term_equals_hand_computation(pair_dataset):
    from types import SimpleNamespace

    from fairseq_weam.criterions.weam import WeamCriterionConfig
    from fairseq_weam.objectives.batch import EncodedBatch
    from fairseq_weam.objectives.word_contrastive import WordContrastive

    ds, _ = pair_dataset
    batch = collate_examples([ds[0], ds[1]], ds.dictionary.pad())
    v = batch["views"]
    torch.manual_seed(0)
    xs = torch.randn(2, v["src_tokens"].shape[1], 3)
    ys = torch.randn(2, v["tgt_tokens"].shape[1], 3)
    encoded = EncodedBatch(
        sample=batch,
        pad=ds.dictionary.pad(),
        masked=batch["target"].ne(1),
        hidden=torch.zeros(0, 3),
        row_stream=torch.zeros(0, dtype=torch.long),
        is_mono_row=torch.zeros(0, dtype=torch.bool),
        scale=10.0,
        view_src_states=[xs],
        view_tgt_states=[ys],
    )
    cfg = WeamCriterionConfig(word_contrastive_weight=0.5, word_contrastive_temperature=0.2, word_contrastive_layer=-1)
    term = WordContrastive(cfg, SimpleNamespace(cfg=SimpleNamespace(bitext_objective="weam")))
    result = term.compute(encoded)
    # By hand: word vectors are piece means; pairs (ab, ef), (c, d), (c', d'); 1 and 2 are copies.
    x = torch.stack([xs[0, 1:3].mean(0), xs[0, 3], xs[1, 1]])
    y = torch.stack([(ys[0, 2:4]).mean(0), ys[0, 1], ys[1, 1]])
    exclude = torch.tensor([[False, False, False], [False, False, True], [False, True, False]])
    ref = info_nce(x, y, 0.2, exclude=exclude)
    assert torch.allclose(result.nll, ref.loss_rows, atol=1e-6)
    assert result.loss.item() == pytest.approx(0.5 * ref.loss.item() * 10.0 / 3, rel=1e-5)
    assert result.count.tolist() == [1.0, 1.0, 1.0]


def test_word_contrastive_needs_alignments():
    from types import SimpleNamespace

    from fairseq_weam.criterions.weam import WeamCriterionConfig
    from fairseq_weam.objectives.word_contrastive import WordContrastive

    with pytest.raises(ValueError, match="needs the alignments"):
        WordContrastive(
            WeamCriterionConfig(word_contrastive_weight=1.0),
            SimpleNamespace(cfg=SimpleNamespace(bitext_objective="tlm")),
        )
