"""The ``weam`` criterion: WEAM / TLM / MLM prediction, plus translation-pair contrastive learning.

``L = mean ml + lambda * mean xl + mono_weight * mean mlm + contrastive_weight * mean ctr``

each term the mean over its own targets: masked tokens of the bitext streams (ml), masked
aligned words (xl: a word's exchange targets carry weight 1 in total), masked tokens of the
monolingual streams (mlm), translation pairs (ctr). fairseq divides the summed gradient of an
update by the summed sample size; the sample size here is the batch's masked-token count ``M``
and each batch returns ``M * L_batch``, so over several batches (``--update-freq``, workers) the
update follows the masked-token-weighted average of the per-batch ``L``. The logged ``loss`` is
``L`` of the logged terms (global means over the logging interval), exactly their weighted sum.
The LM head runs on masked rows only, one projection shared by both prediction targets.
"""

import math
from dataclasses import dataclass, field

import torch
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.data import data_utils

from .contrastive_loss import POOLINGS, duplicate_pairs, info_nce, pool
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
    """Logs, in bits like fairseq's masked_lm: ``loss`` (= ml_loss + lambda * xl_loss +
    mono_weight * mlm_loss + contrastive_weight * ctr_loss); ``ml_loss``/``ml_acc`` (bitext masked
    prediction), ``xl_loss``/``xl_acc`` (word exchange, per masked aligned word),
    ``mlm_loss``/``mlm_acc`` (monolingual streams), ``ctr_loss``/``ctr_acc`` (contrastive,
    accuracy of in-batch retrieval), each also per stream (``ml_loss_en-fr``...), and
    ``xl_share`` (masked words with an exchange target per 100 masked bitext tokens).
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
        scale = max(sample_size, 1)  # fairseq divides by the summed sample size afterwards
        row_stream = sample["stream"].to(target.device).unsqueeze(1).expand_as(target)[masked]
        ml_target = target[masked]
        xl_target = sample["xl_target"][masked]
        xl_weight = sample["xl_weight"][masked].to(hidden.dtype if hidden.is_floating_point() else torch.float32)
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
        log.update({f"{k}_wloss": zero for k in KINDS})

        # One head call for all streams: both targets share the projection, and the chunked path
        # holds one [V, d] gradient buffer per call. Each row's weight makes every term the mean
        # over its own targets (times the sample size, which fairseq divides by).
        is_mono_row = torch.tensor(self.is_mono, device=target.device, dtype=torch.bool)[row_stream]
        n_mono = int(is_mono_row.sum())
        n_pair = sample_size - n_mono
        xl_total = float(xl_weight.sum())
        coef = torch.tensor(
            [scale / max(n_pair, 1), self.mono_weight * scale / max(n_mono, 1)], dtype=torch.float64, device=target.device
        )
        out = masked_prediction_loss(
            hidden, weight, bias, ml_target, xl_target, pad,
            chunk_size=self.vocab_chunk_size or None,
            xl_lambda=self.xl_lambda * n_pair / xl_total if xl_total > 0 else 0.0,
            row_weight=coef[is_mono_row.long()],
            xl_weight=xl_weight,
        )
        loss = loss + out.loss  # on the chunked path the only differentiable output

        # Per-stream sums for the logs, from the per-row values the loss already computed.
        ml_ok = out.predicted.eq(ml_target).float()
        xl_cols = xl_target if xl_target.dim() == 2 else xl_target.unsqueeze(1)
        xl_ok = (xl_weight.float() * out.predicted.unsqueeze(1).eq(xl_cols)).sum(1)
        xl_w_rows = xl_weight.float().sum(1)
        for s in torch.unique(row_stream).tolist():
            rows = row_stream == s
            name = self.stream_names[s]
            kind = "mlm" if self.is_mono[s] else "ml"
            log[f"{kind}_loss:{name}"] = out.ml_nll_rows[rows].sum().float()
            log[f"{kind}_correct:{name}"] = ml_ok[rows].sum()
            log[f"{kind}_count:{name}"] = int(rows.sum())
            log[f"xl_loss:{name}"] = out.xl_nll_rows[rows].sum().float()  # 0 on rows without partner
            log[f"xl_correct:{name}"] = xl_ok[rows].sum()
            log[f"xl_count:{name}"] = xl_w_rows[rows].sum()
        log["ml_wloss"] = out.ml_nll_rows[~is_mono_row].sum().float()
        log["mlm_wloss"] = self.mono_weight * out.ml_nll_rows[is_mono_row].sum().float()
        log["xl_wloss"] = self.xl_lambda * out.xl_nll_rows.sum().float()

        if pooled is not None:
            x, y, pair_stream, duplicates = pooled
            ctr = info_nce(x, y, self.contrastive_temperature, exclude=duplicates)
            loss = loss + self.contrastive_weight * ctr.loss * (scale / x.shape[0])
            correct = (ctr.x2y_correct.float() + ctr.y2x_correct.float()) / 2
            for s in torch.unique(pair_stream).tolist():
                rows = pair_stream == s
                name = self.stream_names[s]
                log[f"ctr_loss:{name}"] = ctr.loss_rows[rows].sum().detach()
                log[f"ctr_correct:{name}"] = correct[rows].sum().detach()
                log[f"ctr_count:{name}"] = int(rows.sum())
            log["ctr_wloss"] = self.contrastive_weight * ctr.loss_rows.sum().detach().float()

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
        duplicates = duplicate_pairs(views["src_key"], views["tgt_key"]).to(xv.device)
        return hidden, (xv, yv, views["stream"].to(xv.device), duplicates)

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
        for kind in KINDS:
            _log_kind(kind, "", by_kind)
            count = by_kind.get(f"{kind}_count", 0)
            if count > 0:  # the weighted term, hidden ("_"): loss is derived from these
                metrics.log_scalar(f"_{kind}_wloss", totals.get(f"{kind}_wloss", 0.0) / count / math.log(2), count, round=3)
            if len(streams) > 1:
                for name in sorted(streams):
                    _log_kind(kind, f"_{name}", {k.split(":")[0]: v for k, v in totals.items() if k.endswith(":" + name)})
        # The documented loss over the logging interval: the sum of the weighted terms' means.
        metrics.log_derived("loss", _documented_loss)
        if by_kind.get("ml_count", 0) > 0:  # masked aligned words per 100 masked bitext tokens
            metrics.log_scalar("xl_share", 100.0 * by_kind.get("xl_count", 0) / by_kind["ml_count"], by_kind["ml_count"], round=1)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def _documented_loss(meters) -> float:
    return round(sum(meters[f"_{k}_wloss"].avg for k in KINDS if f"_{k}_wloss" in meters), 3)


def _log_kind(kind, suffix, sums):
    count = sums.get(f"{kind}_count", 0.0)
    if count <= 0:
        return
    metrics.log_scalar(f"{kind}_loss{suffix}", sums[f"{kind}_loss"] / count / math.log(2), count, round=3)
    metrics.log_scalar(f"{kind}_acc{suffix}", 100.0 * sums[f"{kind}_correct"] / count, count, round=2)
