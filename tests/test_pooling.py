"""The one sentence pooling (fairseq_weam/pooling.py) on hand-computed rows, and that the
contrastive loss and the evaluation encoder use that same function."""

import pytest
import torch

from fairseq_weam.pooling import content_mask, pool

PAD = 1
# <s> = 0, </s> = 2, pad = 1. Row 0: two pieces; row 1: one piece, then padding whose states are
# junk (100) that must not leak; row 2: an empty sentence, only <s> </s>.
TOKENS = torch.tensor([[0, 7, 8, 2], [0, 9, 2, 1], [0, 2, 1, 1]])
HIDDEN = torch.tensor(
    [
        [[10.0, 0.0], [1.0, 2.0], [3.0, -4.0], [0.0, 50.0]],
        [[4.0, 4.0], [2.0, -2.0], [6.0, 0.0], [100.0, 100.0]],
        [[1.0, 3.0], [3.0, 5.0], [100.0, 100.0], [100.0, 100.0]],
    ]
)


def test_content_mask_excludes_specials_and_pad():
    assert content_mask(TOKENS, PAD).tolist() == [
        [False, True, True, False],
        [False, True, False, False],
        [True, True, False, False],  # empty sentence: falls back to <s> </s>
    ]


def test_mean_max_cls_by_hand():
    # Row 0 mean over pieces (1,2), (3,-4) = (2,-1); counting <s> and </s> would give (3.5, 12).
    assert pool(HIDDEN, TOKENS, PAD, "mean").tolist() == [[2.0, -1.0], [2.0, -2.0], [2.0, 4.0]]
    assert pool(HIDDEN, TOKENS, PAD, "max").tolist() == [[3.0, 2.0], [2.0, -2.0], [3.0, 5.0]]
    assert pool(HIDDEN, TOKENS, PAD, "cls").tolist() == [[10.0, 0.0], [4.0, 4.0], [1.0, 3.0]]
    with pytest.raises(ValueError, match="pooling"):
        pool(HIDDEN, TOKENS, PAD, "sum")


def test_half_precision_and_gradient():
    h = HIDDEN.clone().requires_grad_(True)
    pool(h, TOKENS, PAD, "mean").sum().backward()
    # d(mean)/d(state) = 1/len on content positions, 0 on <s>, </s> and pad (row 0: 1/2 each).
    assert h.grad[0, :, 0].tolist() == [0.0, 0.5, 0.5, 0.0] and h.grad[1, :, 0].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert pool(HIDDEN.half(), TOKENS, PAD, "mean").dtype == torch.float16


def test_training_and_evaluation_share_the_function():
    from fairseq_weam.evaluation import embeddings
    from fairseq_weam.objectives import sentence_contrastive

    assert sentence_contrastive.pool is pool and embeddings.pool is pool
    assert sentence_contrastive.POOLINGS == embeddings.POOLINGS == ("mean", "cls", "max")
