"""fairseq-weam-export-hf: a fairseq RoBERTa / WEAM checkpoint -> a transformers directory.

    fairseq-weam-export-hf checkpoints/checkpoint_best.pt --data data hf/weam-base
    python -c "from transformers import AutoModel, AutoTokenizer; AutoModel.from_pretrained('hf/weam-base')"

Writes XLMRobertaForMaskedLM (config.json + model.safetensors), a tokenizer that gives the ids of
the data pipeline (summary.json's pre-tokenization, sentencepiece, dict.txt) and spm.model. Nothing
is written unless the tokenizer matches on sample lines (and every line of --check-text) and the
transformers hidden states and MLM logits equal fairseq's within 1e-4. See docs/interop.md.
"""

import argparse
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import ArgumentParser, binary_file, input_dir, output_dir, text_file
from fairseq_weam.core.outdir import check_output_dir
from fairseq_weam.interop import quiet_logs


def get_parser():
    p = ArgumentParser(
        prog="fairseq-weam-export-hf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "checkpoint", type=binary_file, help="fairseq checkpoint (--arch roberta*, e.g. trained with --task weam)"
    )
    p.add_argument("out", type=output_dir, help="output directory (refused if it exists, unless --overwrite)")
    p.add_argument(
        "--data",
        required=True,
        type=input_dir,
        help="the prepared data dir it was trained on (dict.txt, spm.model, summary.json)",
    )
    p.add_argument("--spm-model", type=binary_file, help="default: DATA/spm.model")
    p.add_argument(
        "--check-text",
        nargs="+",
        type=text_file,
        default=[],
        metavar="FILE",
        help="raw text files (one sentence a line) on which both tokenizers must agree, e.g. held-out sets",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output directory (only once the new one is complete)",
    )
    return p


def run(argv=None):
    args = get_parser().parse_args(argv)
    check_output_dir(args.out, args.overwrite)  # before any work, as every command does
    quiet_logs()
    from fairseq_weam.interop.hf_export import export
    from fairseq_weam.interop.parity import format_differences

    r = export(args.checkpoint, args.data, args.out, args.overwrite, args.check_text, args.spm_model)
    print(
        f"wrote {r['out']}: XLMRobertaForMaskedLM, vocabulary {r['vocab_size']}, {r['max_positions']} positions, "
        f"CJK splitting {'on' if r['split_cjk'] else 'off'}"
    )
    n, ties = r["tokenizer_lines_checked"], r["tokenizer_ties"]
    if ties:
        print(
            f"tokenizer ids equal to the data pipeline's on {n - ties} of {n} lines; {ties} line(s) segmented "
            "differently but equally probably (a float32 tie in sentencepiece's Viterbi)"
        )
    else:
        print(f"tokenizer ids equal to the data pipeline's on {n} lines")
    print(f"AutoModelForMaskedLM.from_pretrained vs fairseq: {format_differences(r['differences'])}")
    return r


def main(argv=None):
    return run_cli("fairseq-weam-export-hf", run, argv)


if __name__ == "__main__":
    sys.exit(main())
