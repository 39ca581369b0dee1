"""fairseq-weam-sweep: the imbalance study. Pre-train every objective x sampling-alpha x seed
grid point on one corpus and budget, evaluate retrieval per held-out language, write
OUT/results.md (a generated summary first), OUT/results.json and the two-panel figure
OUT/retrieval_vs_share.{png,pdf}. Rerunning resumes.

    fairseq-weam-sweep --data DATA --heldout CORPUS/heldout --out sweep/ --seeds 1,2,3
    fairseq-weam-sweep ... --settings weam,tlm --alphas 1,0.3 --setting "weam-l05=--xl-lambda 0.5"
"""

import argparse
import logging
import shlex
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.evaluation import sweep
from fairseq_weam.evaluation.embeddings import POOLINGS
from fairseq_weam.train_runner import default_threads


def get_parser():
    p = argparse.ArgumentParser(
        prog="fairseq-weam-sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="fairseq-weam-prepare output (binarized pairs, dict.txt, spm.model)")
    p.add_argument(
        "--heldout", required=True, help="dir of en-XX.en / en-XX.XX held-out pairs (fairseq-weam-corpus OUT/heldout)"
    )
    p.add_argument("--out", required=True, help="sweep directory (runs/NAME/ per grid point, cached)")
    p.add_argument(
        "--settings",
        default=",".join(sweep.SETTINGS),
        help="comma-separated objectives from the settings table (default: %(default)s)",
    )
    p.add_argument(
        "--alphas",
        default=",".join(f"{a:g}" for a in sweep.DEFAULT_ALPHAS),
        help="comma-separated sampling alphas (default: %(default)s)",
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar='NAME="ARGS"',
        help="add or replace a setting: its extra fairseq-train args; repeatable",
    )
    p.add_argument(
        "--model-args",
        default=shlex.join(sweep.TINY_MODEL_ARGS),
        help="architecture args for fairseq-train (default: the tiny demo model: %(default)s)",
    )
    p.add_argument(
        "--train-args",
        default=shlex.join(sweep.DEMO_TRAIN_ARGS),
        help="optimisation / budget args, the same for every run (default: %(default)s)",
    )
    p.add_argument("--extra-train-args", default="", help="appended to --train-args, e.g. '--max-update 200'")
    p.add_argument(
        "--seeds",
        "--seed",
        default="1",
        help="comma-separated training seeds; every grid point runs once per seed (default: %(default)s)",
    )
    p.add_argument(
        "--min-heldout",
        type=int,
        default=100,
        help="languages with fewer held-out pairs are reported but left out of averages, trends and "
        "thirds, and drawn hollow (default: %(default)s)",
    )
    p.add_argument(
        "--bli",
        metavar="DIR",
        help="also score word translation (fairseq-weam-bli, isolated word vectors) on the SRC-TGT.txt "
        "lexicons in DIR (e.g. made by fairseq-weam-lexicon); reported beside retrieval",
    )
    p.add_argument("--src-lang", default="en")
    p.add_argument("--pooling", choices=POOLINGS, default="mean")
    p.add_argument("--layer", default="middle", help="hidden state for sentence vectors (default: middle)")
    p.add_argument("--k", type=int, default=4, help="margin k-NN size")
    p.add_argument("--max-heldout", type=int, help="evaluate at most N held-out pairs per language")
    p.add_argument("--metric", choices=("margin", "cosine"), default="margin", help="what the table and figure show")
    p.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="torch CPU threads of each training run (OMP_NUM_THREADS / MKL_NUM_THREADS in its environment) and "
        "of the evaluation; default: $OMP_NUM_THREADS when set, else this machine's cores (%(default)s: the grid "
        "runs one point at a time); give cores // N when N sweeps share the machine; 0 = torch's own default",
    )
    p.add_argument("--dry-run", action="store_true", help="print the fairseq-train commands and exit")
    return p


def parse_settings(specs):
    table = dict(sweep.SETTINGS)
    for spec in specs:
        name, sep, args = spec.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--setting {spec!r}: expected NAME=ARGS")
        table[name.strip()] = shlex.split(args)
    return table


def run(argv=None):
    """Parse ``argv`` and run; returns the results (for tests and scripts)."""
    logging.basicConfig(
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO, stream=sys.stderr
    )
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        table = parse_settings(args.setting)
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s]
        except ValueError:
            raise ValueError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
        grid = sweep.make_grid(
            [s for s in args.settings.split(",") if s], [float(a) for a in args.alphas.split(",") if a], table, seeds
        )
    except (KeyError, ValueError) as e:
        parser.error(str(e))
    model_args = shlex.split(args.model_args)
    train_args = shlex.split(args.train_args) + shlex.split(args.extra_train_args)
    if args.dry_run:
        for spec in grid:
            print(
                shlex.join(sweep.train_command(spec, args.data, f"{args.out}/runs/{spec.name}", model_args, train_args))
            )
        return []
    opts = sweep.EvalOptions(
        heldout=args.heldout,
        src_lang=args.src_lang,
        pooling=args.pooling,
        layer=args.layer,
        k=args.k,
        max_sentences=args.max_heldout,
        bli=args.bli,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # the evaluation, in this process
    results = sweep.run_sweep(
        args.out, args.data, opts, grid, model_args, train_args, args.metric, args.min_heldout, threads=args.threads
    )
    print(open(f"{args.out}/results.md").read())
    return results


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli("fairseq-weam-sweep", run, argv)


if __name__ == "__main__":
    sys.exit(main())
