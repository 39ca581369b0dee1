"""Fine-tuning a pre-trained checkpoint on English NLI: the real ``fairseq-train --task
sentence_prediction`` with fairseq's RoBERTa GLUE recipe, through the project's runner."""

import logging
import os
from typing import List, Optional, Sequence

import torch

from fairseq_weam.core.checkpoints import load_checkpoint, model_args
from fairseq_weam.core.data_dir import load_dictionary
from fairseq_weam.evaluation.xnli.tsv import LABELS
from fairseq_weam.train_runner import run_train, train_command

logger = logging.getLogger(__name__)

HEAD = "sentence_classification_head"

# Model config keys that decide parameter shapes; fine-tuning must rebuild the same encoder.
SHAPE_KEYS = (
    "encoder_layers",
    "encoder_embed_dim",
    "encoder_ffn_embed_dim",
    "encoder_attention_heads",
    "max_positions",
    "activation_fn",
    "pooler_activation_fn",
)
SHAPE_FLAGS = ("untie_weights_roberta", "encoder_normalize_before", "no_token_positional_embeddings")


def architecture_args(pretrained: str) -> List[str]:
    """fairseq-train flags that rebuild the pre-trained encoder with identical shapes."""
    args = model_args(load_checkpoint(pretrained))
    get = (lambda k: args.get(k)) if hasattr(args, "get") else (lambda k: getattr(args, k, None))
    out = ["--arch", get("arch") or "roberta"]
    for key in SHAPE_KEYS:
        if get(key) is not None:
            out += ["--" + key.replace("_", "-"), str(get(key))]
    out += ["--" + key.replace("_", "-") for key in SHAPE_FLAGS if get(key)]
    return out


def finetune_command(
    pretrained: str,
    data_dir: str,
    save_dir: str,
    max_update: int = 10000,
    lr: float = 1e-5,
    batch_size: int = 32,
    warmup_ratio: float = 0.06,
    extra_args: Sequence[str] = (),
    device_flags: Optional[Sequence[str]] = None,
) -> List[str]:
    """The fairseq-train command of the fairseq RoBERTa GLUE recipe, restoring the pre-trained
    encoder with --finetune-from-model (so a rerun resumes from save_dir's checkpoint_last.pt).
    ``device_flags``: ``--cpu`` / ``--fp16`` / ``--bf16`` as :func:`device.fairseq_train_flags`
    gives them (default: ``--cpu`` when no GPU is visible)."""

    d = load_dictionary(os.path.join(data_dir, "input0"))
    # The plugin (--user-dir) makes checkpoint loading work (safely) on torch >= 2.6.
    cmd = train_command(
        data_dir,
        "--finetune-from-model",
        os.path.abspath(pretrained),
        "--num-classes",
        str(len(LABELS)),
        "--init-token",
        str(d.bos()),
        "--separator-token",
        str(d.eos()),
        "--shorten-method",
        "truncate",
        "--classification-head-name",
        HEAD,
        *architecture_args(pretrained),
        "--optimizer",
        "adam",
        "--adam-betas",
        "(0.9,0.98)",
        "--adam-eps",
        "1e-6",
        "--weight-decay",
        "0.1",
        "--lr",
        str(lr),
        "--lr-scheduler",
        "polynomial_decay",
        "--total-num-update",
        str(max_update),
        "--warmup-updates",
        str(max(1, int(warmup_ratio * max_update))),
        "--max-update",
        str(max_update),
        "--batch-size",
        str(batch_size),
        "--clip-norm",
        "0.0",
        "--best-checkpoint-metric",
        "accuracy",
        "--maximize-best-checkpoint-metric",
        "--no-epoch-checkpoints",
        "--find-unused-parameters",
        "--save-dir",
        save_dir,
        task="sentence_prediction",
        criterion="sentence_prediction",
    )
    if device_flags is None:
        device_flags = [] if torch.cuda.is_available() else ["--cpu"]
    cmd += [f for f in device_flags if f not in extra_args]
    return cmd + list(extra_args)


def finetune(pretrained: str, data_dir: str, save_dir: str, log_path: Optional[str] = None, **kwargs) -> str:
    """Run fairseq-train; return the path of checkpoint_best.pt (best English dev accuracy)."""
    cmd = finetune_command(pretrained, data_dir, save_dir, **kwargs)
    os.makedirs(save_dir, exist_ok=True)
    log_path = log_path or os.path.join(save_dir, "finetune.log")
    logger.info("fine-tuning: %s (log: %s)", " ".join(cmd), log_path)
    # Progress lines (train_inner / valid) stream to the console; the full log goes to log_path.
    return run_train(cmd, log_path, what="fine-tuning").checkpoint("checkpoint_best.pt")
