"""The main job on the embedded default, in the paper's regime: a real multilingual corpus built
offline from the gettext catalogs, prepared (sentencepiece + fast_align + fairseq binarization), a
small base pre-trained with monolingual masked LM (the mBERT analogue), the base continued with
WEAM (mBERT + WEAM), and zero-shot retrieval per language of both, with the change.

Every step is the user-facing command, run in a subprocess; finished steps are kept, so an
interrupted demo resumes where it stopped.
"""

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time

from fairseq_weam.cli import run_cli
from fairseq_weam.core.errors import WeamError
from fairseq_weam.evaluation.sweep_base import restore_flags
from fairseq_weam.train_runner import (
    DEMO_MODEL,
    default_threads,
    flags,
    is_progress_line,
    run_train,
    thread_env,
    train_command,
)


class StepError(WeamError):
    """A step's command failed; it printed its own error above."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="fairseq-weam-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="runs/demo", help="working directory (default: runs/demo)")
    p.add_argument("--langs", default="fr,de,ru,zh_CN,fi,el,ar,hi,sw", help="gettext locales paired with English")
    p.add_argument(
        "--base-updates",
        type=int,
        default=2000,
        help="masked-LM updates of the base (default: %(default)s); 0: no base, WEAM from random weights",
    )
    p.add_argument(
        "--max-update",
        type=int,
        default=500,
        help="WEAM updates continuing the base (default: %(default)s; with the base's 2000, about 13 minutes on an "
        "idle 2-core machine, corpus and preparation included: see README)",
    )
    p.add_argument("--vocab-size", type=int, default=8000, help="sentencepiece vocabulary of the demo")
    p.add_argument("--sampling-alpha", type=float, default=0.3)
    p.add_argument(
        "--model-args",
        default=shlex.join(flags(DEMO_MODEL)),
        help="architecture flags for fairseq-train (default: %(default)s)",
    )
    p.add_argument("--extra-train-args", default="", help="more fairseq-train flags, e.g. '--contrastive-weight 1'")
    p.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="torch CPU threads of the training, retrieval and export steps (OMP_NUM_THREADS / MKL_NUM_THREADS "
        "in their environment); default: $OMP_NUM_THREADS when set, else this machine's cores (%(default)s); "
        "give cores // N when N jobs share the machine; 0 = torch's own default",
    )
    return p.parse_args(argv)


def show_training(line):
    return is_progress_line(line) or "training streams" in line or line.startswith(("stream", "en-"))


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def step(name, cmd, log_path=None, threads=None):
    """Run one step's command; with ``log_path`` (training) keep the full log on disk and show
    the interesting lines as they come. Prints its wall and CPU time (CPU: what the step costs
    on an idle machine, about). Returns the :class:`TrainRun` of a training step.
    ``threads``: the command's torch CPU threads (train_runner.thread_env)."""
    print(f"\n=== {name}\n$ {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    start, cpu = time.time(), children_cpu_seconds()
    result = None
    if log_path is None:
        status = subprocess.run(cmd, env=thread_env(threads)).returncode
        if status != 0:
            raise StepError(f"{name} failed (exit {status})")
    else:
        result = run_train(cmd, log_path, show_training, what=name, threads=threads)
    print(f"--- {name}: {time.time() - start:.0f} s ({children_cpu_seconds() - cpu:.0f} s CPU)", flush=True)
    return result


def pretrain_command(args, data, save_dir, updates, objective, xl_lambda, restore=()):
    """fairseq-train of the demo model for ``updates`` updates of ``objective``."""
    return train_command(
        data,
        *shlex.split(args.model_args),
        "--bitext-objective",
        objective,
        "--xl-lambda",
        str(xl_lambda),
        "--sampling-alpha",
        str(args.sampling_alpha),
        "--optimizer",
        "adam",
        "--adam-betas",
        "(0.9,0.98)",
        "--lr",
        "1e-3",
        "--lr-scheduler",
        "polynomial_decay",
        "--warmup-updates",
        str(max(1, updates // 10)),
        "--total-num-update",
        str(updates),
        "--max-update",
        str(updates),
        "--batch-size",
        "32",
        "--clip-norm",
        "1.0",
        "--skip-invalid-size-inputs-valid-test",
        "--save-dir",
        save_dir,
        "--no-epoch-checkpoints",
        "--validate-interval-updates",
        str(max(1, updates // 3)),
        "--save-interval-updates",
        str(max(1, updates // 3)),
        "--cpu",
        "--num-workers",
        "0",
        "--log-format",
        "json",
        "--log-interval",
        "25",
        "--no-progress-bar",
        *restore,
        *shlex.split(args.extra_train_args),
    )


def retrieval_command(checkpoint, data, heldout, json_path):
    return [
        sys.executable,
        "-m",
        "fairseq_weam.cli.retrieval",
        "--checkpoint",
        checkpoint,
        "--data",
        data,
        "--heldout",
        heldout,
        "--json",
        json_path,
    ]


def change_table(base: dict, after: dict) -> str:
    """Per language: margin retrieval (mean of both directions, %) of the base, after WEAM, and
    the change in points; the average over the languages both cover."""
    lines = [
        "=== what WEAM added to the base (margin retrieval, mean of both directions, %)",
        "| lang | n | base | base + WEAM | change |",
    ]
    for lang, r in after["results"].items():
        b, a = 100 * base["results"][lang]["margin"]["mean"], 100 * r["margin"]["mean"]
        mark = "" if lang in after["averages"]["covered"] else " †"
        lines.append(f"| {lang}{mark} | {r['n']} | {b:.1f} | {a:.1f} | {a - b:+.1f} |")
    b, a = (100 * x["averages"]["margin"]["mean"]["macro"] for x in (base, after))
    lines.append(f"| avg ({len(after['averages']['covered'])} langs) | | {b:.1f} | {a:.1f} | {a - b:+.1f} |")
    return "\n".join(lines)


def run(argv=None):
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    py = sys.executable
    corpus, data, ckpt = (os.path.join(out, d) for d in ("corpus", "data", "checkpoints"))

    if not os.path.isdir(corpus):
        step("1/6 build the gettext corpus", [py, "-m", "fairseq_weam.cli.build_corpus", corpus, "--langs", args.langs])
    if not os.path.isdir(data):
        step(
            "2/6 prepare: sentencepiece, fast_align, binarize",
            [
                py,
                "-m",
                "fairseq_weam.cli.prepare",
                "--trainpref",
                os.path.join(corpus, "train"),
                "--destdir",
                data,
                "--vocab-size",
                str(args.vocab_size),
                "--max-positions",
                "128",
                "--skip-bad-lines",
            ],
        )
    heldout_dir = os.path.join(corpus, "heldout")
    base_ckpt = None
    if args.base_updates > 0:
        base_dir = os.path.join(out, "base")
        os.makedirs(base_dir, exist_ok=True)
        step(
            "3/6 pre-train the base: monolingual masked LM, each side of a pair its own example (the mBERT analogue)",
            pretrain_command(args, data, os.path.join(base_dir, "checkpoints"), args.base_updates, "mlm", 0),
            log_path=os.path.join(base_dir, "train.log"),
            threads=args.threads,
        )
        base_ckpt = os.path.join(base_dir, "checkpoints", "checkpoint_last.pt")
        step(
            "4/6 zero-shot sentence retrieval of the base",
            retrieval_command(base_ckpt, data, heldout_dir, os.path.join(base_dir, "retrieval.json")),
            threads=args.threads,
        )
    train_log = os.path.join(out, "train.log")
    training = step(
        "5/6 continue the base with WEAM (fairseq-train --task weam --criterion weam --restore-file BASE)"
        if base_ckpt
        else "5/6 pre-train with WEAM from random weights (fairseq-train --task weam --criterion weam)",
        pretrain_command(
            args, data, ckpt, args.max_update, "weam", 1, restore_flags(base_ckpt, ckpt) if base_ckpt else []
        ),
        log_path=train_log,
        threads=args.threads,
    )
    retrieval_json = os.path.join(out, "retrieval.json")
    step(
        "6/6 zero-shot sentence retrieval after WEAM",
        retrieval_command(os.path.join(ckpt, "checkpoint_last.pt"), data, heldout_dir, retrieval_json),
        threads=args.threads,
    )
    heldout = sorted(os.path.join(corpus, "heldout", f) for f in os.listdir(os.path.join(corpus, "heldout")))
    step(
        "export to transformers, check the reloaded model against fairseq",
        [
            py,
            "-m",
            "fairseq_weam.cli.export_hf",
            os.path.join(ckpt, "checkpoint_last.pt"),
            os.path.join(out, "hf"),
            "--data",
            data,
            "--overwrite",
            "--check-text",
            *heldout,
        ],
        threads=args.threads,
    )

    records = [r for r in training.records if r["_tag"] == "train_inner"]
    if records:
        first, last = records[0], records[-1]
        print("\n=== what happened")
        print(f"updates {first['num_updates']} -> {last['num_updates']}")
        for key in ("loss", "ml_loss", "xl_loss", "ml_acc", "xl_acc"):
            if key in first and key in last:
                print(f"  {key:8s} {float(first[key]):8.3f} -> {float(last[key]):8.3f}")
    with open(retrieval_json) as f:
        after = json.load(f)
    avg = after["averages"]
    if base_ckpt:
        with open(os.path.join(out, "base", "retrieval.json")) as f:
            print("\n" + change_table(json.load(f), after))
    if avg["covered"]:
        print(
            f"  retrieval, margin, both directions: {100 * avg['margin']['mean']['macro']:.1f} % averaged over "
            f"{', '.join(avg['covered'])} ({100 * avg['margin']['mean']['pair_weighted']:.1f} % over their pairs)"
            + (
                f"; left out (< {avg['min_heldout']} held-out pairs): {', '.join(avg['excluded'])}"
                if avg["excluded"]
                else ""
            )
        )
    where = f"\nbase: {os.path.dirname(base_ckpt)}" if base_ckpt else ""
    print(f"{where}\nlogs: {train_log}\nretrieval: {retrieval_json}\ncheckpoints: {ckpt}")
    print(f"transformers: {os.path.join(out, 'hf')}")


def main(argv=None):
    return run_cli("fairseq-weam-demo", run, argv)


if __name__ == "__main__":
    sys.exit(main())
