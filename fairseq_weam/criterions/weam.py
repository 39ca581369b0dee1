"""The ``weam`` criterion: WEAM / TLM / MLM prediction, plus translation-pair contrastive learning.

``loss = (sum_pair-rows ml_nll + lambda * sum xl_nll + mono_weight * sum_mono-rows mlm_nll) / M
         + contrastive_weight * mean_pairs InfoNCE``

with ``M`` the number of masked tokens (fairseq's sample size, so distributed training and
``--update-freq`` normalize the same way). The LM head runs on masked rows only, one projection
shared by the multilingual and cross-lingual targets.
"""

import math
from dataclasses import dataclass, field

import torch
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.data import data_utils

from .contrastive_loss import POOLINGS, info_nce, pool
from .prediction_loss import lm_head_hidden, lm_head_parts, masked_lm_head_input, masked_prediction_loss

# Logged groups: ml (masked prediction on the bitext streams), xl (cross-lingual, word-exchange),
# mlm (monolingual streams), ctr (contrastive). Per stream as KIND_loss_STREAM, KIND_acc_STREAM.
KINDS = ("ml", "xl", "mlm", "ctr")


@dataclass
class WeamCriterionConfig(FairseqDataclass):
    xl_lambda: float = field(
        default=1.0,
        metadata={"help": "weight lambda of the cross-lingual (word-exchange) loss; 0 = plain TLM/MLM"},
    )
    mono_weight: float = field(
        default=1.0, metadata={"help": "weight of the masked-LM loss on monolingual streams (--mono-langs)"}
    )
    contrastive_weight: float = field(
        default=0.0,
        metadata={"help": "weight of the translation-pair contrastive loss (InfoNCE, in-batch negatives); 0 = off"},
    )
    contrastive_temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature"})
    contrastive_pooling: ChoiceEnum(POOLINGS) = field(
        default="mean", metadata={"help": "sentence vector: first token (cls) or mean over tokens"}
    )
    contrastive_layer: int = field(
        default=-1,
        metadata={"help": "encoder layer whose output is pooled: -1 = last, 0 = embeddings, k = layer k"},
    )
    vocab_chunk_size: int = field(
        default=0,
        metadata={
            "help": "masked rows per chunk of the LM-head projection; > 0 never builds the [masked x vocab] "
            "logits, the largest temporary is chunk x vocab (128 is free on CPU, 512-2048 on GPU); "
            "0 = one projection (fused apex xentropy on CUDA when installed)"
        },
    )


@register_criterion("weam", dataclass=WeamCriterionConfig)
class WeamCriterion(FairseqCriterion):
    """Logs, in bits like fairseq's masked_lm: ``loss``; ``ml_loss``/``ml_acc`` (bitext masked
    prediction), ``xl_loss``/``xl_acc`` (word exchange), ``mlm_loss``/``mlm_acc`` (monolingual
    streams), ``ctr_loss``/``ctr_acc`` (contrastive, accuracy of in-batch retrieval), each also
    per stream (``ml_loss_en-fr``...), and ``xl_share`` (percent of masked tokens with a partner).
    """

    def __init__(
        self,
        task,
        xl_lambda=1.0,
        mono_weight=1.0,
        contrastive_weight=0.0,
        contrastive_temperature=0.05,
        contrastive_pooling="mean",
        contrastive_layer=-1,
        vocab_chunk_size=0,
    ):
        super().__init__(task)
        self.xl_lambda = xl_lambda
        self.mono_weight = mono_weight
        self.contrastive_weight = contrastive_weight
        self.contrastive_temperature = contrastive_temperature
        self.contrastive_pooling = contrastive_pooling
        self.contrastive_layer = contrastive_layer
        self.vocab_chunk_size = vocab_chunk_size
        self.stream_names = list(getattr(task, "stream_names", ["all"]))
        n_pairs = len(getattr(task, "lang_pairs", self.stream_names))
        self.is_mono = [i >= n_pairs for i in range(len(self.stream_names))]

    def forward(self, model, sample, reduce=True):
        pad = self.padding_idx
        target = sample["target"]
        masked = target.ne(pad)
        views = sample.get("views") if self.contrastive_weight > 0 else None
        hidden, pooled = self._encode(model, sample["net_input"], masked, views)
        _, weight, bias = lm_head_parts(model)

        sample_size = int(masked.sum())
        row_stream = sample["stream"].to(target.device).unsqueeze(1).expand_as(target)[masked]
        ml_target, xl_target = target[masked], sample["xl_target"][masked]
        loss = hidden.sum() * 0.0  # keeps the graph when a batch has nothing to predict
        # Every key, with one type, on every worker whatever streams its batch holds: fairseq
        # all-reduces tensors and Python numbers in separate buffers laid out by key.
        zero = hidden.new_zeros((), dtype=torch.float32).detach()
        log = {
            f"{k}_{q}:{name}": 0 if q == "count" else zero
            for name in self.stream_names
            for k in KINDS
            for q in ("loss", "correct", "count")
        }

        # One head call for all streams: both targets share the projection, and the chunked path
        # holds one [V, d] gradient buffer per call. Monolingual rows are weighed per row.
        row_weight = None
        if self.mono_weight != 1.0 and any(self.is_mono):
            is_mono_row = torch.tensor(self.is_mono, device=target.device)[row_stream]
            weights = torch.tensor([1.0, self.mono_weight], dtype=torch.float64, device=target.device)
            row_weight = weights[is_mono_row.long()]
        out = masked_prediction_loss(
            hidden, weight, bias, ml_target, xl_target, pad,
            chunk_size=self.vocab_chunk_size or None, xl_lambda=self.xl_lambda, row_weight=row_weight,
        )
        loss = loss + out.loss  # on the chunked path the only differentiable output

        # Per-stream sums for the logs, from the per-row values the loss already computed.
        has_xl = xl_target.ne(pad)
        ml_ok = out.predicted.eq(ml_target).float()
        xl_ok = (out.predicted.eq(xl_target) & has_xl).float()
        for s in torch.unique(row_stream).tolist():
            rows = row_stream == s
            name = self.stream_names[s]
            kind = "mlm" if self.is_mono[s] else "ml"
            log[f"{kind}_loss:{name}"] = out.ml_nll_rows[rows].sum().float()
            log[f"{kind}_correct:{name}"] = ml_ok[rows].sum()
            log[f"{kind}_count:{name}"] = int(rows.sum())
            log[f"xl_loss:{name}"] = out.xl_nll_rows[rows].sum().float()  # 0 on rows without partner
            log[f"xl_correct:{name}"] = xl_ok[rows].sum()
            log[f"xl_count:{name}"] = int((rows & has_xl).sum())

        if pooled is not None:
            x, y, pair_stream = pooled
            ctr = info_nce(x, y, self.contrastive_temperature)
            # Scaled so that fairseq's division by the masked-token count leaves weight * mean.
            loss = loss + self.contrastive_weight * ctr.loss * (max(sample_size, 1) / x.shape[0])
            correct = (ctr.x2y_correct.float() + ctr.y2x_correct.float()) / 2
            for s in torch.unique(pair_stream).tolist():
                rows = pair_stream == s
                name = self.stream_names[s]
                log[f"ctr_loss:{name}"] = ctr.loss_rows[rows].sum().detach()
                log[f"ctr_correct:{name}"] = correct[rows].sum().detach()
                log[f"ctr_count:{name}"] = int(rows.sum())

        log.update(
            loss=loss.data,
            ntokens=sample["ntokens"],
            nsentences=sample["nsentences"],
            sample_size=sample_size,
        )
        return loss, sample_size, log

    def _encode(self, model, net_input, masked, views):
        """LM-head input of the masked rows, and pooled sentence vectors of the views if any.

        With views, the masked batch and both sides' clean sentences go through the encoder as
        one padded batch: one forward, so DDP sees each parameter used once.
        """
        if views is None:
            hidden, _, _ = masked_lm_head_input(model, net_input, masked)
            return hidden, None
        pad = self.padding_idx
        src_tokens = net_input["src_tokens"]
        x_tok, y_tok = views["src_tokens"], views["tgt_tokens"]
        width = max(src_tokens.shape[1], x_tok.shape[1], y_tok.shape[1])
        rows = [t for block in (src_tokens, x_tok, y_tok) for t in block]
        combined = data_utils.collate_tokens(rows, pad, pad_to_length=width)
        features, extra = model(combined, features_only=True, return_all_hiddens=self.contrastive_layer != -1)
        inner = extra.get("inner_states") if isinstance(extra, dict) else None
        b = src_tokens.shape[0]
        hidden = lm_head_hidden(model, features[:b, : src_tokens.shape[1]][masked])
        layer = features if self.contrastive_layer == -1 else inner[self.contrastive_layer].transpose(0, 1)
        p = x_tok.shape[0]
        xv = pool(layer[b : b + p, : x_tok.shape[1]], x_tok, pad, self.contrastive_pooling)
        yv = pool(layer[b + p : b + 2 * p, : y_tok.shape[1]], y_tok, pad, self.contrastive_pooling)
        return hidden, (xv, yv, views["stream"].to(xv.device))

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        totals = {}
        for log in logging_outputs:
            for key, value in log.items():
                totals[key] = totals.get(key, 0.0) + float(value)
        sample_size = totals.get("sample_size", 0.0)
        metrics.log_scalar("loss", totals.get("loss", 0.0) / max(sample_size, 1) / math.log(2), sample_size, round=3)

        # Sums over streams, then per stream.
        by_kind = {}
        streams = set()
        for key, value in totals.items():
            base, sep, name = key.partition(":")
            if not sep:
                continue
            streams.add(name)
            by_kind[base] = by_kind.get(base, 0.0) + value
        for kind in KINDS:
            _log_kind(kind, "", by_kind)
            if len(streams) > 1:
                for name in sorted(streams):
                    _log_kind(kind, f"_{name}", {k.split(":")[0]: v for k, v in totals.items() if k.endswith(":" + name)})
        if by_kind.get("ml_count", 0) > 0:
            metrics.log_scalar("xl_share", 100.0 * by_kind.get("xl_count", 0) / by_kind["ml_count"], by_kind["ml_count"], round=1)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def _log_kind(kind, suffix, sums):
    count = sums.get(f"{kind}_count", 0.0)
    if count <= 0:
        return
    metrics.log_scalar(f"{kind}_loss{suffix}", sums[f"{kind}_loss"] / count / math.log(2), count, round=3)
    metrics.log_scalar(f"{kind}_acc{suffix}", 100.0 * sums[f"{kind}_correct"] / count, count, round=2)
