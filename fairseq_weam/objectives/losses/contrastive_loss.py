"""Translation-pair contrastive loss (InfoNCE with in-batch negatives).

As in InfoXLM's XLCo and LaBSE: each source sentence must pick its own translation among the
batch's target sentences, and vice versa; the loss is the mean of both directions. A batch may
hold copies of a pair (an upsampled low-resource pair, or the same message translated in two
catalogs): a copy is another correct answer, not a negative, so it is left out of the softmax.
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from fairseq_weam.core.errors import OptionError


@dataclass
class ContrastiveLoss:
    loss_rows: torch.Tensor  # [B] per pair: (CE(x -> y) + CE(y -> x)) / 2, in nats
    x2y_correct: torch.Tensor  # [B] bool: x retrieved its own y among the batch
    y2x_correct: torch.Tensor  # [B] bool

    @property
    def loss(self) -> torch.Tensor:
        return self.loss_rows.sum()


def duplicate_pairs(src_key: torch.Tensor, tgt_key: torch.Tensor) -> torch.Tensor:
    """``[B, B]`` bool: pair ``j`` is a copy for pair ``i`` (``i != j``, and the same source or the
    same target sentence, so ``y_j`` also translates ``x_i``, or ``x_j`` also translates ``y_i``)."""
    same = src_key.unsqueeze(1).eq(src_key.unsqueeze(0)) | tgt_key.unsqueeze(1).eq(tgt_key.unsqueeze(0))
    return same & ~torch.eye(same.shape[0], dtype=torch.bool, device=same.device)


def info_nce(
    x: torch.Tensor, y: torch.Tensor, temperature: float, exclude: Optional[torch.Tensor] = None
) -> ContrastiveLoss:
    """Symmetric InfoNCE over cosine similarities; row ``i`` of ``x`` translates row ``i`` of ``y``.

    ``exclude`` ``[B, B]`` (bool, optional, symmetric, false on the diagonal): pairs ``(i, j)``
    that are not negatives of each other; they are left out of both softmaxes.
    """
    if temperature <= 0:
        raise OptionError(
            "the InfoNCE temperature (--contrastive-temperature, --word-contrastive-temperature) must be > 0, got "
            f"{temperature}"
        )
    x = F.normalize(x.float(), dim=-1)
    y = F.normalize(y.float(), dim=-1)
    scores = x @ y.t() / temperature
    if exclude is not None and bool(exclude.any()):
        scores = scores.masked_fill(exclude, float("-inf"))
    labels = torch.arange(scores.shape[0], device=scores.device)
    x2y = F.cross_entropy(scores, labels, reduction="none")
    y2x = F.cross_entropy(scores.t(), labels, reduction="none")
    return ContrastiveLoss(
        loss_rows=(x2y + y2x) / 2,
        x2y_correct=scores.argmax(1).eq(labels),
        y2x_correct=scores.argmax(0).eq(labels),
    )
