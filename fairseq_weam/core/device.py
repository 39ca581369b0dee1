"""Where and in which precision a command runs: ``--device`` / ``--fp16`` / ``--bf16``.

One rule for every command (retrieval, Tatoeba, BUCC, BLI, XNLI, align-eval, QA):

* ``--device`` defaults to ``cuda`` when a GPU is visible, else ``cpu``; ``cuda:N`` names one GPU.
  Asking for CUDA without one is an error, not a silent fall-back.
* ``--fp16`` needs CUDA (half-precision matrix products on CPU are slow or unsupported);
  ``--bf16`` runs on both (on a GPU that supports it). They exclude each other. Without either:
  float32.
* Evaluation runs only the encoder in the reduced precision: sentence vectors come back as
  float32, and similarities, margins and thresholds are computed in float32. Fine-tuning (QA) is
  mixed precision: float32 master weights, 16-bit autocast, gradient scaling for float16.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from fairseq_weam.core.errors import WeamError

DEVICES = ("cuda", "cpu")


class DeviceError(WeamError, ValueError):
    """A device / precision choice that cannot run here; the message names the flag."""


@dataclass(frozen=True)
class Precision:
    device: torch.device
    autocast_dtype: Optional[torch.dtype]  # None: plain float32

    @property
    def dtype(self) -> torch.dtype:
        return self.autocast_dtype or torch.float32

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
    """The device and 16-bit dtype for the flags; ``DeviceError`` naming the flag when they cannot hold."""
    if fp16 and bf16:
        raise DeviceError("--fp16 and --bf16 exclude each other")
    cuda = torch.cuda.is_available()
    try:
        dev = torch.device(device or ("cuda" if cuda else "cpu"))
    except RuntimeError:
        raise DeviceError(f"--device {device!r}: expected cpu, cuda or cuda:N") from None
    if dev.type not in DEVICES:
        raise DeviceError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not cuda:
            raise DeviceError(
                "--device cuda: no CUDA device is visible (torch.cuda.is_available() is False); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible")
        if bf16 and not torch.cuda.is_bf16_supported():
            raise DeviceError("--bf16: this GPU does not support bfloat16 (use --fp16)")
    elif fp16:
        raise DeviceError("--fp16 needs --device cuda; use --bf16 on CPU")
    return Precision(dev, torch.float16 if fp16 else torch.bfloat16 if bf16 else None)


def resolve(device: Optional[str] = None, fp16: bool = False, bf16: bool = False) -> Tuple[torch.device, torch.dtype]:
    """``(device, dtype)`` for the flags, for commands that cast the encoder itself."""
    precision = choose_precision(device, fp16, bf16)
    return precision.device, precision.dtype


def add_args(parser) -> None:
    """The three flags, for every command that runs a model."""
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fp16", action="store_true", help="run the encoder in float16 (CUDA only)")
    group.add_argument("--bf16", action="store_true", help="run the encoder in bfloat16")


def from_args(args) -> Tuple[torch.device, torch.dtype]:
    return resolve(args.device, args.fp16, args.bf16)


def fairseq_train_flags(device: torch.device, dtype: torch.dtype):
    """The same choice as ``fairseq-train`` flags (fine-tuning runs through fairseq-train).
    fairseq's ``--bf16`` implies ``--tpu`` (fairseq/options.py), so it cannot serve here."""
    if dtype == torch.bfloat16:
        raise DeviceError(
            "--bf16: fairseq-train's --bf16 means TPU training; fine-tune with --fp16 on CUDA or in float32"
        )
    return ([] if device.type == "cuda" else ["--cpu"]) + (["--fp16"] if dtype == torch.float16 else [])
