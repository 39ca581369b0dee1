"""Masked-token prediction: each masked token predicts itself (``ml`` on the bitext streams,
``mlm`` on the monolingual streams). Both ride on the shared LM-head call."""

from dataclasses import dataclass, field

import torch
from fairseq.dataclass import FairseqDataclass

from fairseq_weam.objectives.base import ObjectiveTerm, TermResult, register_term


class _OwnTokenPrediction(ObjectiveTerm):
    uses_head = True
    mono = False  # which rows: the bitext streams' or the monolingual streams'

    def rows(self, batch):
        return batch.is_mono_row if self.mono else ~batch.is_mono_row

    def head_weights(self, batch):
        rows = self.rows(batch)
        coef = self.weight * batch.scale / max(int(rows.sum()), 1)
        return {"row_weight": rows.to(torch.float64) * coef, "xl_coef": 0.0}

    def compute(self, batch):
        rows = self.rows(batch)
        out = batch.head
        return TermResult(
            nll=out.ml_nll_rows[rows],
            correct=out.ml_correct_rows[rows].float(),
            count=torch.ones(int(rows.sum()), device=rows.device),
            stream=batch.row_stream[rows],
        )


@register_term("ml")
class MultilingualPrediction(_OwnTokenPrediction):
    """``ml``: masked tokens of the language pairs (TLM / WEAM's multilingual prediction)."""

    kind = "ml"


@dataclass
class MonolingualPredictionConfig(FairseqDataclass):
    mono_weight: float = field(
        default=1.0, metadata={"help": "weight of the masked-LM loss on monolingual streams (--mono-langs)"}
    )


@register_term("mlm", MonolingualPredictionConfig)
class MonolingualPrediction(_OwnTokenPrediction):
    """``mlm``: masked tokens of the monolingual streams (``--mono-langs``)."""

    kind = "mlm"
    weight_field = "mono_weight"
    mono = True
