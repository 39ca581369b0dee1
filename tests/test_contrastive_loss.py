"""InfoNCE against a hand computation, and its symmetry (pooling: tests/test_pooling.py)."""

import math

import pytest
import torch

from fairseq_weam.objectives.losses.contrastive_loss import info_nce


def test_info_nce_matches_hand_computation():
    # Unit vectors at known angles: cos(x_i, y_j) is easy to write down.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    t = 0.5
    cos = [[1.0, math.sqrt(0.5)], [0.0, math.sqrt(0.5)]]
    s = [[c / t for c in row] for row in cos]

    def ce(row, k):
        return math.log(sum(math.exp(v) for v in row)) - row[k]

    x2y = [ce(s[0], 0), ce(s[1], 1)]
    y2x = [ce([s[0][0], s[1][0]], 0), ce([s[0][1], s[1][1]], 1)]
    out = info_nce(x, y, t)
    expected = [(a + b) / 2 for a, b in zip(x2y, y2x)]
    assert out.loss_rows.tolist() == pytest.approx(expected, abs=1e-6)
    assert out.loss.item() == pytest.approx(sum(expected), abs=1e-6)
    # x0 -> y0 (1 > .707), x1 -> y1 (.707 > 0); y0 -> x0 (1 > 0), y1: cos(x0)=cos(x1)=.707, tie -> x0
    assert out.x2y_correct.tolist() == [True, True]
    assert out.y2x_correct.tolist() == [True, False]


def test_info_nce_is_symmetric_and_scale_invariant():
    torch.manual_seed(0)
    x, y = torch.randn(5, 8), torch.randn(5, 8)
    a = info_nce(x, y, 0.1)
    b = info_nce(y, x, 0.1)
    assert torch.allclose(a.loss_rows, b.loss_rows, atol=1e-6)
    c = info_nce(3 * x, 0.5 * y, 0.1)  # cosine similarity ignores norms
    assert torch.allclose(a.loss_rows, c.loss_rows, atol=1e-5)
    # Perfect pairs at low temperature: loss near zero, all retrieved.
    d = info_nce(x, x, 0.01)
    assert d.loss.item() < 1e-3 and d.x2y_correct.all()


def test_info_nce_gradient_flows_to_both_sides():
    x = torch.randn(4, 6, requires_grad=True)
    y = torch.randn(4, 6, requires_grad=True)
    info_nce(x, y, 0.1).loss.backward()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0


def test_info_nce_rejects_zero_temperature():
    with pytest.raises(ValueError):
        info_nce(torch.ones(1, 2), torch.ones(1, 2), 0.0)


def test_copies_of_a_pair_are_not_negatives():
    from fairseq_weam.objectives.losses.contrastive_loss import duplicate_pairs

    # Pairs 0 and 2 are copies (same source and target), pair 3 shares only pair 1's source.
    src_key = torch.tensor([10, 11, 10, 11])
    tgt_key = torch.tensor([20, 21, 20, 23])
    dup = duplicate_pairs(src_key, tgt_key)
    assert dup.tolist() == [
        [False, False, True, False],
        [False, False, False, True],
        [True, False, False, False],
        [False, True, False, False],
    ]
    torch.manual_seed(1)
    x, y = torch.randn(4, 6), torch.randn(4, 6)
    x[2], y[2] = x[0], y[0]
    out = info_nce(x, y, 0.2, exclude=dup)
    # By hand: row i's softmax runs over the columns that are not excluded.
    s = torch.nn.functional.normalize(x, dim=-1) @ torch.nn.functional.normalize(y, dim=-1).t() / 0.2
    keep = ~dup
    for i in range(4):
        cols = keep[i].nonzero().flatten()
        x2y = torch.logsumexp(s[i, cols], 0) - s[i, i]
        rows = keep[:, i].nonzero().flatten()
        y2x = torch.logsumexp(s[rows, i], 0) - s[i, i]
        assert out.loss_rows[i].item() == pytest.approx(((x2y + y2x) / 2).item(), abs=1e-5)
    # Without the exclusion, the twin's own translation competes as a negative: a higher loss.
    plain = info_nce(x, y, 0.2)
    assert plain.loss_rows[0].item() > out.loss_rows[0].item() + 0.01
