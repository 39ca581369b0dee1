"""What every path of the prediction loss shares: the result type and the layout of the
cross-lingual targets as ``[N, K]`` columns."""

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class PredictionLoss:
    """Summed (not averaged) losses and counts, so they add up across batches and workers."""

    ml_loss: torch.Tensor  # sum of multilingual NLL over masked positions (nats)
    xl_loss: torch.Tensor  # sum of xl_weight * cross-lingual NLL over the exchanged targets
    ml_correct: torch.Tensor
    xl_correct: torch.Tensor  # sum of xl_weight over exchanged targets equal to the argmax
    ml_count: int
    xl_count: float  # sum of xl_weight (number of targets when every weight is 1)
    # sum over rows of row_weight * ml_nll + xl_lambda * sum_k xl_weight * xl_nll (= ml_loss +
    # xl_lambda * xl_loss without row weights); the tensor to call backward on (on the chunked
    # path it is the only differentiable one). None only when built by hand.
    loss: Optional[torch.Tensor] = None
    # Detached per-row values [N], for per-group (per-stream) logging with one head call:
    # multilingual NLL, weighted cross-lingual NLL (0 where there is no cross-lingual target),
    # multilingual hit (bool) and the summed xl_weight of the cross-lingual targets hit.
    ml_nll_rows: Optional[torch.Tensor] = None
    xl_nll_rows: Optional[torch.Tensor] = None
    ml_correct_rows: Optional[torch.Tensor] = None
    xl_correct_rows: Optional[torch.Tensor] = None


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: fp32 for half types, else the input's own (fp32 or fp64)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def xl_columns(ml_target, xl_target, xl_weight, ignore_index, dtype):
    """``(xl [N, K], has [N, K], weight [N, K], safe [N, K])``: the cross-lingual targets as
    columns, which exist, their weights (0 where none) and an in-range index for every cell."""
    xl = xl_target if xl_target.dim() == 2 else xl_target.unsqueeze(1)
    has = xl.ne(ignore_index)
    if xl_weight is None:
        weight = has.to(dtype)
    else:
        weight = xl_weight if xl_weight.dim() == 2 else xl_weight.unsqueeze(1)
        weight = torch.where(has, weight.to(dtype), torch.zeros((), dtype=dtype, device=weight.device))
    safe = torch.where(has, xl, ml_target.unsqueeze(1))
    return xl, has, weight, safe
