"""Translation-pair contrastive learning (InfoXLM's XLCo / LaBSE): InfoNCE between the pooled
clean source and target sentences, in-batch negatives, copies of a pair never negatives."""

from dataclasses import dataclass, field

import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from fairseq_weam.objectives.base import ObjectiveTerm, TermResult, empty_result, register_term
from fairseq_weam.objectives.losses.contrastive_loss import duplicate_pairs, info_nce
from fairseq_weam.pooling import POOLINGS, pool


@dataclass
class SentenceContrastiveConfig(FairseqDataclass):
    contrastive_weight: float = field(
        default=0.0,
        metadata={"help": "weight of the translation-pair contrastive loss (InfoNCE, in-batch negatives); 0 = off"},
    )
    contrastive_temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature"})
    contrastive_pooling: ChoiceEnum(POOLINGS) = field(
        default="mean",
        metadata={
            "help": "sentence vector (fairseq_weam/pooling.py): mean or max over the pieces without <s>/</s>, or cls"
        },
    )
    contrastive_layer: int = field(
        default=-1,
        metadata={"help": "encoder layer whose output is pooled: -1 = last, 0 = embeddings, k = layer k"},
    )


def contrastive_result(x, y, stream, src_key, tgt_key, temperature, weight, scale) -> TermResult:
    """InfoNCE of row-aligned ``x`` / ``y`` as a term result (``weight * mean * scale`` loss)."""
    if x.shape[0] == 0:
        return empty_result(x)
    ctr = info_nce(x, y, temperature, exclude=duplicate_pairs(src_key, tgt_key).to(x.device))
    n = x.shape[0]
    return TermResult(
        nll=ctr.loss_rows.detach(),
        correct=((ctr.x2y_correct.float() + ctr.y2x_correct.float()) / 2).detach(),
        count=torch.ones(n, device=x.device),
        stream=stream.to(x.device),
        loss=weight * ctr.loss * (scale / max(n, 1)),
    )


@register_term("ctr", SentenceContrastiveConfig)
class SentenceContrastive(ObjectiveTerm):
    kind = "ctr"
    weight_field = "contrastive_weight"
    needs_views = True

    def compute(self, batch):
        views = batch.views
        xs, ys = batch.view_layer(self.cfg.contrastive_layer)
        pooling = self.cfg.contrastive_pooling
        x = pool(xs, views["src_tokens"], batch.pad, pooling)
        y = pool(ys, views["tgt_tokens"], batch.pad, pooling)
        return contrastive_result(
            x,
            y,
            views["stream"],
            views["src_key"],
            views["tgt_key"],
            self.cfg.contrastive_temperature,
            self.weight,
            batch.scale,
        )
