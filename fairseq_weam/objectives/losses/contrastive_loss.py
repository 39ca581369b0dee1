"""Translation-pair contrastive loss (InfoNCE with in-batch negatives, optionally queued keys).

As in InfoXLM's XLCo and LaBSE: each source sentence must pick its own translation among the
batch's target sentences, and vice versa; the loss is the mean of both directions. A batch may
hold copies of a pair (an upsampled low-resource pair, or the same message translated in two
catalogs): a copy is another correct answer, not a negative, so it is left out of the softmax.

:func:`keyed_info_nce` is the general form behind ``--contrastive-queue-size``,
``--contrastive-momentum`` and ``--contrastive-gather``: queries (with gradient) are scored
against *keys* (the same vectors, a momentum encoder's, or every worker's) plus a queue of past
keys; :func:`info_nce` is its in-batch special case (keys = queries, no queue).
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


def same_sentence(row_src, row_tgt, other_src, other_tgt) -> torch.Tensor:
    """``[R, P]`` bool: entry ``j`` shares the source or the target sentence (content key) with
    row ``i``, so its target also translates ``x_i`` or its source also translates ``y_i``."""
    return row_src.unsqueeze(1).eq(other_src.unsqueeze(0)) | row_tgt.unsqueeze(1).eq(other_tgt.unsqueeze(0))


def duplicate_pairs(src_key: torch.Tensor, tgt_key: torch.Tensor) -> torch.Tensor:
    """``[B, B]`` bool: pair ``j`` is a copy for pair ``i`` (``i != j``, and the same source or the
    same target sentence, so ``y_j`` also translates ``x_i``, or ``x_j`` also translates ``y_i``)."""
    same = same_sentence(src_key, tgt_key, src_key, tgt_key)
    return same & ~torch.eye(same.shape[0], dtype=torch.bool, device=same.device)


def keyed_info_nce(
    x_q: torch.Tensor,
    y_q: torch.Tensor,
    x_k: torch.Tensor,
    y_k: torch.Tensor,
    positive: torch.Tensor,
    temperature: float,
    exclude: Optional[torch.Tensor] = None,
    queue_x: Optional[torch.Tensor] = None,
    queue_y: Optional[torch.Tensor] = None,
    queue_exclude: Optional[torch.Tensor] = None,
) -> ContrastiveLoss:
    """Symmetric InfoNCE over cosine similarities of queries against keys and queued keys.

    Row ``i``: ``x_q[i]`` must pick ``y_k[positive[i]]`` among the keys ``y_k`` ``[P, C]`` and the
    queued ``queue_y`` ``[K, C]``; ``y_q[i]`` must pick ``x_k[positive[i]]`` among ``x_k`` and
    ``queue_x``. ``exclude`` ``[R, P]`` and ``queue_exclude`` ``[R, K]`` (bool, false at the
    positive) mark keys that are not negatives of row ``i`` (copies of its pair): they are left
    out of both softmaxes. The loss of a row is the mean of its two cross-entropies.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x_q, y_q = F.normalize(x_q.float(), dim=-1), F.normalize(y_q.float(), dim=-1)
    x_k, y_k = F.normalize(x_k.float(), dim=-1), F.normalize(y_k.float(), dim=-1)
    rows, n_keys = x_q.shape[0], x_k.shape[0]
    queued = queue_x is not None and queue_x.shape[0] > 0
    if queued:
        x_k = torch.cat([x_k, F.normalize(queue_x.float(), dim=-1)])
        y_k = torch.cat([y_k, F.normalize(queue_y.float(), dim=-1)])
    skip = torch.zeros(rows, x_k.shape[0], dtype=torch.bool, device=x_q.device)
    if exclude is not None:
        skip[:, :n_keys] = exclude.to(skip.device)
    if queued and queue_exclude is not None:
        skip[:, n_keys:] = queue_exclude.to(skip.device)
    x2y_scores = x_q @ y_k.t() / temperature
    y2x_scores = y_q @ x_k.t() / temperature
    if bool(skip.any()):
        x2y_scores = x2y_scores.masked_fill(skip, float("-inf"))
        y2x_scores = y2x_scores.masked_fill(skip, float("-inf"))
    labels = positive.to(x_q.device)
    x2y = F.cross_entropy(x2y_scores, labels, reduction="none")
    y2x = F.cross_entropy(y2x_scores, labels, reduction="none")
    return ContrastiveLoss(
        loss_rows=(x2y + y2x) / 2,
        x2y_correct=x2y_scores.argmax(1).eq(labels),
        y2x_correct=y2x_scores.argmax(1).eq(labels),
    )


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
    positive = torch.arange(x.shape[0], device=x.device)
    return keyed_info_nce(x, y, x, y, positive, temperature, exclude=exclude)
