"""Word exchange (WEAM's cross-lingual prediction): a masked aligned word predicts content
pieces of its partner, with the same LM head; each masked aligned word counts once."""

from dataclasses import dataclass, field

from fairseq.dataclass import FairseqDataclass

from fairseq_weam.objectives.base import ObjectiveTerm, TermResult, register_term


@dataclass
class WordExchangeConfig(FairseqDataclass):
    xl_lambda: float = field(
        default=1.0,
        metadata={"help": "weight lambda of the cross-lingual (word-exchange) loss; 0 = plain TLM/MLM"},
    )


@register_term("xl", WordExchangeConfig)
class WordExchange(ObjectiveTerm):
    kind = "xl"
    weight_field = "xl_lambda"
    uses_head = True

    def head_weights(self, batch):
        total = float(batch.xl_weight.sum())
        return {"row_weight": None, "xl_coef": self.weight * batch.scale / total if total > 0 else 0.0}

    def compute(self, batch):
        out = batch.head
        count = batch.xl_weight.sum(1)
        rows = count > 0
        return TermResult(
            nll=out.xl_nll_rows[rows],
            correct=out.xl_correct_rows[rows],
            count=count[rows],
            stream=batch.row_stream[rows],
        )
