"""Translation-pair contrastive learning (InfoXLM's XLCo / LaBSE): InfoNCE between the pooled
clean source and target sentences, copies of a pair never negatives.

Negatives are the batch's other pairs, and optionally (the anchors' strength):

* ``--contrastive-queue-size K``: a FIFO queue of the last K pairs' keys (both sides), extra
  negatives of every row (a queued copy of a row's pair excluded by content key);
* ``--contrastive-momentum m``: keys from a momentum copy of the encoder (``momentum.py``),
  ``theta_k = m * theta_k + (1 - m) * theta_q`` after every optimizer step, no gradient; without
  the flag the keys are the trained encoder's own vectors (in-batch keys with gradient, queued
  ones detached);
* ``--contrastive-gather``: under data-parallel training every worker's pairs join each
  worker's in-batch negatives (``gather.py``), so N workers x B pairs give NB - 1 negatives and
  the same loss and gradient as one process holding the combined batch.

With several workers the queue always receives every worker's keys (MoCo's enqueue, in rank
order), so it is the same on every worker and rank 0's checkpoint restores it everywhere. The
queue and the key encoder are training state: saved in the checkpoint's ``extra_state`` and
restored on resume, never part of the model (not restored with ``--reset-dataloader``, which
skips fairseq's task checkpoint hook). Keys enter the queue at every training forward (so with
``--update-freq`` a micro-batch sees the previous one's keys), also those of fairseq's dummy
batch (a repeat of an earlier batch, on a worker left without one at an epoch's end). Validation
scores in-batch negatives (gathered with ``--contrastive-gather``) of the trained encoder only,
so its ``ctr_loss`` compares across these settings.
"""

import logging
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from fairseq_weam.core.errors import WeamError
from fairseq_weam.objectives.base import ObjectiveTerm, TermResult, empty_result, register_term
from fairseq_weam.objectives.gather import data_parallel_world_size, gather_rows
from fairseq_weam.objectives.losses.contrastive_loss import (
    duplicate_pairs,
    info_nce,
    keyed_info_nce,
    same_sentence,
)
from fairseq_weam.objectives.momentum import MomentumEncoder
from fairseq_weam.objectives.negative_queue import NegativeQueue
from fairseq_weam.pooling import POOLINGS, pool

logger = logging.getLogger(__name__)


class ContrastiveConfigError(WeamError, ValueError):
    """A contrastive flag out of range or without the contrastive term; the message names it."""


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
    contrastive_queue_size: int = field(
        default=0,
        metadata={
            "help": "FIFO queue of the last K pairs' keys (both sides) used as extra negatives (InfoXLM's "
            "XLCo); a queued copy of a current pair is never its negative; saved in checkpoints; use it with "
            "--contrastive-momentum (without, training collapsed in docs/evaluation.md); 0 = none"
        },
    )
    contrastive_momentum: Optional[float] = field(
        default=None,
        metadata={
            "help": "keys from a momentum copy of the encoder, theta_k = m * theta_k + (1 - m) * theta_q "
            "after each optimizer step, no gradient, eval mode, float32; m in [0, 1) (0 = the trained "
            "weights without gradient); unset = keys from the trained encoder itself"
        },
    )
    contrastive_gather: bool = field(
        default=False,
        metadata={
            "help": "under data-parallel training, every worker's pairs join each worker's in-batch "
            "negatives (all-gather, gradient through the local rows): N workers x B pairs give NB-1"
        },
    )


def validate_config(cfg) -> None:
    """One line naming the flag for a value fairseq-train must not start with."""
    weight = float(getattr(cfg, "contrastive_weight", 0.0))
    queue = int(getattr(cfg, "contrastive_queue_size", 0))
    momentum = getattr(cfg, "contrastive_momentum", None)
    if queue < 0:
        raise ContrastiveConfigError(f"--contrastive-queue-size must be >= 0, got {queue}")
    if momentum is not None and not 0.0 <= float(momentum) < 1.0:
        raise ContrastiveConfigError(f"--contrastive-momentum must be in [0, 1), got {momentum}")
    if weight == 0:
        for flag, on in (
            ("--contrastive-queue-size", queue > 0),
            ("--contrastive-momentum", momentum is not None),
            ("--contrastive-gather", bool(getattr(cfg, "contrastive_gather", False))),
        ):
            if on:
                raise ContrastiveConfigError(f"{flag} needs the contrastive term: set --contrastive-weight > 0")


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

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        validate_config(cfg)
        self.queue = NegativeQueue(int(cfg.contrastive_queue_size)) if cfg.contrastive_queue_size > 0 else None
        momentum = getattr(cfg, "contrastive_momentum", None)
        self.key_encoder = MomentumEncoder(float(momentum)) if momentum is not None else None
        self.gather = bool(getattr(cfg, "contrastive_gather", False))
        if self.enabled and self.queue is not None and self.key_encoder is None:
            logger.warning(
                "--contrastive-queue-size without --contrastive-momentum: queued keys come from the trained "
                "encoder itself; this collapsed training in docs/evaluation.md (as in MoCo with m = 0)"
            )

    @property
    def collective(self) -> bool:
        """Calls collectives under data-parallel training: computed on every batch, with or
        without pairs, so that the workers' all-gathers stay in step."""
        return data_parallel_world_size() > 1 and (self.gather or self.queue is not None)

    # --- training state (the task saves it in the checkpoint's extra_state) -------------------

    def after_optimizer_step(self, model) -> None:
        if self.key_encoder is not None:
            self.key_encoder.step(model)

    def training_state(self):
        state = {}
        if self.queue is not None:
            state["queue"] = self.queue.state_dict()
        if self.key_encoder is not None and self.key_encoder.state_dict() is not None:
            state["key_encoder"] = self.key_encoder.state_dict()
        return state

    def load_training_state(self, state) -> None:
        if self.queue is not None and state.get("queue") is not None:
            self.queue.load_state_dict(state["queue"])
        if self.key_encoder is not None and state.get("key_encoder") is not None:
            self.key_encoder.load_state_dict(state["key_encoder"])

    # --- the loss ---------------------------------------------------------------------------

    def compute(self, batch):
        cfg = self.cfg
        model = getattr(batch, "model", None)
        training = bool(model is not None and model.training)
        views = batch.views
        dim = batch.hidden.shape[-1]
        if views is None:  # no pair in this batch (a collective term still joins the gathers)
            x = y = batch.hidden.new_zeros(0, dim)
            src_key = tgt_key = stream = torch.zeros(0, dtype=torch.long, device=x.device)
        else:
            xs, ys = batch.view_layer(cfg.contrastive_layer)
            x = pool(xs, views["src_tokens"], batch.pad, cfg.contrastive_pooling)
            y = pool(ys, views["tgt_tokens"], batch.pad, cfg.contrastive_pooling)
            src_key, tgt_key = views["src_key"].to(x.device), views["tgt_key"].to(x.device)
            stream = views["stream"].to(x.device)
        distributed = data_parallel_world_size() > 1
        if self.queue is None and self.key_encoder is None and not (self.gather and distributed):
            return contrastive_result(
                x, y, stream, src_key, tgt_key, cfg.contrastive_temperature, self.weight, batch.scale
            )

        # Keys: the momentum encoder's (training only), else the queries themselves.
        momentum_keys = training and self.key_encoder is not None
        if momentum_keys:
            x_k, y_k = self._momentum_keys(model, views, batch.pad, x)
        else:
            x_k, y_k = x, y
        n = x.shape[0]
        # Rows and keys of every worker (--contrastive-gather), else this worker's.
        if self.gather and distributed:
            parts = [x, y, x_k, y_k] if momentum_keys else [x, y]
            g = gather_rows(parts + [src_key, tgt_key], torch.tensor([batch.scale], dtype=torch.float64))
            if momentum_keys:
                all_x, all_y, all_xk, all_yk, all_src, all_tgt = g.tensors
            else:
                all_x, all_y, all_src, all_tgt = g.tensors
                all_xk, all_yk = all_x, all_y
            start, stop = g.start, g.stop
            total_scale, total_rows = float(g.extras.sum()), all_x.shape[0]
        else:
            all_x, all_y, all_xk, all_yk, all_src, all_tgt = x, y, x_k, y_k, src_key, tgt_key
            start, stop, total_scale, total_rows = 0, n, batch.scale, n
        queued = self.queue.entries() if (training and self.queue is not None) else None

        if total_rows > 0:
            # Keys with gradient (no momentum): every worker scores every row, each row's gradient
            # reaching its owner; keys without: the local rows carry all the gradient there is.
            rows = slice(start, stop) if momentum_keys else slice(0, total_rows)
            positive = torch.arange(total_rows, device=x.device)[rows]
            exclude = duplicate_pairs(all_src, all_tgt)[rows]
            q_x = q_y = q_exclude = None
            if queued is not None:
                q_x, q_y, q_src, q_tgt = queued
                q_exclude = same_sentence(all_src[rows], all_tgt[rows], q_src, q_tgt)
            ctr = keyed_info_nce(
                all_x[rows],
                all_y[rows],
                all_xk,
                all_yk,
                positive,
                cfg.contrastive_temperature,
                exclude=exclude,
                queue_x=q_x,
                queue_y=q_y,
                queue_exclude=q_exclude,
            )
            local = slice(start - (rows.start or 0), stop - (rows.start or 0))
            loss = self.weight * ctr.loss * (total_scale / total_rows) + x.sum() * 0.0
            result = TermResult(
                nll=ctr.loss_rows[local].detach(),
                correct=((ctr.x2y_correct[local].float() + ctr.y2x_correct[local].float()) / 2).detach(),
                count=torch.ones(n, device=x.device),
                stream=stream,
                loss=loss,
            )
        else:
            result = empty_result(x)

        if training and self.queue is not None:
            self._enqueue(x_k, y_k, src_key, tgt_key, all_xk, all_yk, all_src, all_tgt, distributed)
        return result

    def _momentum_keys(self, model, views, pad, like):
        if views is None:
            empty = like.new_zeros(0, like.shape[1]).float()
            self.key_encoder.ensure(model)
            return empty, empty
        x_tok, y_tok = views["src_tokens"], views["tgt_tokens"]
        width = max(x_tok.shape[1], y_tok.shape[1])
        tokens = torch.full((x_tok.shape[0] + y_tok.shape[0], width), pad, dtype=x_tok.dtype, device=x_tok.device)
        tokens[: x_tok.shape[0], : x_tok.shape[1]] = x_tok
        tokens[x_tok.shape[0] :, : y_tok.shape[1]] = y_tok
        states = self.key_encoder.encode(model, tokens, self.cfg.contrastive_layer)
        p = x_tok.shape[0]
        x_k = pool(states[:p, : x_tok.shape[1]], x_tok, pad, self.cfg.contrastive_pooling)
        y_k = pool(states[p:, : y_tok.shape[1]], y_tok, pad, self.cfg.contrastive_pooling)
        return x_k.float(), y_k.float()

    def _enqueue(self, x_k, y_k, src_key, tgt_key, all_xk, all_yk, all_src, all_tgt, distributed):
        """Every worker's keys (the gathered ones when --contrastive-gather already has them)."""
        if distributed and not self.gather:
            g = gather_rows([x_k.detach(), y_k.detach(), src_key, tgt_key], torch.zeros(0, dtype=torch.float64))
            all_xk, all_yk, all_src, all_tgt = g.tensors
        normalize = torch.nn.functional.normalize
        self.queue.push(
            normalize(all_xk.detach().float(), dim=-1),
            normalize(all_yk.detach().float(), dim=-1),
            all_src,
            all_tgt,
        )
