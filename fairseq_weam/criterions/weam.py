"""The ``weam`` criterion: the sum of the enabled objective terms (``fairseq_weam.objectives``).

``L = mean ml + lambda * mean xl + mono_weight * mean mlm + contrastive_weight * mean ctr
      + word_contrastive_weight * mean wctr``

each term the mean over its own items: masked tokens of the bitext streams (ml), masked aligned
words (xl: a word's exchange targets carry weight 1 in total), masked tokens of the monolingual
streams (mlm), translation pairs (ctr), one-to-one linked word pairs (wctr). fairseq divides the
summed gradient of an update by the summed sample size; the sample size here is the batch's
masked-token count ``M`` and each batch returns ``M * L_batch``, so over several batches
(``--update-freq``, workers) the update follows the masked-token-weighted average of the
per-batch ``L``. The logged ``loss`` is ``L`` of the logged terms (global means over the logging
interval), exactly their weighted sum. The prediction terms share one LM-head call over the
masked rows.
"""

import dataclasses
import logging
import math
from dataclasses import dataclass, field

import torch
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from fairseq_weam.core.checks import check_number
from fairseq_weam.objectives import TERM_CONFIGS, TERMS
from fairseq_weam.objectives.base import empty_result
from fairseq_weam.objectives.batch import encode
from fairseq_weam.objectives.losses.prediction_loss import AUTO_CHUNK, lm_head_parts, masked_prediction_loss

logger = logging.getLogger(__name__)


@dataclass
class PredictionHeadConfig(FairseqDataclass):
    vocab_chunk_size: int = field(
        default=AUTO_CHUNK,
        metadata={
            "help": "masked rows per chunk of the LM-head projection; > 0 never builds the [masked x vocab] "
            "logits, the largest temporary is chunk x vocab (512-2048 on GPU); 0 = one projection (fused apex "
            "xentropy on CUDA when installed); -1 (default) = automatic: 128 on CPU (faster than 0 and about "
            "half the memory at 8k-250k vocabularies), 0 on GPU (not measured there yet)"
        },
    )


# The criterion's flags: every registered term's config fields, and the head's.
WeamCriterionConfig = dataclass(type("WeamCriterionConfig", (*reversed(TERM_CONFIGS), PredictionHeadConfig), {}))


@register_criterion("weam", dataclass=WeamCriterionConfig)
class WeamCriterion(FairseqCriterion):
    """Logs, in bits like fairseq's masked_lm: ``loss`` (= the weighted sum of the terms' logged
    losses) and, per enabled term KIND (``ml``, ``xl``, ``mlm``, ``ctr``, ``wctr``),
    ``KIND_loss`` / ``KIND_acc`` (``ctr``/``wctr``: accuracy of in-batch retrieval), each also per
    stream (``ml_loss_en-fr``...), and ``xl_share`` (masked words with an exchange target per 100
    masked bitext tokens).
    """

    def __init__(self, cfg: WeamCriterionConfig, task):
        super().__init__(task)
        check_flags(cfg)
        self.cfg = cfg
        self.stream_names = list(getattr(task, "stream_names", ["all"]))
        self.is_mono = [kind == "mono" for kind in getattr(task, "stream_kinds", ["pair"] * len(self.stream_names))]
        self.terms = [t for t in (cls(cfg, task) for cls in TERMS.values()) if t.enabled]
        self.needs_views = any(t.needs_views for t in self.terms)
        self.needs_word_pairs = any(t.needs_word_pairs for t in self.terms)
        logger.info("torch CPU threads: %d", torch.get_num_threads())  # train_runner's --threads, read back

    def forward(self, model, sample, reduce=True):
        batch = encode(model, sample, self.padding_idx, self.is_mono, self.needs_views)
        batch.model = model
        sample_size = int(batch.masked.sum())
        loss = batch.hidden.sum() * 0.0  # keeps the graph when a batch has nothing to predict

        head_terms = [t for t in self.terms if t.uses_head]
        if head_terms:
            _, weight, bias = lm_head_parts(model)
            parts = [t.head_weights(batch) for t in head_terms]
            row_weights = [p["row_weight"] for p in parts if p["row_weight"] is not None]
            batch.head = masked_prediction_loss(
                batch.hidden,
                weight,
                bias,
                batch.ml_target,
                batch.xl_target,
                self.padding_idx,
                chunk_size=self.cfg.vocab_chunk_size,
                xl_lambda=sum(p["xl_coef"] for p in parts),
                row_weight=sum(row_weights) if row_weights else None,
                xl_weight=batch.xl_weight,
            )
            loss = loss + batch.head.loss  # on the chunked path the only differentiable output

        log = self._empty_log(batch.hidden)
        for term in self.terms:
            if term.needs_views and batch.views is None and not getattr(term, "collective", False):
                result = empty_result(batch.hidden)
            else:
                result = term.compute(batch)
            if result.loss is not None:
                loss = loss + result.loss
            self._log_term(log, term, result)

        log.update(loss=loss.data, ntokens=sample["ntokens"], nsentences=sample["nsentences"], sample_size=sample_size)
        return loss, sample_size, log

    # Training state of the terms (contrastive queue, momentum key encoder): the task saves it in
    # the checkpoint's extra_state and calls after_optimizer_step after every optimizer step.
    def after_optimizer_step(self, model) -> None:
        for term in self.terms:
            if hasattr(term, "after_optimizer_step"):
                term.after_optimizer_step(model)

    def training_state(self) -> dict:
        states = {t.kind: t.training_state() for t in self.terms if hasattr(t, "training_state")}
        return {k: v for k, v in states.items() if v}

    def load_training_state(self, state: dict) -> None:
        for term in self.terms:
            if term.kind in state and hasattr(term, "load_training_state"):
                term.load_training_state(state[term.kind])

    def _empty_log(self, like):
        # Every key, with one type, on every worker whatever streams its batch holds: fairseq
        # all-reduces tensors and Python numbers in separate buffers laid out by key.
        zero = like.new_zeros((), dtype=torch.float32).detach()
        log = {
            f"{t.kind}_{q}:{name}": zero
            for name in self.stream_names
            for t in self.terms
            for q in ("loss", "correct", "count")
        }
        log.update({f"{t.kind}_wloss": zero for t in self.terms})
        return log

    def _log_term(self, log, term, result):
        for s in torch.unique(result.stream).tolist():
            rows = result.stream == s
            name = self.stream_names[s]
            log[f"{term.kind}_loss:{name}"] = result.nll[rows].sum().float().detach()
            log[f"{term.kind}_correct:{name}"] = result.correct[rows].sum().float().detach()
            log[f"{term.kind}_count:{name}"] = result.count[rows].sum().float().detach()
        log[f"{term.kind}_wloss"] = (term.weight * result.nll.sum()).float().detach()

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        totals = {}
        for log in logging_outputs:
            for key, value in log.items():
                totals[key] = totals.get(key, 0.0) + float(value)

        # Sums over streams, then per stream.
        by_kind = {}
        streams = set()
        for key, value in totals.items():
            base, sep, name = key.partition(":")
            if not sep:
                continue
            streams.add(name)
            by_kind[base] = by_kind.get(base, 0.0) + value
        kinds = [k[: -len("_wloss")] for k in totals if k.endswith("_wloss")]
        for kind in kinds:
            _log_kind(kind, "", by_kind)
            count = by_kind.get(f"{kind}_count", 0)
            if count > 0:  # the weighted term, hidden ("_"): loss is derived from these
                metrics.log_scalar(f"_{kind}_wloss", totals[f"{kind}_wloss"] / count / math.log(2), count, round=3)
            if len(streams) > 1:
                for name in sorted(streams):
                    _log_kind(
                        kind, f"_{name}", {k.split(":")[0]: v for k, v in totals.items() if k.endswith(":" + name)}
                    )
        # The documented loss over the logging interval: the sum of the weighted terms' means.
        metrics.log_derived("loss", _documented_loss)
        if by_kind.get("ml_count", 0) > 0:  # masked aligned words per 100 masked bitext tokens
            metrics.log_scalar(
                "xl_share", 100.0 * by_kind.get("xl_count", 0) / by_kind["ml_count"], by_kind["ml_count"], round=1
            )

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def check_flags(cfg) -> None:
    """Before any update (fairseq builds the criterion before training): every term's weight
    (--xl-lambda, --mono-weight, ...) finite and >= 0, temperatures > 0, the chunk size >= 0; a
    NaN weight would otherwise surface as a FloatingPointError at update 1."""
    for term in TERMS.values():
        if term.weight_field and hasattr(cfg, term.weight_field):
            check_number("--" + term.weight_field.replace("_", "-"), getattr(cfg, term.weight_field), minimum=0)
    for name in (f.name for config in TERM_CONFIGS for f in dataclasses.fields(config)):
        if name.endswith("_temperature") and hasattr(cfg, name):
            check_number("--" + name.replace("_", "-"), getattr(cfg, name), minimum=0, min_open=True)
    if hasattr(cfg, "vocab_chunk_size"):
        check_number("--vocab-chunk-size", cfg.vocab_chunk_size, minimum=AUTO_CHUNK, integer=True)  # -1: automatic


def _documented_loss(meters) -> float:
    return round(sum(m.avg for k, m in meters.items() if k.startswith("_") and k.endswith("_wloss")), 3)


def _log_kind(kind, suffix, sums):
    count = sums.get(f"{kind}_count", 0.0)
    if count <= 0:
        return
    metrics.log_scalar(f"{kind}_loss{suffix}", sums[f"{kind}_loss"] / count / math.log(2), count, round=3)
    metrics.log_scalar(f"{kind}_acc{suffix}", 100.0 * sums[f"{kind}_correct"] / count, count, round=2)
