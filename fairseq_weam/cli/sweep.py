"""fairseq-weam-sweep: the imbalance study. Pre-train every objective x sampling-alpha x seed
grid point on one corpus and budget, evaluate retrieval per held-out language, write
OUT/results.md (a generated summary first), OUT/results.json and the two-panel figure
OUT/retrieval_vs_share.{png,pdf}. Rerunning resumes.

    fairseq-weam-sweep --data DATA --heldout CORPUS/heldout --out sweep/ --seeds 1,2,3
    fairseq-weam-sweep ... --settings weam,tlm --alphas 1,0.3 --setting "weam-l05=--xl-lambda 0.5"

The paper's regime, every objective continued from one masked-LM base per seed (trained once,
cached in OUT/base_sSEED/), with the base as a row, λ rows and a from-scratch control:

    fairseq-weam-sweep ... --base-updates 2000 --extra-train-args "--max-update 300" \
        --first-alpha-settings weam@0.5,weam@2 --scratch weam
"""

import argparse
import logging
import os
import shlex
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import (
    ArgumentParser,
    input_dir,
    non_negative_int,
    number_list,
    output_dir,
    positive_int,
)
from fairseq_weam.core.errors import OptionError, WeamError
from fairseq_weam.evaluation import evaluate, ladder_sweep, sweep, sweep_base
from fairseq_weam.evaluation.embeddings import POOLINGS
from fairseq_weam.train_runner import default_threads


def get_parser():
    p = ArgumentParser(
        prog="fairseq-weam-sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data",
        required=True,
        type=input_dir,
        help="fairseq-weam-prepare output (binarized pairs, dict.txt, spm.model)",
    )
    p.add_argument(
        "--heldout",
        required=True,
        type=input_dir,
        help="dir of en-XX.en / en-XX.XX held-out pairs (fairseq-weam-corpus OUT/heldout)",
    )
    p.add_argument("--out", required=True, type=output_dir, help="sweep directory (runs/NAME/ per grid point, cached)")
    p.add_argument(
        "--settings",
        default=",".join(sweep.SETTINGS),
        help="comma-separated objectives from the settings table (default: %(default)s)",
    )
    p.add_argument(
        "--alphas",
        type=number_list(0),
        default=",".join(f"{a:g}" for a in sweep.DEFAULT_ALPHAS),
        help="comma-separated sampling alphas (default: %(default)s)",
    )
    p.add_argument(
        "--first-alpha-settings",
        default="",
        help="more settings, run at the first of --alphas only (e.g. the λ rows weam@0.5,weam+ctr@2)",
    )
    p.add_argument(
        "--base-updates",
        type=int,
        metavar="N",
        help="the paper's regime: first pre-train a base per seed with monolingual masked LM (the mlm "
        "setting) for N updates, cached in OUT/base_sSEED/ and reported as the row 'base', then continue "
        "every grid point from it (fresh optimizer, schedule, meters and data loader) for the grid's budget",
    )
    p.add_argument(
        "--base",
        metavar="CKPT",
        help="continue every grid point from this checkpoint instead (e.g. made by fairseq-weam-import-hf, "
        "with --model-args of its architecture); checked against the data's dictionary before any training",
    )
    p.add_argument(
        "--base-alpha",
        type=float,
        default=0.7,
        help="sampling alpha of the base's training (--base-updates); the base row is filed under it "
        "(default: %(default)s, as XLM and mBERT)",
    )
    p.add_argument(
        "--scratch",
        default="",
        metavar="SETTINGS",
        help="with --base-updates: from-scratch controls, these settings from random weights for the base's "
        "plus the grid's updates (the same total), at the first of --alphas, rows 'scratch-SETTING'",
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
    p.add_argument(
        "--ladder",
        action="append",
        default=[],
        metavar="LANG:F1,F2,...",
        help="a share ladder: also run every grid point keeping each fraction F < 1 of LANG's own training "
        "pairs (--subsample, nested subsets), the other languages at full data; rung 1 is the grid point "
        "itself; run names get _LANGF (weam_a1_s1_el0.1); repeatable for more languages",
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
        type=non_negative_int,
        default=100,
        help="languages with fewer held-out pairs are reported but left out of averages, trends and "
        "thirds, and drawn hollow (default: %(default)s)",
    )
    p.add_argument(
        "--bli",
        metavar="DIR",
        type=input_dir,
        help="also score word translation (fairseq-weam-bli, isolated word vectors) on the SRC-TGT.txt "
        "lexicons in DIR (e.g. made by fairseq-weam-lexicon); reported beside retrieval",
    )
    p.add_argument("--src-lang", default="en")
    p.add_argument("--pooling", choices=POOLINGS, default="mean")
    p.add_argument("--layer", default="middle", help="hidden state for sentence vectors (default: middle)")
    p.add_argument("--k", type=positive_int, default=4, help="margin k-NN size")
    p.add_argument("--max-heldout", type=positive_int, help="evaluate at most N held-out pairs per language")
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


def names(text):
    return [s for s in text.split(",") if s]


def build_grid(args, table, seeds, train_args):
    """``(bases to train, grid)``: the settings at every alpha, the first-alpha settings and the
    scratch controls, seed by seed; continued from the base when there is one."""
    alphas = [float(a) for a in args.alphas.split(",") if a]
    if args.base and args.base_updates:
        raise OptionError("--base and --base-updates: give one of them")
    if args.scratch and not args.base_updates:
        raise OptionError("--scratch needs --base-updates (the total budget it matches)")
    grid = sweep.make_grid(names(args.settings), alphas, table, seeds)
    if names(args.first_alpha_settings):
        grid += sweep.make_grid(names(args.first_alpha_settings), alphas[:1], table, seeds)
    bases = []
    if args.base_updates:
        bases = [sweep.base_spec(seed, args.base_alpha, args.base_updates, table) for seed in seeds]
        grid = sweep_base.continue_from(grid, lambda seed: sweep_base.base_checkpoint(args.out, seed))
    elif args.base:
        grid = sweep_base.continue_from(grid, lambda seed: os.path.abspath(args.base))
    if args.scratch:
        budget = sweep.max_update(train_args)
        if budget is None:
            raise OptionError("--scratch: the train args give no --max-update to add to the base's")
        grid += sweep.scratch_grid(names(args.scratch), alphas[0], args.base_updates + budget, table, seeds)
    return bases, sorted(grid, key=lambda s: seeds.index(s.seed))


def parse_settings(specs):
    table = dict(sweep.SETTINGS)
    for spec in specs:
        name, sep, args = spec.partition("=")
        if not sep or not name.strip():
            raise OptionError(f"--setting {spec!r}: expected NAME=ARGS")
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
            raise OptionError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
        train_args = shlex.split(args.train_args) + shlex.split(args.extra_train_args)
        bases, grid = build_grid(args, table, seeds, train_args)
        grid = ladder_sweep.add_rungs(grid, ladder_sweep.parse_ladders(args.ladder))
    except WeamError as e:  # OptionError, LadderError, SubsampleError ...: the flag's own message
        parser.error(str(e))
    model_args = shlex.split(args.model_args)
    if args.dry_run:
        for spec in [*bases, *grid]:
            print(
                shlex.join(sweep.train_command(spec, args.data, sweep.run_dir(args.out, spec), model_args, train_args))
            )
        return []
    # Before any run trains: the held-out pairs the evaluation needs are there.
    evaluate.find_parallel_sets(args.heldout, args.src_lang)
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
        args.out,
        args.data,
        opts,
        grid,
        model_args,
        train_args,
        args.metric,
        args.min_heldout,
        bases=bases,
        given_base=args.base,
        base_alpha=args.base_alpha,
        threads=args.threads,
    )
    print(open(f"{args.out}/results.md").read())
    return results


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli("fairseq-weam-sweep", run, argv)


if __name__ == "__main__":
    sys.exit(main())
