"""The continued regime of the imbalance sweep (the paper's: mBERT, mBERT+TLM, mBERT+WEAM): every
grid point starts from a base's weights instead of random ones. ``--base-updates N`` trains that
base once per seed in ``OUT/base_sSEED/`` (monolingual masked LM, the ``mlm`` setting: each side of
every pair its own example, no parallel signal), ``--base CKPT`` takes a given one. A continued run's
first launch gets ``--restore-file BASE`` and the four ``--reset-*`` flags; later launches (an
interrupted run) resume from the run's own ``checkpoint_last.pt``: fairseq's ``--restore-file``
would load the base again on every launch, so the sweep leaves it out once the run has a
checkpoint of its own.
"""

import os
from dataclasses import asdict
from typing import Callable, List, Sequence

from fairseq_weam.core.errors import WeamError

# The base of the continued regime: the setting it is trained with, and its row's name.
BASE_OBJECTIVE = "mlm"
BASE_SETTING = "base"
# A from-scratch control's setting name: SCRATCH_PREFIX + the setting it trains.
SCRATCH_PREFIX = "scratch-"
# A continued run's first launch: the base's weights, everything else fresh.
# The architecture fields a continued run must share with its base.
ARCH_KEYS = ("arch", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads")
RESET_FLAGS = ["--reset-optimizer", "--reset-lr-scheduler", "--reset-meters", "--reset-dataloader"]


class SweepError(WeamError, ValueError):
    """A sweep directory or flag that does not fit this sweep; the message says which."""


def base_checkpoint(out_dir: str, seed: int) -> str:
    return os.path.join(out_dir, f"{BASE_SETTING}_s{seed}", "checkpoints", "checkpoint_last.pt")


def restore_flags(restore, save_dir: str) -> List[str]:
    """``--restore-file BASE`` and the four resets on a continued run's first launch (no
    ``checkpoint_last.pt`` of its own yet); nothing later, so fairseq resumes the run itself."""
    if restore and not os.path.exists(os.path.join(save_dir, "checkpoint_last.pt")):
        return ["--restore-file", restore, *RESET_FLAGS]
    return []


def continue_from(grid: Sequence, checkpoint: Callable[[int], str]) -> list:
    """``grid`` with every run starting from ``checkpoint(seed)`` (the base of its seed)."""
    return [type(s)(**{**asdict(s), "restore": checkpoint(s.seed)}) for s in grid]


def check_base_checkpoint(checkpoint: str, data_dir: str, model_args: Sequence[str] = ()) -> None:
    """Before any training: ``checkpoint`` loads (fairseq's loader made safe: no pickled code
    runs), its embedding table has one row per type of the data's dictionary (+ ``<mask>``), and
    the architecture flags given in ``model_args`` match its own; else one clear error."""
    from fairseq_weam.core.checkpoints import check_vocabulary, load_checkpoint
    from fairseq_weam.core.checkpoints import model_args as saved_args
    from fairseq_weam.core.data_dir import load_dictionary

    state = load_checkpoint(checkpoint)
    check_vocabulary(
        state, len(load_dictionary(data_dir, add_mask=True)), checkpoint, os.path.join(data_dir, "dict.txt")
    )
    saved = saved_args(state)
    for flag, value in zip(model_args[:-1], model_args[1:]):
        key = flag[2:].replace("-", "_") if flag.startswith("--") else None
        if key in ARCH_KEYS and str(getattr(saved, key, None)) != value:
            raise SweepError(
                f"{checkpoint}: {key} is {getattr(saved, key, None)} in the checkpoint, {value} in --model-args: "
                "give the base's architecture in --model-args"
            )
