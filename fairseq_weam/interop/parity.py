"""How far apart a fairseq RoBERTa and a transformers (XLM-)RobertaForMaskedLM are on the same ids:
max |difference| of every hidden state (embeddings, then each layer) and of the MLM logits, over
the real (non-padding) positions. Export and import both check their result with it."""

from typing import List, Sequence

import torch

TOLERANCE = 1e-4  # fp32; measured differences are around 1e-6


def pad_batch(id_lists: Sequence[Sequence[int]], pad: int) -> torch.Tensor:
    tokens = torch.full((len(id_lists), max(len(t) for t in id_lists)), pad, dtype=torch.long)
    for i, ids in enumerate(id_lists):
        tokens[i, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
    return tokens


@torch.no_grad()
def fairseq_outputs(model, tokens: torch.Tensor):
    """(hidden states [embeddings, layer 1 .. N] as (B, T, C), MLM logits (B, T, V))."""
    logits, extra = model(tokens, return_all_hiddens=True)
    return [h.transpose(0, 1) for h in extra["inner_states"]], logits


@torch.no_grad()
def hf_outputs(model, tokens: torch.Tensor, pad: int):
    out = model(input_ids=tokens, attention_mask=tokens.ne(pad).long(), output_hidden_states=True)
    return list(out.hidden_states), out.logits


def max_differences(fairseq_model, hf_model, id_lists: Sequence[Sequence[int]], pad: int) -> dict:
    """{"hidden": [max diff per hidden state], "logits": max diff} on non-padding positions."""
    tokens = pad_batch(id_lists, pad)
    keep = tokens.ne(pad)
    fs_h, fs_logits = fairseq_outputs(fairseq_model.eval(), tokens)
    hf_h, hf_logits = hf_outputs(hf_model.eval(), tokens, pad)
    if len(fs_h) != len(hf_h):
        raise AssertionError(f"{len(fs_h)} fairseq hidden states vs {len(hf_h)} transformers hidden states")
    hidden: List[float] = [float((a - b).abs()[keep].max()) for a, b in zip(fs_h, hf_h)]
    return {"hidden": hidden, "logits": float((fs_logits - hf_logits).abs()[keep].max())}


def within_tolerance(diffs: dict, tol: float = TOLERANCE) -> bool:
    return max(diffs["hidden"]) <= tol and diffs["logits"] <= tol


def format_differences(diffs: dict) -> str:
    return (
        f"max |diff| hidden states {max(diffs['hidden']):.2e} ({len(diffs['hidden'])} states), "
        f"MLM logits {diffs['logits']:.2e}"
    )
