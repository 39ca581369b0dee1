"""Every stream, and each side of a pair in the MLM baseline, draws its own masks: example i of
two streams is not masked alike just because it has the same index."""

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary, ListDataset

from fairseq_weam.data.aligned_pair_dataset import AlignedPairDataset, piece_table
from fairseq_weam.data.masked_examples import BatchFields
from fairseq_weam.data.masked_sentence_dataset import MaskedSentenceDataset
from fairseq_weam.data.masking import MaskingParams


@pytest.fixture(scope="module")
def corpus():
    d = Dictionary()
    for i in range(30):
        d.add_symbol(f"\u2581w{i}")
    mask_idx = d.add_symbol("<mask>")
    rng = np.random.default_rng(0)
    sents = [torch.LongTensor(list(rng.integers(d.nspecial, d.nspecial + 30, 12)) + [d.eos()]) for _ in range(40)]
    sizes = np.array([len(s) for s in sents])
    return d, mask_idx, ListDataset(sents, sizes)


def masks(ds):
    return [tuple(ds[i]["target"].ne(ds.dictionary.pad()).nonzero().flatten().tolist()) for i in range(len(ds))]


def kwargs(d, mask_idx, **kw):
    return dict(
        mask_idx=mask_idx, pieces=piece_table(d, "sentencepiece", mask_idx), params=MaskingParams(), seed=3, **kw
    )


def test_two_streams_of_the_same_sentences_get_different_masks(corpus):
    d, mask_idx, sents = corpus
    a = MaskedSentenceDataset(sents, d, **kwargs(d, mask_idx, stream=0))
    b = MaskedSentenceDataset(sents, d, **kwargs(d, mask_idx, stream=1))
    same = sum(x == y for x, y in zip(masks(a), masks(b)))
    assert same < 5, same  # 12 words, 3.6 masked: a coincidence is rare
    # ... and the same stream is reproducible.
    assert masks(a) == masks(MaskedSentenceDataset(sents, d, **kwargs(d, mask_idx, stream=0)))


def test_the_two_sides_of_a_pair_get_different_masks_in_the_mlm_baseline(corpus):
    d, mask_idx, sents = corpus
    src = MaskedSentenceDataset(sents, d, **kwargs(d, mask_idx, stream=0, side=0))
    tgt = MaskedSentenceDataset(sents, d, **kwargs(d, mask_idx, stream=0, side=1))
    assert sum(x == y for x, y in zip(masks(src), masks(tgt))) < 5


def test_epochs_give_new_masks_and_views_only_when_asked(corpus):
    d, mask_idx, sents = corpus
    empty = ListDataset([torch.LongTensor([]) for _ in range(40)], np.zeros(40, dtype=np.int64))
    fields = BatchFields()
    ds = AlignedPairDataset(sents, sents, empty, d, **kwargs(d, mask_idx), fields=fields)
    first = masks(ds)
    ds.set_epoch(2)
    assert sum(x == y for x, y in zip(first, masks(ds))) < 5
    assert not ds.can_reuse_epoch_itr_across_epochs  # so fairseq restarts its workers each epoch
    # Views only when a term asks for them (the task flips the shared fields after building the
    # criterion; the dataset reads them per item).
    assert "views" not in ds[0] and "word_view" not in ds[0]
    fields.views = True
    assert "views" in ds[0] and "word_view" not in ds[0]
