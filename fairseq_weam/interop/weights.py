"""Weight names and model configs: fairseq RoBERTa (``--arch roberta*``) <-> transformers
``XLMRobertaForMaskedLM`` / ``RobertaForMaskedLM``. Pure functions on dicts of tensors.

Both are the same post-LayerNorm BERT encoder; the differences handled here:

* transformers adds a token-type embedding to every token; fairseq has none. Exported models get
  a zero row; on import the row for type 0 (the only one a RoBERTa input uses) is folded into
  every position embedding, which adds the same vector before the same LayerNorm.
* transformers' position table has ``max_positions + pad + 1`` rows, exactly fairseq's learned
  positions (offset by the padding index), so any positions count maps row for row.
* The LM head's projection is tied to the token embeddings in both unless
  ``--untie-weights-roberta`` / ``tie_word_embeddings=False``.
"""

import re
from typing import Dict, Tuple

import torch

from fairseq_weam.interop import InteropError

FS = "encoder.sentence_encoder."
_LAYER = [  # (fairseq suffix, transformers suffix) inside layer i
    ("self_attn.q_proj", "attention.self.query"),
    ("self_attn.k_proj", "attention.self.key"),
    ("self_attn.v_proj", "attention.self.value"),
    ("self_attn.out_proj", "attention.output.dense"),
    ("self_attn_layer_norm", "attention.output.LayerNorm"),
    ("fc1", "intermediate.dense"),
    ("fc2", "output.dense"),
    ("final_layer_norm", "output.LayerNorm"),
]
_FIXED = [
    (FS + "embed_tokens", "roberta.embeddings.word_embeddings"),
    (FS + "embed_positions", "roberta.embeddings.position_embeddings"),
    (FS + "layernorm_embedding", "roberta.embeddings.LayerNorm"),
    ("encoder.lm_head.dense", "lm_head.dense"),
    ("encoder.lm_head.layer_norm", "lm_head.layer_norm"),
]
# fairseq keys that hold no weights of the encoder (bookkeeping, fine-tuning heads).
_IGNORED = re.compile(r"(^|\.)version$|^classification_heads\.|^_float_tensor$|\._float_tensor$")
_FS_LAYER = re.compile(r"^encoder\.sentence_encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_HF_LAYER = re.compile(r"^roberta\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


def _swap(table):
    return [(b, a) for a, b in table]


def _rename(key: str, layer_table, fixed_table, pattern, layer_fmt: str):
    m = pattern.match(key)
    if m:
        i, mid, kind = m.groups()
        for a, b in layer_table:
            if mid == a:
                return layer_fmt.format(i=i, name=b, kind=kind)
        return None
    for a, b in fixed_table:
        if key.startswith(a + "."):
            return b + key[len(a) :]
    return None


def fairseq_to_hf(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """fairseq RoBERTa state dict -> XLMRobertaForMaskedLM state dict (tied decoder included)."""
    out, unknown = {}, []
    for key, value in state.items():
        if _IGNORED.search(key):
            continue
        if key == "encoder.lm_head.weight":
            out["lm_head.decoder.weight"] = value
        elif key == "encoder.lm_head.bias":
            out["lm_head.bias"] = value
            out["lm_head.decoder.bias"] = value
        else:
            new = _rename(key, _LAYER, _FIXED, _FS_LAYER, "roberta.encoder.layer.{i}.{name}.{kind}")
            if new is None:
                unknown.append(key)
            else:
                out[new] = value
    if unknown:
        raise InteropError(f"weights with no transformers counterpart (not a post-LayerNorm RoBERTa?): {unknown[:5]}")
    emb = out.get("roberta.embeddings.word_embeddings.weight")
    if emb is None:
        raise InteropError("no encoder.sentence_encoder.embed_tokens.weight: not a RoBERTa checkpoint")
    out["roberta.embeddings.token_type_embeddings.weight"] = torch.zeros(1, emb.shape[1], dtype=emb.dtype)
    out.setdefault("lm_head.decoder.weight", emb)
    return out


def with_model_prefix(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Keys as XLMRobertaForMaskedLM names them (some files store the encoder without ``roberta.``)."""
    return {(k if k.startswith(("roberta.", "lm_head.")) else "roberta." + k): v for k, v in state.items()}


def hf_to_fairseq(state: Dict[str, torch.Tensor], tie_word_embeddings: bool = True) -> Dict[str, torch.Tensor]:
    """(XLM-)RobertaForMaskedLM state dict -> fairseq RoBERTa state dict."""
    state = with_model_prefix(state)
    out, unknown = {}, []
    token_type = state.get("roberta.embeddings.token_type_embeddings.weight")
    for key, value in state.items():
        if key in (
            "roberta.embeddings.token_type_embeddings.weight",
            "roberta.embeddings.position_ids",
            "roberta.embeddings.token_type_ids",
        ):
            continue  # folded below / buffers
        if key.startswith("roberta.pooler."):
            continue  # the MLM model does not use it; fairseq's RoBERTa has none
        if key == "lm_head.decoder.weight":
            if not tie_word_embeddings:
                out["encoder.lm_head.weight"] = value
            continue
        if key in ("lm_head.bias", "lm_head.decoder.bias"):
            # The decoder's own bias is the one its forward adds; lm_head.bias is normally the same
            # tensor, but a file saved with untied embeddings may hold two different ones.
            out["encoder.lm_head.bias"] = state.get("lm_head.decoder.bias", value)
            continue
        new = _rename(key, _swap(_LAYER), _swap(_FIXED), _HF_LAYER, "encoder.sentence_encoder.layers.{i}.{name}.{kind}")
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise InteropError(f"weights with no fairseq RoBERTa counterpart: {unknown[:5]}")
    emb = out.get(FS + "embed_tokens.weight")
    if emb is None or "encoder.lm_head.bias" not in out or "encoder.lm_head.dense.weight" not in out:
        raise InteropError("needs the word embeddings and the masked-LM head (lm_head.*): is it a *ForMaskedLM model?")
    if token_type is not None:
        pos = FS + "embed_positions.weight"
        out[pos] = out[pos] + token_type[0]
    out["encoder.lm_head.weight"] = out.get("encoder.lm_head.weight", emb)
    return out


ACTIVATIONS = {"gelu": "gelu"}  # transformers' LM head always applies exact GELU


def hf_config_kwargs(args, vocab_size: int, positions_rows: int, pad: int, bos: int, eos: int) -> dict:
    """XLMRobertaConfig fields for a fairseq RoBERTa's args (Namespace-like); refuses what differs."""
    g = lambda k, d=None: getattr(args, k, d)  # noqa: E731
    problems = []
    if g("encoder_normalize_before", False):
        problems.append("--encoder-normalize-before (pre-LayerNorm; transformers' XLM-R is post-LayerNorm)")
    if not g("layernorm_embedding", True):
        problems.append("no embedding LayerNorm")
    if not g("no_scale_embedding", True):
        problems.append("scaled embeddings (--no-scale-embedding off)")
    if g("activation_fn", "gelu") not in ACTIVATIONS:
        problems.append(f"--activation-fn {g('activation_fn')} (transformers' LM head is fixed to gelu)")
    if g("no_token_positional_embeddings", False) or not g("encoder_learned_pos", True):
        problems.append("no learned positions")
    if g("adaptive_input", False):
        problems.append("--adaptive-input")
    if problems:
        raise InteropError("architecture cannot be expressed as XLMRobertaForMaskedLM: " + "; ".join(problems))
    return dict(
        vocab_size=vocab_size,
        hidden_size=int(args.encoder_embed_dim),
        num_hidden_layers=int(args.encoder_layers),
        num_attention_heads=int(args.encoder_attention_heads),
        intermediate_size=int(args.encoder_ffn_embed_dim),
        hidden_act=ACTIVATIONS[g("activation_fn", "gelu")],
        hidden_dropout_prob=float(g("dropout", 0.1)),
        attention_probs_dropout_prob=float(g("attention_dropout", 0.1)),
        max_position_embeddings=positions_rows,
        type_vocab_size=1,
        layer_norm_eps=1e-5,  # fairseq's LayerNorm
        pad_token_id=pad,
        bos_token_id=bos,
        eos_token_id=eos,
        tie_word_embeddings=not g("untie_weights_roberta", False),
        architectures=["XLMRobertaForMaskedLM"],
    )


def fairseq_model_flags(config) -> Tuple[list, int]:
    """fairseq-train flags that build the model of a transformers (XLM-)RoBERTa config, and its
    --max-positions; refuses configs fairseq's RoBERTa cannot reproduce."""
    g = lambda k, d=None: getattr(config, k, d)  # noqa: E731
    problems = []
    if g("model_type") not in ("xlm-roberta", "roberta"):
        problems.append(f"model_type {g('model_type')!r} (only xlm-roberta / roberta)")
    if g("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type {g('position_embedding_type')!r}")
    if g("hidden_act") != "gelu":
        problems.append(f"hidden_act {g('hidden_act')!r} (fairseq's LM head uses the model's activation)")
    if abs(float(g("layer_norm_eps", 1e-5)) - 1e-5) > 1e-12:
        problems.append(f"layer_norm_eps {g('layer_norm_eps')} (fairseq's LayerNorm uses 1e-5)")
    if g("is_decoder", False) or g("add_cross_attention", False):
        problems.append("decoder / cross-attention")
    if g("pad_token_id") != 1:
        problems.append(f"pad_token_id {g('pad_token_id')} (fairseq's dictionary pads with 1)")
    if problems:
        raise InteropError("cannot be continued as a fairseq RoBERTa: " + "; ".join(problems))
    max_positions = int(config.max_position_embeddings) - int(config.pad_token_id) - 1
    flags = [
        "--arch",
        "roberta",
        "--encoder-layers",
        str(config.num_hidden_layers),
        "--encoder-embed-dim",
        str(config.hidden_size),
        "--encoder-ffn-embed-dim",
        str(config.intermediate_size),
        "--encoder-attention-heads",
        str(config.num_attention_heads),
        "--max-positions",
        str(max_positions),
        "--dropout",
        str(config.hidden_dropout_prob),
        "--attention-dropout",
        str(config.attention_probs_dropout_prob),
    ]
    if not g("tie_word_embeddings", True):
        flags.append("--untie-weights-roberta")
    return flags, max_positions
