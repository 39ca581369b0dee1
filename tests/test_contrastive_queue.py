"""The contrastive term at the anchors' strength: the negative queue (FIFO order, wrap-around, its
scores in the softmax, copies excluded), the momentum key encoder (the update formula, no
gradient) and the flags' validation -- against hand computations, without fairseq-train."""

import math
from types import SimpleNamespace

import pytest
import torch

from fairseq_weam.objectives.losses.contrastive_loss import info_nce, keyed_info_nce
from fairseq_weam.objectives.momentum import MomentumEncoder, momentum_update
from fairseq_weam.objectives.negative_queue import NegativeQueue
from fairseq_weam.objectives.sentence_contrastive import (
    ContrastiveConfigError,
    SentenceContrastive,
    validate_config,
)


def rows(*values):
    return torch.tensor([[float(v), 0.0] for v in values])


def test_queue_is_fifo_across_pushes_and_wraps_around():
    q = NegativeQueue(5)
    assert q.entries() is None
    q.push(rows(1, 2, 3), rows(11, 12, 13), torch.tensor([1, 2, 3]), torch.tensor([21, 22, 23]))
    x, y, s, t = q.entries()
    assert x[:, 0].tolist() == [1, 2, 3] and y[:, 0].tolist() == [11, 12, 13] and s.tolist() == [1, 2, 3]
    # 4 more: the oldest (1, 2) make room, the write wraps around the end of the buffer.
    q.push(rows(4, 5, 6, 7), rows(14, 15, 16, 17), torch.tensor([4, 5, 6, 7]), torch.tensor([24, 25, 26, 27]))
    x, y, s, t = q.entries()
    assert x[:, 0].tolist() == [3, 4, 5, 6, 7] and t.tolist() == [23, 24, 25, 26, 27]
    assert q.ptr == 2 and q.filled == 5
    assert q.x[:, 0].tolist() == [6, 7, 3, 4, 5]  # slots 0, 1 overwritten by the wrap
    # More than the queue holds in one push: only the newest 5 survive, still in order.
    q.push(rows(*range(8, 15)), rows(*range(18, 25)), torch.arange(8, 15), torch.arange(28, 35))
    assert q.entries()[0][:, 0].tolist() == [10, 11, 12, 13, 14]


def test_queue_state_roundtrip_same_and_other_size():
    q = NegativeQueue(4)
    q.push(rows(1, 2, 3, 4, 5, 6), rows(1, 2, 3, 4, 5, 6), torch.arange(6), torch.arange(6))
    state = q.state_dict()
    same = NegativeQueue(4)
    same.load_state_dict(state)
    assert (same.ptr, same.filled) == (q.ptr, q.filled) and torch.equal(same.x, q.x)  # slot for slot
    smaller = NegativeQueue(3)
    smaller.load_state_dict(state)  # the newest 3, in order
    assert smaller.entries()[0][:, 0].tolist() == [4, 5, 6]
    empty = NegativeQueue(4)
    empty.load_state_dict(NegativeQueue(4).state_dict())
    assert empty.entries() is None


def _ce(scores, k):
    return math.log(sum(math.exp(v) for v in scores)) - scores[k]


def test_queued_keys_enter_the_softmax_and_copies_are_left_out():
    # Unit vectors at known angles; rows 0 and 1 of the batch, keys = queries.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    qx = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    qy = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
    # Queue entry 1 is a copy of row 1's pair (same content key): not a negative of row 1.
    q_exclude = torch.tensor([[False, False], [False, True]])
    t = 0.5
    out = keyed_info_nce(x, y, x, y, torch.arange(2), t, queue_x=qx, queue_y=qy, queue_exclude=q_exclude)
    cos = lambda a, b: float(a @ b)  # noqa: E731 -- unit vectors
    expected = []
    for i in range(2):
        x2y = [cos(x[i], y[j]) / t for j in range(2)] + [cos(x[i], qy[k]) / t for k in range(2) if not q_exclude[i, k]]
        y2x = [cos(y[i], x[j]) / t for j in range(2)] + [cos(y[i], qx[k]) / t for k in range(2) if not q_exclude[i, k]]
        expected.append((_ce(x2y, i) + _ce(y2x, i)) / 2)
    assert out.loss_rows.tolist() == pytest.approx(expected, abs=1e-6)
    # The queue raises the loss (more negatives), and without it the in-batch loss comes back.
    plain = info_nce(x, y, t)
    assert (out.loss_rows > plain.loss_rows).all()
    none = keyed_info_nce(x, y, x, y, torch.arange(2), t, queue_x=qx[:0], queue_y=qy[:0])
    assert torch.allclose(none.loss_rows, plain.loss_rows)
    # An excluded entry has no effect at all, whatever its score: row 1 without entry 1 == with
    # entry 1 swapped for anything else excluded.
    other = keyed_info_nce(
        x,
        y,
        x,
        y,
        torch.arange(2),
        t,
        queue_x=torch.stack([qx[0], -qx[0]]),
        queue_y=torch.stack([qy[0], -qy[0]]),
        queue_exclude=q_exclude,
    )
    assert other.loss_rows[1].item() == pytest.approx(out.loss_rows[1].item(), abs=1e-6)


class FakeBatch:
    """What the term reads of an EncodedBatch: pooled from [P, 3, C] states (mean over position
    1: one piece between <s> and </s>)."""

    def __init__(self, x, y, src_key, tgt_key, model):
        p, c = x.shape
        pad = 1
        self.pad = pad
        self.scale = 10.0
        self.model = model
        self.hidden = torch.zeros(4, c)
        tokens = torch.tensor([[0, 5, 2]] * p)
        self.views = {
            "src_tokens": tokens,
            "tgt_tokens": tokens,
            "stream": torch.zeros(p, dtype=torch.long),
            "src_key": torch.tensor(src_key),
            "tgt_key": torch.tensor(tgt_key),
        }
        self._x = torch.stack([torch.zeros_like(x), x, torch.zeros_like(x)], 1)
        self._y = torch.stack([torch.zeros_like(y), y, torch.zeros_like(y)], 1)

    def view_layer(self, layer):
        return self._x, self._y


def term_cfg(**over):
    base = dict(
        contrastive_weight=1.0,
        contrastive_temperature=0.1,
        contrastive_pooling="mean",
        contrastive_layer=-1,
        contrastive_queue_size=3,
        contrastive_momentum=None,
        contrastive_gather=False,
    )
    base.update(over)
    return SimpleNamespace(**base)


def test_term_queues_each_steps_keys_and_scores_them_next_step():
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1).train()
    term = SentenceContrastive(term_cfg(), task=None)
    x1, y1 = torch.randn(2, 4), torch.randn(2, 4)
    r1 = term.compute(FakeBatch(x1, y1, [1, 2], [11, 12], model))
    # Step 1: nothing queued yet -- the in-batch loss.
    assert r1.nll.tolist() == pytest.approx(info_nce(x1, y1, 0.1).loss_rows.tolist(), abs=1e-6)
    assert term.queue.filled == 2
    # Step 2: row 0 is a new pair, row 1 repeats step 1's pair 0 (src key 1): that queued copy is
    # not its negative; step 1's pair 1 is a negative of both.
    x2, y2 = torch.randn(2, 4), torch.randn(2, 4)
    r2 = term.compute(FakeBatch(x2, y2, [3, 1], [13, 11], model))
    qx, qy = torch.nn.functional.normalize(x1, dim=-1), torch.nn.functional.normalize(y1, dim=-1)
    expected = keyed_info_nce(
        x2,
        y2,
        x2,
        y2,
        torch.arange(2),
        0.1,
        queue_x=qx,
        queue_y=qy,
        queue_exclude=torch.tensor([[False, False], [True, False]]),
    )
    assert r2.nll.tolist() == pytest.approx(expected.loss_rows.tolist(), abs=1e-5)
    assert r2.loss.item() == pytest.approx(expected.loss.item() * 10.0 / 2, abs=1e-4)  # weight * sum * scale / n
    # Step 2 already dropped step 1's pair 0 (4 pairs, 3 slots); step 3 drops its pair 1, FIFO.
    assert term.queue.entries()[2].tolist() == [2, 3, 1]
    term.compute(FakeBatch(torch.randn(1, 4), torch.randn(1, 4), [4], [14], model))
    assert term.queue.entries()[2].tolist() == [3, 1, 4]
    # Validation (eval mode) neither reads nor fills the queue.
    model.eval()
    r_eval = term.compute(FakeBatch(x2, y2, [3, 1], [13, 11], model))
    assert r_eval.nll.tolist() == pytest.approx(info_nce(x2, y2, 0.1).loss_rows.tolist(), abs=1e-6)
    assert term.queue.entries()[2].tolist() == [3, 1, 4]


class TinyEncoder(torch.nn.Module):
    """Stands in for RoBERTa's call signature: model(tokens, features_only=True, ...)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.proj = torch.nn.Linear(4, 4)
        self.register_buffer("version", torch.tensor([1.0]))

    def forward(self, tokens, features_only=True, return_all_hiddens=False):
        return self.proj(self.embed(tokens)), {}


def test_momentum_update_is_the_formula_after_one_optimizer_step_and_keys_get_no_gradient():
    torch.manual_seed(0)
    query = TinyEncoder()
    enc = MomentumEncoder(0.9)
    key = enc.ensure(query)
    before = [p.detach().clone() for p in key.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, query.parameters()))  # starts as a copy
    opt = torch.optim.SGD(query.parameters(), lr=0.5)
    tokens = torch.tensor([[1, 2, 3]])
    keys = enc.encode(query, tokens, -1)
    loss = (query(tokens)[0] * keys).sum() + keys.sum()
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in key.parameters())
    assert all(p.grad is not None for p in query.parameters())
    opt.step()
    query.version.fill_(7.0)
    enc.step(query)
    for k, k0, q in zip(key.parameters(), before, query.parameters()):
        assert torch.allclose(k, 0.9 * k0 + 0.1 * q.detach(), atol=1e-7)
        assert not torch.equal(k, q)  # moved part of the way only
    assert key.version.item() == 7.0  # buffers copied
    # m = 0: the key encoder is the trained weights.
    zero = [torch.zeros(3)]
    momentum_update(zero, [torch.ones(3)], 0.0)
    assert zero[0].tolist() == [1.0, 1.0, 1.0]


def test_momentum_state_is_loaded_into_the_copy_made_on_first_use():
    torch.manual_seed(0)
    a = MomentumEncoder(0.5)
    query = TinyEncoder()
    a.ensure(query)
    for p in a.model.parameters():
        p.add_(1.0)
    b = MomentumEncoder(0.5)
    b.load_state_dict(a.state_dict())
    b.ensure(TinyEncoder())
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    "over, flag",
    [
        (dict(contrastive_queue_size=-1), "--contrastive-queue-size must be >= 0"),
        (dict(contrastive_momentum=1.0), "--contrastive-momentum must be in [0, 1)"),
        (dict(contrastive_momentum=-0.1), "--contrastive-momentum must be in [0, 1)"),
        (dict(contrastive_weight=0.0, contrastive_queue_size=8), "--contrastive-queue-size needs the contrastive term"),
        (
            dict(contrastive_weight=0.0, contrastive_queue_size=0, contrastive_momentum=0.9),
            "--contrastive-momentum needs the contrastive term",
        ),
        (
            dict(contrastive_weight=0.0, contrastive_queue_size=0, contrastive_gather=True),
            "--contrastive-gather needs the contrastive term",
        ),
    ],
)
def test_flags_are_validated(over, flag):
    with pytest.raises(ContrastiveConfigError) as e:
        validate_config(term_cfg(**over))
    assert str(e.value).startswith(flag) and "\n" not in str(e.value)


def test_valid_flags_pass():
    validate_config(term_cfg(contrastive_momentum=0.0))
    validate_config(term_cfg(contrastive_weight=0.0, contrastive_queue_size=0))
