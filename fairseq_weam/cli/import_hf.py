"""fairseq-weam-import-hf: a transformers XLM-R-family model -> a fairseq checkpoint to continue.

    fairseq-weam-import-hf path/to/infoxlm-base xlm/infoxlm-base
    fairseq-weam-prepare --trainpref corpus/train --destdir data \\
        --spm-model xlm/infoxlm-base/spm.model --dictionary xlm/infoxlm-base/dict.txt
    fairseq-train data --user-dir fairseq_weam --task weam --criterion weam MODEL_FLAGS \\
        --restore-file xlm/infoxlm-base/model.pt \\
        --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler ...

HF_DIR: XLMRobertaForMaskedLM / RobertaForMaskedLM with model.safetensors (pickled
pytorch_model.bin is refused) and a sentencepiece model. MODEL_FLAGS are printed (and kept in
OUT/import.json). Nothing is written unless fairseq's features equal transformers' within 1e-4.
"""

import argparse
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import ArgumentParser, input_dir, output_dir
from fairseq_weam.core.outdir import check_output_dir
from fairseq_weam.interop import quiet_logs


def get_parser():
    p = ArgumentParser(
        prog="fairseq-weam-import-hf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "hf_dir",
        type=input_dir,
        help="local transformers model directory (config.json, model.safetensors, sentencepiece model)",
    )
    p.add_argument("out", type=output_dir, help="output directory: model.pt, dict.txt, spm.model, import.json")
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
    from fairseq_weam.interop.hf_import import import_hf
    from fairseq_weam.interop.parity import format_differences

    r = import_hf(args.hf_dir, args.out, args.overwrite)
    out, flags = r["out"], " ".join(r["fairseq_train_model_flags"])
    print(
        f"wrote {out}/model.pt, dict.txt, spm.model ({r['model_type']}, vocabulary {r['vocab_size']}); "
        f"{format_differences(r['differences'])}"
    )
    print("next:")
    print(
        f"  fairseq-weam-prepare --trainpref CORPUS/train --destdir DATA --max-positions {r['max_positions']} "
        f"--spm-model {out}/spm.model --dictionary {out}/dict.txt"
    )
    print(
        f"  fairseq-train DATA --user-dir fairseq_weam --task weam --criterion weam {flags} "
        f"--restore-file {out}/model.pt --reset-optimizer --reset-dataloader --reset-meters --reset-lr-scheduler ..."
    )
    return r


def main(argv=None):
    return run_cli("fairseq-weam-import-hf", run, argv)


if __name__ == "__main__":
    sys.exit(main())
