"""Where the QA model runs and in which precision: ``--device`` and ``--fp16`` / ``--bf16``.

Rules: no ``--device`` means CUDA when ``torch.cuda.is_available()``, else CPU. ``--fp16``
(float16 autocast + gradient scaling) needs CUDA; ``--bf16`` (bfloat16 autocast, no scaling)
runs on CPU and on GPUs that support it. The weights stay float32 (mixed precision): the
optimizer updates float32 master weights, only the forward / backward math is in 16 bits.
"""

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass(frozen=True)
class Precision:
    device: torch.device
    autocast_dtype: Optional[torch.dtype]  # None: plain float32

    @property
    def grad_scaling(self) -> bool:
        """float16 gradients underflow without loss scaling; bfloat16 has float32's range."""
        return self.autocast_dtype == torch.float16

    @property
    def name(self) -> str:
        return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.autocast_dtype]

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)


def choose_precision(device: Optional[str] = None, fp16: bool = False, bf16: bool = False) -> Precision:
    """The device and autocast dtype for the flags; ValueError for a choice that cannot run here."""
    if fp16 and bf16:
        raise ValueError("--fp16 and --bf16 exclude each other")
    cuda = torch.cuda.is_available()
    try:
        dev = torch.device(device or ("cuda" if cuda else "cpu"))
    except RuntimeError:
        raise ValueError(f"--device {device!r}: expected cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not cuda:
            raise ValueError("--device cuda: no CUDA device is visible (torch.cuda.is_available() is False)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible")
        if bf16 and not torch.cuda.is_bf16_supported():
            raise ValueError("--bf16: this GPU does not support bfloat16 (use --fp16)")
    elif fp16:
        raise ValueError("--fp16 needs a CUDA device (float16 autocast on CPU is not supported; use --bf16)")
    return Precision(dev, torch.float16 if fp16 else torch.bfloat16 if bf16 else None)
