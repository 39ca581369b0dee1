"""The WEAM prediction loss as a pure torch function.

Both targets are predicted from the same logits at the same masked positions, so one
log-sum-exp serves both: ``nll(t) = logsumexp(logits) - logits[t]``.
"""

from dataclasses import dataclass

import torch


@dataclass
class PredictionLoss:
    """Summed (not averaged) losses and counts, so they add up across batches and workers."""

    ml_loss: torch.Tensor  # sum of multilingual NLL over masked positions (nats)
    xl_loss: torch.Tensor  # sum of cross-lingual NLL over positions with an exchanged target
    ml_correct: torch.Tensor
    xl_correct: torch.Tensor
    ml_count: int
    xl_count: int


def weam_prediction_loss(logits: torch.Tensor, ml_target: torch.Tensor, xl_target: torch.Tensor, ignore_index: int) -> PredictionLoss:
    """Losses of ``logits`` ``[N, V]`` (masked positions only) against both targets ``[N]``.

    ``xl_target`` holds ``ignore_index`` where a masked token has no aligned partner.
    """
    lse = torch.logsumexp(logits.float(), dim=-1)
    predicted = logits.argmax(dim=-1)

    ml_nll = lse - logits.gather(1, ml_target.unsqueeze(1)).squeeze(1).float()
    has_xl = xl_target.ne(ignore_index)
    xl_rows = has_xl.nonzero(as_tuple=True)[0]
    xl_tgt = xl_target.index_select(0, xl_rows)
    xl_logit = logits.index_select(0, xl_rows).gather(1, xl_tgt.unsqueeze(1)).squeeze(1).float()
    xl_nll = lse.index_select(0, xl_rows) - xl_logit

    return PredictionLoss(
        ml_loss=ml_nll.sum(),
        xl_loss=xl_nll.sum(),
        ml_correct=predicted.eq(ml_target).sum(),
        xl_correct=predicted.index_select(0, xl_rows).eq(xl_tgt).sum(),
        ml_count=int(ml_target.numel()),
        xl_count=int(xl_rows.numel()),
    )
