"""The WEAM loss against a hand computation, and the criterion's logging."""

import math
from types import SimpleNamespace

import pytest
import torch
from fairseq import metrics

from fairseq_weam.criterions.weam import WeamCriterion, WeamCriterionConfig
from fairseq_weam.objectives.losses.prediction_loss import weam_prediction_loss

PAD = 1


def nll(row, target):
    return math.log(sum(math.exp(v) for v in row)) - row[target]


LOGITS = [[1.0, 2.0, 0.5, -1.0], [0.0, 0.3, 3.0, 1.0], [2.0, -0.5, 0.0, 0.25]]
ML = [2, 0, 0]
XL = [3, PAD, 0]  # second masked position has no aligned partner


def test_prediction_loss_matches_hand_computation():
    out = weam_prediction_loss(torch.tensor(LOGITS), torch.tensor(ML), torch.tensor(XL), PAD)
    expected_ml = sum(nll(r, t) for r, t in zip(LOGITS, ML))
    expected_xl = nll(LOGITS[0], 3) + nll(LOGITS[2], 0)
    assert out.ml_loss.item() == pytest.approx(expected_ml, abs=1e-6)
    assert out.xl_loss.item() == pytest.approx(expected_xl, abs=1e-6)
    # argmax per row: 1, 2, 0 -> ml correct only row 3 (target 0); xl correct only row 3.
    assert out.ml_correct.item() == 1 and out.xl_correct.item() == 1
    assert (out.ml_count, out.xl_count) == (3, 2)


def test_prediction_loss_gradient_matches_log_softmax():
    logits = torch.tensor(LOGITS, requires_grad=True)
    out = weam_prediction_loss(logits, torch.tensor(ML), torch.tensor(XL), PAD)
    (out.ml_loss + 0.5 * out.xl_loss).backward()
    ref = torch.tensor(LOGITS, requires_grad=True)
    lp = torch.log_softmax(ref, -1)
    loss = -lp[[0, 1, 2], ML].sum() - 0.5 * (lp[0, 3] + lp[2, 0])
    loss.backward()
    assert torch.allclose(logits.grad, ref.grad, atol=1e-6)


class FakeModel(torch.nn.Module):
    """A RoBERTa-shaped model whose LM head is the identity, so the logits at the masked
    positions are exactly the features the test puts there."""

    def __init__(self, logits, masked):
        super().__init__()
        n, v = logits.shape
        features = torch.zeros(*masked.shape, v)
        features[masked] = logits
        self.features = features
        head = torch.nn.Module()
        head.dense = torch.nn.Identity()
        head.activation_fn = lambda x: x
        head.layer_norm = torch.nn.Identity()
        head.weight = torch.nn.Parameter(torch.eye(v))
        head.bias = torch.nn.Parameter(torch.zeros(v))
        self.encoder = torch.nn.Module()
        self.encoder.lm_head = head

    def forward(self, src_tokens, src_lengths=None, features_only=False, return_all_hiddens=False):
        assert features_only
        return self.features, {"inner_states": None}


def make_sample(target, xl_target, stream=None, xl_weight=None):
    if xl_target.dim() == 2:
        xl_target = xl_target.unsqueeze(-1)
    if xl_weight is None:
        xl_weight = xl_target.ne(PAD).float()
    return {
        "net_input": {
            "src_tokens": torch.zeros_like(target),
            "src_lengths": torch.full((target.shape[0],), target.shape[1]),
        },
        "target": target,
        "xl_target": xl_target,
        "xl_weight": xl_weight,
        "stream": torch.zeros(target.shape[0], dtype=torch.long) if stream is None else stream,
        "ntokens": target.numel(),
        "nsentences": target.shape[0],
    }


def make_task(streams=("xx-yy",), n_pairs=1):
    return SimpleNamespace(
        target_dictionary=SimpleNamespace(pad=lambda: PAD),
        stream_names=list(streams),
        stream_kinds=["pair"] * n_pairs + ["mono"] * (len(streams) - n_pairs),
    )


def criterion(task, **cfg):
    return WeamCriterion(WeamCriterionConfig(**cfg), task)


def test_criterion_combines_and_logs():
    # Batch of 1 sentence with 6 positions; masked at 1, 2, 4.
    target = torch.tensor([[PAD, 2, 0, PAD, 0, PAD]])
    xl_target = torch.tensor([[PAD, 3, PAD, PAD, 0, PAD]])
    model = FakeModel(torch.tensor(LOGITS), target.ne(PAD))
    crit = criterion(make_task(), xl_lambda=0.5)
    loss, sample_size, log = crit(model, make_sample(target, xl_target))
    ml = sum(nll(r, t) for r, t in zip(LOGITS, ML))
    xl = nll(LOGITS[0], 3) + nll(LOGITS[2], 0)
    # L = mean ml (3 masked tokens) + lambda * mean xl (2 aligned words), times the sample size.
    assert loss.item() == pytest.approx(3 * (ml / 3 + 0.5 * xl / 2), abs=1e-5)
    assert sample_size == 3

    with metrics.aggregate() as agg:
        WeamCriterion.reduce_metrics([log, log])
    values = agg.get_smoothed_values()
    assert values["loss"] == pytest.approx(round((ml / 3 + 0.5 * xl / 2) / math.log(2), 3))
    assert values["ml_loss"] == pytest.approx(round(ml / 3 / math.log(2), 3))
    assert values["xl_loss"] == pytest.approx(round(xl / 2 / math.log(2), 3))
    assert values["ml_acc"] == pytest.approx(round(100 / 3, 2))
    assert values["xl_acc"] == pytest.approx(50.0)
    assert "mlm_loss" not in values and "ctr_loss" not in values


def test_lambda_zero_is_plain_masked_lm():
    target = torch.tensor([[PAD, 2, 0, PAD, 0, PAD]])
    model = FakeModel(torch.tensor(LOGITS), target.ne(PAD))
    loss, _, _ = criterion(make_task(), xl_lambda=0.0)(
        model, make_sample(target, torch.tensor([[PAD, 3, PAD, PAD, 0, PAD]]))
    )
    ref = torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.tensor(ML), reduction="sum")
    assert loss.item() == pytest.approx(ref.item(), abs=1e-5)


def test_per_stream_and_monolingual_weight():
    # Row 0 from pair stream xx-yy (masked at 1, 2), row 1 from monolingual stream zz (masked at 1).
    target = torch.tensor([[PAD, 2, 0, PAD], [PAD, 0, PAD, PAD]])
    xl_target = torch.tensor([[PAD, 3, PAD, PAD], [PAD, PAD, PAD, PAD]])
    model = FakeModel(torch.tensor(LOGITS), target.ne(PAD))
    crit = criterion(make_task(("xx-yy", "zz"), n_pairs=1), xl_lambda=1.0, mono_weight=0.25)
    loss, sample_size, log = crit(model, make_sample(target, xl_target, stream=torch.tensor([0, 1])))
    ml = nll(LOGITS[0], 2) + nll(LOGITS[1], 0)
    xl = nll(LOGITS[0], 3)
    mlm = nll(LOGITS[2], 0)
    assert sample_size == 3
    # Each term over its own count: 2 bitext tokens, 1 aligned word, 1 monolingual token.
    assert loss.item() == pytest.approx(3 * (ml / 2 + xl / 1 + 0.25 * mlm / 1), abs=1e-5)
    with metrics.aggregate() as agg:
        WeamCriterion.reduce_metrics([log])
    values = agg.get_smoothed_values()
    assert values["ml_loss_xx-yy"] == pytest.approx(round(ml / 2 / math.log(2), 3))
    assert values["mlm_loss_zz"] == pytest.approx(round(mlm / math.log(2), 3))
    assert values["mlm_acc"] == pytest.approx(100.0)  # row 3's argmax is 0, its target
    assert "ml_loss_zz" not in values


def test_logged_loss_is_the_documented_sum_over_batches_with_different_xl_shares():
    # Two batches: the first with 2 aligned words among 3 masked tokens, the second with none.
    target = torch.tensor([[PAD, 2, 0, PAD, 0, PAD]])
    model = FakeModel(torch.tensor(LOGITS), target.ne(PAD))
    crit = criterion(make_task(), xl_lambda=0.7)
    _, _, log_a = crit(model, make_sample(target, torch.tensor([[PAD, 3, PAD, PAD, 0, PAD]])))
    _, _, log_b = crit(model, make_sample(target, torch.full((1, 6), PAD)))
    with metrics.aggregate() as agg:
        WeamCriterion.reduce_metrics([log_a, log_b])
    values = agg.get_smoothed_values()
    ml = 2 * sum(nll(r, t) for r, t in zip(LOGITS, ML)) / 6
    xl = (nll(LOGITS[0], 3) + nll(LOGITS[2], 0)) / 2
    assert values["loss"] == pytest.approx(round((ml + 0.7 * xl) / math.log(2), 3))
    assert values["loss"] == pytest.approx(values["ml_loss"] + 0.7 * values["xl_loss"], abs=2e-3)
    assert not any(k.startswith("_") for k in values)  # the weighted terms stay hidden


def test_weighted_exchange_targets_count_each_word_once():
    # One masked word (position 1) with two exchange targets of weight 1/2 (all-pieces), and one
    # with a single target (position 4).
    target = torch.tensor([[PAD, 2, 0, PAD, 0, PAD]])
    xl_target = torch.tensor([[[PAD, PAD], [3, 1], [PAD, PAD], [PAD, PAD], [0, PAD], [PAD, PAD]]])
    xl_target[0, 1, 1] = 2  # second piece of the partner: token 2
    xl_weight = torch.tensor([[[0, 0], [0.5, 0.5], [0, 0], [0, 0], [1, 0], [0, 0]]])
    model = FakeModel(torch.tensor(LOGITS), target.ne(PAD))
    loss, _, log = criterion(make_task(), xl_lambda=1.0)(model, make_sample(target, xl_target, xl_weight=xl_weight))
    ml = sum(nll(r, t) for r, t in zip(LOGITS, ML))
    xl = 0.5 * nll(LOGITS[0], 3) + 0.5 * nll(LOGITS[0], 2) + nll(LOGITS[2], 0)
    assert loss.item() == pytest.approx(3 * (ml / 3 + xl / 2), abs=1e-5)
    with metrics.aggregate() as agg:
        WeamCriterion.reduce_metrics([log])
    values = agg.get_smoothed_values()
    assert values["xl_loss"] == pytest.approx(round(xl / 2 / math.log(2), 3))
    # argmax of row 0 is token 1: neither target; row 2's argmax 0 is its target: 1 of 2 words.
    assert values["xl_acc"] == pytest.approx(50.0)
