"""Translation-pair contrastive loss (InfoNCE with in-batch negatives) and sentence pooling.

As in InfoXLM's XLCo and LaBSE: each source sentence must pick its own translation among the
batch's target sentences, and vice versa; the loss is the mean of both directions.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The one sentence pooling, shared with evaluation (fairseq_weam/pooling.py documents it).
from ..pooling import POOLINGS, pool  # noqa: F401  (re-exported for criterions/weam.py)


@dataclass
class ContrastiveLoss:
    loss_rows: torch.Tensor  # [B] per pair: (CE(x -> y) + CE(y -> x)) / 2, in nats
    x2y_correct: torch.Tensor  # [B] bool: x retrieved its own y among the batch
    y2x_correct: torch.Tensor  # [B] bool

    @property
    def loss(self) -> torch.Tensor:
        return self.loss_rows.sum()


def info_nce(x: torch.Tensor, y: torch.Tensor, temperature: float) -> ContrastiveLoss:
    """Symmetric InfoNCE over cosine similarities; row ``i`` of ``x`` translates row ``i`` of ``y``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = F.normalize(x.float(), dim=-1)
    y = F.normalize(y.float(), dim=-1)
    scores = x @ y.t() / temperature
    labels = torch.arange(scores.shape[0], device=scores.device)
    x2y = F.cross_entropy(scores, labels, reduction="none")
    y2x = F.cross_entropy(scores.t(), labels, reduction="none")
    return ContrastiveLoss(
        loss_rows=(x2y + y2x) / 2,
        x2y_correct=scores.argmax(1).eq(labels),
        y2x_correct=scores.argmax(0).eq(labels),
    )
