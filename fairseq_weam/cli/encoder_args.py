"""The flags every command that encodes text with a checkpoint shares (retrieval, BUCC, BLI,
align-eval): the checkpoint, its data directory, the layer, the batch size and the device."""

from fairseq_weam.core import device
from fairseq_weam.evaluation.embeddings import SentenceEncoder


def add_encoder_args(p):
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", help="data dir with dict.txt and spm.model (default: the checkpoint's --data)")
    p.add_argument("--spm-model", help="default: DATA/spm.model")
    p.add_argument(
        "--layer",
        default="middle",
        help="hidden state to use: 0 = embeddings .. N = last; 'middle' (default), 'last', or negative",
    )
    p.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass")
    device.add_args(p)


def encoder_from_args(args) -> SentenceEncoder:
    """The checkpoint's encoder on the device and in the precision the flags ask for."""
    where, dtype = device.from_args(args)
    return SentenceEncoder.from_checkpoint(args.checkpoint, args.data, args.spm_model, device=where, dtype=dtype)
