"""Where and in which precision the evaluation commands run: ``--device`` / ``--fp16`` / ``--bf16``.

One pure rule for every command (retrieval, Tatoeba, BUCC, XNLI, align-eval):

* ``--device`` defaults to ``cuda`` when a GPU is visible, else ``cpu``; asking for ``cuda``
  without one is an error, not a silent fall-back.
* ``--fp16`` needs CUDA (half-precision matrix products on CPU are slow or unsupported);
  ``--bf16`` runs on both, for encoding and evaluation (not for the XNLI fine-tune:
  fairseq-train's ``--bf16`` means TPU). They exclude each other. Without either: float32.
* Only the encoder runs in the reduced precision: sentence vectors come back as float32, and
  similarities, margins and thresholds are computed in float32.
"""

from typing import Optional, Tuple

import torch

DEVICES = ("cuda", "cpu")


def resolve(device: Optional[str] = None, fp16: bool = False, bf16: bool = False) -> Tuple[torch.device, torch.dtype]:
    """``(device, dtype)`` for the flags; ``ValueError`` naming the flag when they cannot hold."""
    if fp16 and bf16:
        raise ValueError("--fp16 and --bf16 exclude each other")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in DEVICES:
        raise ValueError(f"--device must be one of {DEVICES}, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible (torch.cuda.is_available() is False); use --device cpu")
    if fp16 and device != "cuda":
        raise ValueError("--fp16 needs --device cuda; use --bf16 on CPU")
    dtype = torch.float16 if fp16 else torch.bfloat16 if bf16 else torch.float32
    return torch.device(device), dtype


def add_args(parser) -> None:
    """The three flags, for every evaluation command."""
    parser.add_argument("--device", choices=DEVICES, help="where to run (default: cuda when available, else cpu)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fp16", action="store_true", help="run the encoder in float16 (CUDA only)")
    group.add_argument("--bf16", action="store_true", help="run the encoder in bfloat16")


def from_args(args) -> Tuple[torch.device, torch.dtype]:
    return resolve(args.device, args.fp16, args.bf16)


def fairseq_train_flags(device: torch.device, dtype: torch.dtype):
    """The same choice as ``fairseq-train`` flags (fine-tuning runs through fairseq-train).
    fairseq's ``--bf16`` implies ``--tpu`` (fairseq/options.py), so it cannot serve here."""
    if dtype == torch.bfloat16:
        raise ValueError("--bf16: fairseq-train's --bf16 means TPU training; fine-tune with --fp16 on CUDA or in float32")
    return ([] if device.type == "cuda" else ["--cpu"]) + (["--fp16"] if dtype == torch.float16 else [])
