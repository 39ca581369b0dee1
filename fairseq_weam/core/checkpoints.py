"""Loading a fairseq checkpoint and rebuilding its RoBERTa encoder without its task.

The checkpoints are fairseq RoBERTa encoders over sentencepiece pieces mapped through the data
dir's ``dict.txt`` (+ ``<mask>``, added by the weam and sentence_prediction tasks). The model is
rebuilt from the checkpoint's own config and that dictionary instead of going through the task,
so that a checkpoint can be evaluated or exported without its training data files being present.
Loading goes through fairseq's loader, which :mod:`fairseq_weam.core.checkpoint_safety` makes
safe (allow-listed unpickler).
"""

import os
from types import SimpleNamespace
from typing import Optional

from fairseq.data import Dictionary

from fairseq_weam.core.checkpoint_safety import CheckpointError
from fairseq_weam.core.errors import WeamError


class EmbeddingError(WeamError, ValueError):
    """Bad checkpoint / data dir / layer / pooling choice; the message says which."""


def _cfg_get(cfg, key, default=None):
    if cfg is None:
        return default
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def load_checkpoint(path: str, arg_overrides=None):
    """The checkpoint's state dict (loaded through fairseq's safe, allow-listed loader), its config
    updated with ``arg_overrides`` as fairseq's loaders do."""
    from fairseq import checkpoint_utils

    if not os.path.exists(path):
        raise EmbeddingError(f"checkpoint not found: {path}")
    return checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides)


def model_args(state):
    """The model config of a checkpoint as a Namespace-like object (cfg.model or old args)."""
    cfg = state.get("cfg")
    model_cfg = _cfg_get(cfg, "model") if cfg is not None else None
    if model_cfg is None:
        model_cfg = state.get("args")
    if model_cfg is None:
        raise EmbeddingError("checkpoint has neither cfg.model nor args")
    return model_cfg


def checkpoint_data_dir(state) -> Optional[str]:
    cfg = state.get("cfg")
    data = _cfg_get(_cfg_get(cfg, "task"), "data")
    if data is None and state.get("args") is not None:
        data = getattr(state["args"], "data", None)
    return data.split(os.pathsep)[0] if data else None


EMBEDDINGS = "encoder.sentence_encoder.embed_tokens.weight"


def check_vocabulary(state, n_types: int, checkpoint: str, dict_path: str) -> None:
    """The checkpoint's embedding table has one row per type of ``dict_path`` (``n_types``, with
    the ``<mask>`` the task appends), else a clear error instead of torch's size mismatch."""
    rows = state.get("model", {}).get(EMBEDDINGS)
    if rows is not None and rows.shape[0] != n_types:
        raise CheckpointError(
            f"{checkpoint}: the checkpoint's vocabulary ({rows.shape[0]} types) does not match {dict_path} ({n_types} "
            "types): "
            "give the data directory the checkpoint was trained on"
        )


def build_model(state, dictionary: Dictionary, checkpoint: str, dict_path: str = "the dictionary"):
    """The RoBERTa encoder (+ LM head) of ``checkpoint`` (its loaded ``state``) over
    ``dictionary`` (read from ``dict_path``), weights loaded; and its args."""
    from fairseq.models.roberta import RobertaModel
    from omegaconf import OmegaConf

    args = model_args(state)
    if OmegaConf.is_config(args):
        args = SimpleNamespace(**OmegaConf.to_container(args, resolve=True))
    else:
        args = SimpleNamespace(**vars(args))
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    model = RobertaModel.build_model(args, task)
    weights = state["model"]
    check_vocabulary(state, len(dictionary), checkpoint, dict_path)
    # Fine-tuned checkpoints carry classification heads the bare encoder does not need.
    weights = {k: v for k, v in weights.items() if not k.startswith("classification_heads.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise EmbeddingError(
            f"{checkpoint}: the weights do not match the checkpoint's own config "
            f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}); is it the right data dir?"
        )
    return model.eval(), args
