"""Sentence vectors from token states: the one pooling used by training and by evaluation.

The contrastive loss (``--contrastive-pooling``) and the evaluation commands (``--pooling``) call
the same :func:`pool`, so a model is evaluated on exactly the vector it was trained to align.

Rows are fairseq token rows ``<s> pieces </s>``, right-padded with ``pad``:

* ``mean``: mean of the states of the sentence's pieces, **without** ``<s>`` and ``</s>``
  (they sit in every sentence and carry no content of their own; counting them pulls short
  sentences towards each other). A row with no pieces (an empty sentence) falls back to the
  mean of its ``<s>`` and ``</s>`` rather than dividing by zero.
* ``max``: element-wise maximum over the same positions.
* ``cls``: the state at position 0 (``<s>``).
"""

import torch

from fairseq_weam.core.errors import OptionError

POOLINGS = ("mean", "cls", "max")


def content_mask(tokens: torch.Tensor, pad: int) -> torch.Tensor:
    """``[B, T]`` bool: the piece positions of each row (non-pad, not the first position, not the
    last non-pad position); rows without pieces keep all their non-pad positions."""
    nonpad = tokens.ne(pad)
    keep = nonpad.clone()
    keep[:, 0] = False
    last = nonpad.long().sum(1) - 1
    rows = torch.arange(tokens.shape[0], device=tokens.device)
    keep[rows, last.clamp(min=0)] = False
    empty = ~keep.any(1)
    keep[empty] = nonpad[empty]
    return keep


def pool(hidden: torch.Tensor, tokens: torch.Tensor, pad: int, mode: str) -> torch.Tensor:
    """Sentence vectors ``[B, C]`` from ``hidden`` ``[B, T, C]`` and its ``tokens`` ``[B, T]``."""
    if mode == "cls":
        return hidden[:, 0]
    if mode not in POOLINGS:
        raise OptionError(f"--pooling must be one of {POOLINGS}, got {mode!r}")
    keep = content_mask(tokens, pad).unsqueeze(-1)
    if mode == "mean":
        w = keep.to(hidden.dtype)
        return (hidden * w).sum(1) / w.sum(1).clamp(min=1)
    return hidden.masked_fill(~keep, float("-inf")).max(1).values
