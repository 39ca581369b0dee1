"""The momentum key encoder behind ``--contrastive-momentum`` (MoCo / InfoXLM's XLCo).

A copy of the model that never receives gradient: after every optimizer step its parameters
move towards the trained ones, ``theta_k = m * theta_k + (1 - m) * theta_q`` (m = 0: the trained
weights themselves), and its buffers are copied. It encodes the clean views in eval mode (no
dropout) under ``torch.no_grad``, so keys cost one forward without gradient per batch. It is kept
in float32 whatever the training precision (an fp16 copy would round ``(1 - m) * step`` away).
Not a submodule of the model or the criterion: it is saved in the checkpoint's ``extra_state``
(see ``WeamTask.get_checkpoint_dict``), never in the model an export reads.
"""

import copy
from typing import Dict, Optional

import torch


def unwrap(model):
    """The model inside fairseq's / torch's data-parallel wrappers."""
    while hasattr(model, "module"):
        model = model.module
    return model


@torch.no_grad()
def momentum_update(key_params, query_params, momentum: float) -> None:
    """``k = momentum * k + (1 - momentum) * q`` for each pair of tensors, in place."""
    key_params, query_params = list(key_params), list(query_params)
    if len(key_params) != len(query_params):
        raise ValueError("key and query encoders differ in their number of parameters")
    query_params = [q.detach().to(k.dtype) for k, q in zip(key_params, query_params)]
    torch._foreach_mul_(key_params, momentum)
    torch._foreach_add_(key_params, query_params, alpha=1.0 - momentum)


class MomentumEncoder:
    def __init__(self, momentum: float):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.model: Optional[torch.nn.Module] = None
        self._pending: Optional[Dict] = None  # a checkpoint's state, loaded once the model is seen

    def ensure(self, model) -> torch.nn.Module:
        """The key encoder; built on first use as a float32 copy of ``model`` (then a saved state
        from the checkpoint, if any, replaces its weights)."""
        if self.model is None:
            query = unwrap(model)
            key = copy.deepcopy(query).float()
            key.requires_grad_(False)
            key.eval()
            if self._pending is not None:
                key.load_state_dict(self._pending, strict=True)
                self._pending = None
            self.model = key
        return self.model

    def step(self, model) -> None:
        """After an optimizer step of ``model``: move the key encoder towards it."""
        key = self.ensure(model)
        query = unwrap(model)
        momentum_update(key.parameters(), query.parameters(), self.momentum)
        with torch.no_grad():
            for kb, qb in zip(key.buffers(), query.buffers()):
                kb.copy_(qb)

    def state_dict(self) -> Optional[Dict]:
        if self.model is None:
            return self._pending
        # Tied tensors (the output embedding is the input one) stay one storage in the checkpoint.
        copies = {}
        return {
            k: copies.setdefault((v.data_ptr(), v.dtype, tuple(v.shape)), v.detach().cpu())
            for k, v in self.model.state_dict().items()
        }

    def load_state_dict(self, state: Optional[Dict]) -> None:
        self.model = None
        self._pending = state

    @torch.no_grad()
    def encode(self, model, tokens: torch.Tensor, layer: int) -> torch.Tensor:
        """Key states ``[B, T, C]`` (float32) of ``tokens`` at encoder ``layer`` (-1 = last, 0 =
        embeddings, k = layer k), as the objective's encoder pass picks them."""
        key = self.ensure(model)
        features, extra = key(tokens, features_only=True, return_all_hiddens=layer != -1)
        if layer == -1:
            return features
        inner = extra.get("inner_states") if isinstance(extra, dict) else None
        layers = [s.transpose(0, 1) for s in inner] if inner else [features]
        layers[-1] = features
        return layers[layer]
