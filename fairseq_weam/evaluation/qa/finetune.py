"""Fine-tuning a Hugging Face encoder with a span head on SQuAD-format data, and predicting.

A plain training loop (AdamW, linear warm-up then linear decay, gradient clipping, optional
gradient accumulation and mixed precision) rather than transformers' Trainer: it keeps the
dependency surface to the model classes, shows one tqdm bar per epoch with the running loss,
and checkpoints after every epoch into ``SAVE/last`` so an interrupted fine-tune resumes at
the next epoch with the same data order (the order of epoch e is a permutation seeded by
``seed + e``) and optimizer state; only the dropout draws differ from an uninterrupted run.
"""

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from fairseq_weam.core.device import Precision
from fairseq_weam.core.optional import load_transformers
from fairseq_weam.core.outdir import atomic_output_dir
from fairseq_weam.evaluation.qa import features as qa_features
from fairseq_weam.evaluation.qa.data import QADataError, QAExample

logger = logging.getLogger(__name__)


@dataclass
class WindowConfig:
    """How (question, context) pairs become model inputs, and answers come back."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best: int = 20


@dataclass
class FinetuneConfig:
    """Defaults: XTREME's SQuAD recipe (lr 3e-5, batch 32, 3 epochs, 500 warm-up steps, wd 1e-4)."""

    epochs: int = 3
    lr: float = 3e-5
    batch_size: int = 32
    grad_accum: int = 1
    warmup_steps: int = 500
    weight_decay: float = 0.0001
    max_grad_norm: float = 1.0
    seed: int = 1
    max_steps: Optional[int] = None  # stop after this many updates (smoke runs); None: all epochs


def load_model(model_dir: str):
    """A fast tokenizer and a float32 question-answering model from a transformers directory."""
    tf = load_transformers()
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise FileNotFoundError(f"{model_dir}: no config.json (expected a transformers model directory)")
    tokenizer = tf.AutoTokenizer.from_pretrained(model_dir)
    if not getattr(tokenizer, "is_fast", False):
        raise QADataError(
            f"{model_dir}: the tokenizer is not a fast (tokenizers-backed) one; answer spans need "
            "its character offsets (save a tokenizer.json with the model)"
        )
    model = tf.AutoModelForQuestionAnswering.from_pretrained(model_dir).float()
    return tokenizer, model


def has_qa_head(model_dir: str) -> bool:
    with open(os.path.join(model_dir, "config.json")) as f:
        return any(a.endswith("ForQuestionAnswering") for a in json.load(f).get("architectures") or [])


def featurize(
    fn, tokenizer, examples: Sequence[QAExample], window: WindowConfig, desc: str, chunk: int = 1000
) -> Dict[str, list]:
    """``fn`` (train_features / eval_features) over chunks of examples, with a progress bar.

    Token ids are kept as int32 arrays, 4.6x smaller than the tokenizer's Python int lists
    (scripts/benchmark_qa.py: 17.5 vs 80.3 MiB for 20,000 SQuAD-shaped questions).
    """
    out: Dict[str, list] = {}
    for k in tqdm(
        range(0, len(examples), chunk),
        desc=desc,
        unit="chunk",
        dynamic_ncols=True,
        mininterval=2.0,
        disable=len(examples) <= chunk,
    ):
        part = fn(tokenizer, examples[k : k + chunk], window.max_seq_length, window.doc_stride, window.max_query_length)
        for name, rows in part.items():
            if name in ("input_ids", "token_type_ids"):
                rows = [np.asarray(r, dtype=np.int32) for r in rows]
            elif name == "example_index":
                rows = [i + k for i in rows]
            out.setdefault(name, []).extend(rows)
    return out


def _batches(feats: Dict[str, list], order: Sequence[int], batch_size: int, pad_id: int):
    """``(rows, inputs)`` per batch: the model inputs padded to the batch's longest window."""
    for k in range(0, len(order), batch_size):
        rows = order[k : k + batch_size]
        width = max(len(feats["input_ids"][i]) for i in rows)
        inputs = {"attention_mask": torch.zeros((len(rows), width), dtype=torch.long)}
        for name, pad in (("input_ids", pad_id), ("token_type_ids", 0)):
            if name in feats:
                inputs[name] = torch.full((len(rows), width), pad, dtype=torch.long)
        for r, i in enumerate(rows):
            n = len(feats["input_ids"][i])
            inputs["attention_mask"][r, :n] = 1
            for name in ("input_ids", "token_type_ids"):
                if name in feats:
                    inputs[name][r, :n] = torch.as_tensor(feats[name][i])
        yield rows, inputs


def _optimizer(model, cfg: FinetuneConfig):
    # No weight decay on biases and LayerNorm weights (BERT's recipe).
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )


def linear_schedule(step: int, warmup: int, total: int) -> float:
    """LR multiplier: 0 -> 1 over ``warmup`` updates, then 1 -> 0 at ``total``."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def finetune(
    model_dir: str,
    examples: Sequence[QAExample],
    save_dir: str,
    cfg: FinetuneConfig,
    window: WindowConfig,
    precision: Precision,
) -> str:
    """Fine-tune ``model_dir`` on ``examples``; returns ``save_dir/model`` (a transformers directory).

    ``save_dir/last`` holds the state after the latest finished epoch; a call with the same
    ``save_dir`` resumes from it. ``save_dir/train_log.jsonl`` gets one line per epoch.
    """
    torch.manual_seed(cfg.seed)  # dropout
    tokenizer, model = load_model(model_dir)
    qa_features.check_lengths(tokenizer, window.max_seq_length, window.doc_stride, window.max_query_length)
    feats = featurize(qa_features.train_features, tokenizer, examples, window, "windows (train)")
    n = len(feats["input_ids"])
    answerable = sum(s > 0 for s in feats["start_positions"])
    logger.info("fine-tuning on %d questions -> %d windows (%d hold the answer)", len(examples), n, answerable)
    batches_per_epoch = math.ceil(n / cfg.batch_size)
    updates_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
    total = updates_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)

    model.to(precision.device)
    optimizer = _optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_schedule(s, cfg.warmup_steps, total))
    scaler = torch.amp.GradScaler(precision.device.type, enabled=precision.grad_scaling)
    os.makedirs(save_dir, exist_ok=True)
    last = os.path.join(save_dir, "last")
    first_epoch, step = 0, 0
    if os.path.isfile(os.path.join(last, "state.pt")):
        state = torch.load(os.path.join(last, "state.pt"), map_location="cpu", weights_only=True)
        model.load_state_dict(
            load_transformers().AutoModelForQuestionAnswering.from_pretrained(last).float().state_dict()
        )
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        first_epoch, step = state["epoch"] + 1, state["step"]
        logger.info("resuming the fine-tune after epoch %d (%d updates done) from %s", first_epoch, step, last)

    start_t = torch.tensor(feats["start_positions"])
    end_t = torch.tensor(feats["end_positions"])
    for epoch in range(first_epoch, cfg.epochs):
        if step >= total:
            break
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
        t0, loss_sum, loss_count = time.time(), 0.0, 0
        bar = tqdm(
            total=min(updates_per_epoch, total - step),
            desc=f"fine-tune epoch {epoch + 1}/{cfg.epochs}",
            unit="upd",
            dynamic_ncols=True,
            mininterval=2.0,
        )
        for b, (rows, inputs) in enumerate(_batches(feats, order, cfg.batch_size, tokenizer.pad_token_id)):
            inputs.update(start_positions=start_t[rows], end_positions=end_t[rows])
            with precision.autocast():
                out = model(**{k: v.to(precision.device) for k, v in inputs.items()})
            scaler.scale(out.loss / cfg.grad_accum).backward()
            loss_sum += out.loss.item()
            loss_count += 1
            if (b + 1) % cfg.grad_accum and b + 1 < batches_per_epoch:
                continue
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / loss_count:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if step >= total:
                break
        bar.close()
        record = {
            "epoch": epoch + 1,
            "updates": step,
            "loss": loss_sum / max(1, loss_count),
            "seconds": round(time.time() - t0, 1),
            "precision": precision.name,
            "device": str(precision.device),
        }
        print(
            f"fine-tune epoch {epoch + 1}/{cfg.epochs}: loss {record['loss']:.4f}, {step}/{total} updates, "
            f"{record['seconds']:.0f} s",
            flush=True,
        )
        with open(os.path.join(save_dir, "train_log.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        with atomic_output_dir(last, overwrite=True) as tmp:
            model.save_pretrained(tmp)
            torch.save(
                {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                    "step": step,
                },
                os.path.join(tmp, "state.pt"),
            )

    final = os.path.join(save_dir, "model")
    with atomic_output_dir(final, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return final


@torch.no_grad()
def predict(
    tokenizer,
    model,
    examples: Sequence[QAExample],
    window: WindowConfig,
    precision: Precision,
    batch_size: int = 64,
    desc: str = "predict",
) -> Dict[str, str]:
    """``{question id: answer text}`` for every example (windows scored in length-sorted batches)."""
    qa_features.check_lengths(tokenizer, window.max_seq_length, window.doc_stride, window.max_query_length)
    feats = featurize(qa_features.eval_features, tokenizer, examples, window, f"windows ({desc})")
    model.to(precision.device).eval()
    ids = feats["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # less padding per batch
    starts: List[Optional[np.ndarray]] = [None] * len(ids)
    ends: List[Optional[np.ndarray]] = [None] * len(ids)
    with tqdm(total=len(ids), desc=desc, unit="win", dynamic_ncols=True, mininterval=2.0) as bar:
        for rows, inputs in _batches(feats, order, batch_size, tokenizer.pad_token_id):
            with precision.autocast():
                out = model(**{k: v.to(precision.device) for k, v in inputs.items()})
            s, e = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
            for r, i in enumerate(rows):
                starts[i], ends[i] = s[r, : len(ids[i])], e[r, : len(ids[i])]
            bar.update(len(rows))
    return qa_features.best_answers(examples, feats, starts, ends, window.n_best, window.max_answer_length)


def config_dict(*configs) -> dict:
    out = {}
    for c in configs:
        out.update(asdict(c))
    return out
