"""fairseq-weam-objective-stats: what an objective trains on a prepared corpus.

Builds the ``weam`` task from DATA and the same task flags ``fairseq-train`` takes, runs the
training batches through fairseq's own iterator (``--num-workers`` data-loader processes) for
two epochs, and reports per stream: the word and token masking rates (with the per-example
spread), masked words with an exchange target per masked token, the share of exchange-target
weight on bare word-start pieces, how many examples got new masks in epoch 2, and how many
batches hold copies of a pair.

    fairseq-weam-objective-stats DATA --bitext-objective weam --mask-prob 0.3 --json stats.json
"""

import argparse
import os
import sys

from fairseq_weam.cli import run_cli
from fairseq_weam.cli.checks import ArgumentParser, input_dir, non_negative_int, output_file, positive_int
from fairseq_weam.core.atomic import write_json_atomic


def get_parser():
    p = ArgumentParser(
        prog="fairseq-weam-objective-stats", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("data", type=input_dir, help="prepared data directory (as for fairseq-train)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--num-workers", type=non_negative_int, default=0, help="data-loader worker processes")
    p.add_argument("--epochs", type=positive_int, default=2, help="epochs to run (masks are compared between 1 and 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=output_file, help="write the statistics here")
    p.add_argument("--no-progress", action="store_true")
    return p


def build_task(data, task_args, seed=1):
    """The ``weam`` task as ``fairseq-train DATA --task weam TASK_ARGS`` would build it."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import fairseq_weam  # noqa: F401  (registers the task)

    user_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, [data, "--user-dir", user_dir, "--task", "weam", "--arch", "roberta", "--seed", str(seed), *task_args]
    )
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.batch_fields.views = True  # measured: copies of a pair inside a batch
    task.load_dataset(cfg.dataset.train_subset, epoch=1)
    return task


def format_table(result) -> str:
    cols = ("word_rate", "word_rate_p90", "word_rate_max", "token_rate", "xl_words_per_token", "xl_marker_share")
    lines = ["| stream | examples | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for name, s in [*result["streams"].items(), ("all", result["all"])]:
        lines.append(f"| {name} | {s['examples']} | " + " | ".join(f"{s[c]:.3f}" for c in cols) + " |")
    extra = (
        f"batches {result['batches']}, with copies of a pair {result['dup_batches']} "
        f"(most copies {result['max_copies']})"
    )
    if "fresh_share" in result:
        extra += (
            f"; masks changed in epoch 2 for {100 * result['fresh_share']:.1f} % of {result['fresh_compared']} examples"
        )
    return "\n".join(lines) + "\n" + extra


def run(argv=None):
    args, task_args = get_parser().parse_known_args(argv)
    from fairseq_weam.evaluation.objective_stats import measure

    task = build_task(args.data, task_args, args.seed)
    result = measure(task, args.batch_size, args.num_workers, args.epochs, args.seed, progress=not args.no_progress)
    result["settings"] = {
        "data": args.data,
        "task_args": task_args,
        "num_workers": args.num_workers,
        "batch_size": args.batch_size,
    }
    print(format_table(result))
    if args.json:
        write_json_atomic(args.json, result)
    return result


def main(argv=None):
    """Console entry point: exit status 0, or 2 with a one-line error."""
    return run_cli("fairseq-weam-objective-stats", run, argv)


if __name__ == "__main__":
    sys.exit(main())
