"""The FIFO queue of past keys behind ``--contrastive-queue-size`` (MoCo / InfoXLM's XLCo).

A ring buffer of the last ``size`` translation pairs' keys, both sides (``x`` source keys for the
target-to-source direction, ``y`` target keys for the source-to-target one) with the content keys
of their sentences, so that a queued copy of a current pair is never its negative. Keys are stored
detached and L2-normalized in float32 (``2 * size * dim * 4`` bytes on the model's device).
"""

from typing import Dict, Optional

import torch


class NegativeQueue:
    def __init__(self, size: int):
        if size < 0:
            raise ValueError(f"queue size must be >= 0, got {size}")
        self.size = size
        self.x: Optional[torch.Tensor] = None  # [size, C]
        self.y: Optional[torch.Tensor] = None
        self.src_key: Optional[torch.Tensor] = None  # [size] content keys
        self.tgt_key: Optional[torch.Tensor] = None
        self.ptr = 0  # next slot to write
        self.filled = 0

    def _allocate(self, dim: int, like: torch.Tensor):
        self.x = like.new_zeros(self.size, dim, dtype=torch.float32)
        self.y = like.new_zeros(self.size, dim, dtype=torch.float32)
        self.src_key = torch.zeros(self.size, dtype=torch.long, device=like.device)
        self.tgt_key = torch.zeros(self.size, dtype=torch.long, device=like.device)

    def to(self, device) -> "NegativeQueue":
        for name in ("x", "y", "src_key", "tgt_key"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.to(device))
        return self

    @torch.no_grad()
    def push(self, x: torch.Tensor, y: torch.Tensor, src_key: torch.Tensor, tgt_key: torch.Tensor) -> None:
        """Enqueue ``n`` pairs (oldest first); the oldest entries make room when the queue is full."""
        n = x.shape[0]
        if self.size == 0 or n == 0:
            return
        if self.x is None:
            self._allocate(x.shape[1], x)
        if n > self.size:  # only the newest ``size`` survive
            x, y, src_key, tgt_key = x[-self.size :], y[-self.size :], src_key[-self.size :], tgt_key[-self.size :]
            n = self.size
        slots = (self.ptr + torch.arange(n, device=self.x.device)) % self.size
        self.x[slots] = x.detach().float().to(self.x.device)
        self.y[slots] = y.detach().float().to(self.y.device)
        self.src_key[slots] = src_key.to(self.src_key.device)
        self.tgt_key[slots] = tgt_key.to(self.tgt_key.device)
        self.ptr = (self.ptr + n) % self.size
        self.filled = min(self.size, self.filled + n)

    def entries(self):
        """``(x, y, src_key, tgt_key)`` of the queued pairs, oldest first (empty tensors when the
        queue holds nothing yet)."""
        if self.x is None or self.filled == 0:
            return None
        start = (self.ptr - self.filled) % self.size
        order = (start + torch.arange(self.filled, device=self.x.device)) % self.size
        return self.x[order], self.y[order], self.src_key[order], self.tgt_key[order]

    def state_dict(self) -> Dict:
        """The buffers as they are (CPU tensors), so a resume continues slot for slot."""
        buffers = {n: None if getattr(self, n) is None else getattr(self, n).detach().cpu() for n in _BUFFERS}
        return {"size": self.size, "ptr": self.ptr, "filled": self.filled, **buffers}

    def load_state_dict(self, state: Dict) -> None:
        """Restore a saved queue; one of another size keeps its newest entries in FIFO order."""
        self.x = self.y = self.src_key = self.tgt_key = None
        self.ptr = self.filled = 0
        if state.get("x") is None or int(state["filled"]) == 0:
            return
        if int(state["size"]) == self.size:
            for name in _BUFFERS:
                setattr(self, name, state[name].clone())
            self.ptr, self.filled = int(state["ptr"]), int(state["filled"])
            return
        old = NegativeQueue(int(state["size"]))
        old.load_state_dict(state)
        self.push(*old.entries())


_BUFFERS = ("x", "y", "src_key", "tgt_key")
