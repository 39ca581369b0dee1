"""One encoder pass over a batch, shared by every objective term."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import List, Optional

import torch
from fairseq.data import data_utils

from fairseq_weam.objectives.losses.prediction_loss import PredictionLoss, lm_head_hidden, masked_lm_head_input


@dataclass
class EncodedBatch:
    """What the terms read: the masked rows (LM-head input, targets, streams), the shared head
    call's result once made, and the encoder states of the clean views when a term needs them."""

    sample: dict
    pad: int
    masked: torch.Tensor  # [B, T] bool
    hidden: torch.Tensor  # [N, d] LM-head input of the masked rows
    row_stream: torch.Tensor  # [N]
    is_mono_row: torch.Tensor  # [N] bool
    scale: float  # fairseq divides by the summed sample size: each term's mean is times this
    head: Optional[PredictionLoss] = None
    # Views: encoder states per layer ([P, T, C] each) of the clean source and target sentences.
    view_src_states: List[torch.Tensor] = field(default_factory=list)
    view_tgt_states: List[torch.Tensor] = field(default_factory=list)
    model: Optional[object] = None  # the model being trained (terms with a key encoder read it)

    @cached_property  # read by the head call and by several terms: gathered once
    def ml_target(self):
        return self.sample["target"][self.masked]

    @cached_property
    def xl_target(self):
        return self.sample["xl_target"][self.masked]

    @cached_property
    def xl_weight(self):
        return self.sample["xl_weight"][self.masked].float()

    @property
    def views(self):
        return self.sample.get("views")

    def view_layer(self, layer: int):
        """``(src [P, Tx, C], tgt [P, Ty, C])`` encoder states of the views at ``layer``
        (-1 = last, 0 = embeddings, k = layer k)."""
        return self.view_src_states[layer], self.view_tgt_states[layer]


def encode(model, sample, pad: int, is_mono_stream, with_views: bool) -> EncodedBatch:
    """Run the encoder once: the masked batch, and with ``with_views`` both sides' clean sentences
    in the same padded batch (one forward, so DDP sees each parameter used once)."""
    target = sample["target"]
    masked = target.ne(pad)
    net_input = sample["net_input"]
    views = sample.get("views") if with_views else None
    src_states, tgt_states = [], []
    if views is None:
        hidden, _, _ = masked_lm_head_input(model, net_input, masked)
    else:
        src_tokens = net_input["src_tokens"]
        x_tok, y_tok = views["src_tokens"], views["tgt_tokens"]
        width = max(src_tokens.shape[1], x_tok.shape[1], y_tok.shape[1])
        rows = [t for block in (src_tokens, x_tok, y_tok) for t in block]
        combined = data_utils.collate_tokens(rows, pad, pad_to_length=width)
        features, extra = model(combined, features_only=True, return_all_hiddens=True)
        b, p = src_tokens.shape[0], x_tok.shape[0]
        hidden = lm_head_hidden(model, features[:b, : src_tokens.shape[1]][masked])
        inner = extra.get("inner_states") if isinstance(extra, dict) else None
        layers = [s.transpose(0, 1) for s in inner] if inner else [features]
        layers[-1] = features  # the last layer as the model returns it
        src_states = [s[b : b + p, : x_tok.shape[1]] for s in layers]
        tgt_states = [s[b + p : b + 2 * p, : y_tok.shape[1]] for s in layers]
    row_stream = sample["stream"].to(target.device).unsqueeze(1).expand_as(target)[masked]
    is_mono_row = torch.tensor(list(is_mono_stream), dtype=torch.bool, device=target.device)[row_stream]
    return EncodedBatch(
        sample=sample,
        pad=pad,
        masked=masked,
        hidden=hidden,
        row_stream=row_stream,
        is_mono_row=is_mono_row,
        scale=float(max(int(masked.sum()), 1)),
        view_src_states=src_states,
        view_tgt_states=tgt_states,
    )
