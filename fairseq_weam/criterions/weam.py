"""The ``weam`` criterion: multilingual + lambda * cross-lingual (word-exchange) prediction."""

import math
from dataclasses import dataclass, field

from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from .prediction_loss import weam_prediction_loss


@dataclass
class WeamCriterionConfig(FairseqDataclass):
    xl_lambda: float = field(
        default=1.0,
        metadata={"help": "weight lambda of the cross-lingual (word-exchange) loss; 0 = plain TLM/MLM"},
    )


@register_criterion("weam", dataclass=WeamCriterionConfig)
class WeamCriterion(FairseqCriterion):
    """``L = (sum of multilingual NLL + lambda * sum of cross-lingual NLL) / masked tokens``.

    The LM head runs on masked positions only (``masked_tokens``), once for both targets.
    Logged in bits like fairseq's masked_lm: ``loss``, ``ml_loss``, ``xl_loss`` (each averaged
    over its own positions) and accuracies ``ml_acc``, ``xl_acc`` in percent.
    """

    def __init__(self, task, xl_lambda=1.0):
        super().__init__(task)
        self.xl_lambda = xl_lambda

    def forward(self, model, sample, reduce=True):
        target = sample["target"]
        masked = target.ne(self.padding_idx)
        logits = model(**sample["net_input"], masked_tokens=masked)[0]
        out = weam_prediction_loss(logits, target[masked], sample["xl_target"][masked], self.padding_idx)
        loss = out.ml_loss + self.xl_lambda * out.xl_loss if self.xl_lambda else out.ml_loss
        sample_size = out.ml_count
        logging_output = {
            "loss": loss.data,
            "ml_loss": out.ml_loss.data,
            "xl_loss": out.xl_loss.data,
            "ml_correct": out.ml_correct.data,
            "xl_correct": out.xl_correct.data,
            "ml_count": out.ml_count,
            "xl_count": out.xl_count,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": sample_size,
        }
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return sum(float(log.get(key, 0)) for log in logging_outputs)

        sample_size = total("sample_size")
        ml_count, xl_count = total("ml_count"), total("xl_count")
        metrics.log_scalar("loss", total("loss") / max(sample_size, 1) / math.log(2), sample_size, round=3)
        metrics.log_scalar("ml_loss", total("ml_loss") / max(ml_count, 1) / math.log(2), ml_count, round=3)
        metrics.log_scalar("xl_loss", total("xl_loss") / max(xl_count, 1) / math.log(2), xl_count, round=3)
        metrics.log_scalar("ml_acc", 100.0 * total("ml_correct") / max(ml_count, 1), ml_count, round=2)
        metrics.log_scalar("xl_acc", 100.0 * total("xl_correct") / max(xl_count, 1), xl_count, round=2)
        metrics.log_scalar("xl_share", 100.0 * xl_count / max(ml_count, 1), ml_count, round=1)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
