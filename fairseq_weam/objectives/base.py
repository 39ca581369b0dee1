"""The objective seam: a term is one loss of the ``weam`` criterion.

A term declares its config fields (a dataclass the criterion's config inherits), what it needs
from the batch (clean ``views`` of the pairs, word pairs inside them), and how it turns an encoded
batch into a :class:`TermResult`: per-item values for the logs and, unless it rides on the shared
LM-head call, its differentiable ``weight * mean`` loss. The criterion adds the terms up and logs
every term the same way (``KIND_loss``, ``KIND_acc``, per stream); the documented total is
``L = sum over terms of weight * mean over the term's own items``.
"""

from dataclasses import dataclass
from typing import Dict, Optional, Type

import torch


@dataclass
class TermResult:
    """One term on one batch. Items are masked tokens, masked aligned words or pairs; ``nll``,
    ``correct`` and ``count`` are summed per stream for the logs (``count`` may be fractional:
    an item's weight), and ``nll.sum() / count.sum()`` is the term's mean."""

    nll: torch.Tensor  # [R] detached, in nats
    correct: torch.Tensor  # [R]
    count: torch.Tensor  # [R]
    stream: torch.Tensor  # [R] stream index of each item
    loss: Optional[torch.Tensor] = None  # differentiable weight * mean * scale; None for head terms


def empty_result(like: torch.Tensor) -> TermResult:
    """No item in this batch (e.g. no linked word, or no pair at all): nothing to log, a zero loss
    that keeps ``like``'s graph."""
    none = like.new_zeros(0, dtype=torch.float32)
    return TermResult(nll=none, correct=none, count=none, stream=none.long(), loss=like.sum() * 0.0)


class ObjectiveTerm:
    """Base class. ``kind`` names the logs; ``weight`` is read from the config field
    ``weight_field``; a term with weight 0 is off (not computed, not logged)."""

    kind: str = ""
    weight_field: str = ""
    needs_views: bool = False  # clean <s> x </s> / <s> y </s> of each pair
    needs_word_pairs: bool = False  # linked words inside the views
    uses_head: bool = False  # rides on the shared LM-head call over the masked rows

    def __init__(self, cfg, task):
        self.cfg = cfg
        self.task = task
        self.weight = float(getattr(cfg, self.weight_field)) if self.weight_field else 1.0

    @property
    def enabled(self) -> bool:
        return self.weight != 0

    def head_weights(self, batch) -> dict:
        """Head terms: ``{"row_weight": [N] or None, "xl_coef": float}``, this term's
        coefficients in the shared head call (already times the sample-size scale)."""
        raise NotImplementedError

    def compute(self, batch) -> TermResult:
        raise NotImplementedError


TERMS: Dict[str, Type[ObjectiveTerm]] = {}
TERM_CONFIGS = []


def register_term(name: str, config=None):
    """Class decorator: make a term known to the criterion (and its config fields to fairseq)."""

    def wrap(cls):
        if name in TERMS:
            raise ValueError(f"objective term {name!r} registered twice")
        TERMS[name] = cls
        if config is not None and config not in TERM_CONFIGS:
            TERM_CONFIGS.append(config)
        return cls

    return wrap
