"""The flags every command that encodes text with a checkpoint shares (retrieval, BUCC, BLI,
align-eval): the checkpoint, its data directory, the layer, the batch size and the device."""

import functools

from fairseq_weam.cli.checks import binary_file, input_dir, layer_spec, positive_int
from fairseq_weam.core import device
from fairseq_weam.evaluation.embeddings import SentenceEncoder


def add_encoder_args(p, layer_lists: bool = False):
    """``layer_lists``: --layer may also be ``all`` or a comma-separated list (align-eval)."""
    p.add_argument("--checkpoint", required=True, type=binary_file)
    p.add_argument(
        "--data", type=input_dir, help="data dir with dict.txt and spm.model (default: the checkpoint's --data)"
    )
    p.add_argument("--spm-model", type=binary_file, help="default: DATA/spm.model")
    layer_type = functools.partial(layer_spec, allow_all=layer_lists)
    layer_type.__name__ = "layer"
    p.add_argument(
        "--layer",
        default="middle",
        type=layer_type,
        help="hidden state to use: 0 = embeddings .. N = last; 'middle' (default), 'last', or negative",
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="sentences per forward pass")
    device.add_args(p)


def encoder_from_args(args) -> SentenceEncoder:
    """The checkpoint's encoder on the device and in the precision the flags ask for."""
    where, dtype = device.from_args(args)
    encoder = SentenceEncoder.from_checkpoint(args.checkpoint, args.data, args.spm_model, device=where, dtype=dtype)
    for layer in [] if args.layer == "all" else str(args.layer).split(","):
        encoder.resolve_layer(layer)  # out of range for this model: refused before any encoding
    return encoder


def check_encoder_args(args) -> None:
    """What can be checked before the checkpoint is loaded: the device and precision flags."""
    device.from_args(args)
