#!/usr/bin/env python
"""Preparation at scale: does time grow linearly and memory stay flat as the corpus grows?

    .venv/bin/python scripts/benchmark_prepare_scale.py [--langs el,fi] [--sizes 1,4,16]
        [--workers 1,2] [--sample-size 20000] [--chunk-lines 10000] [--work DIR]

Builds the gettext demo corpus for --langs (fairseq-weam-corpus), then for each size m writes the
corpus repeated m times, copy r with a word ``vR`` appended to both sides of every pair (a
deterministic perturbation: no two lines of the big corpus are equal), and runs, each as its own
process (``python -m fairseq_weam.cli.prepare``):

  * ``fit`` with a fixed --sample-size (sentencepiece and fast_align fitted on the same amount of
    text at every size; the dictionary counts and bad lines stream over the whole corpus);
  * ``apply`` of the whole corpus (slice 0/1) with each --workers value.

Per run it prints wall time, the peak memory of the whole process tree (the sum of the
proportional set sizes of the process and its workers, sampled from /proc every 0.1 s) and the
peak RSS of its largest single process (getrusage), the output size, and for apply its chunk
phase (read, encode, align, binarize; timed inside the run, so without the ~2-30 s of importing
fairseq that each process pays, depending on the load) and its write phase. Ratios: time per
pair against 1x, peak memory against 1x, and the chunk phase with 1 worker over that with 2. The
machine may be shared: the load average is printed with each run.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from fairseq_weam.prepare import textio
from fairseq_weam.prepare.gettext_corpus import CorpusOptions, build_corpus


def tree_pss(root: int) -> int:
    """Bytes of memory of process ``root`` and all its descendants: the sum of their proportional
    set sizes (a page shared by k processes counts 1/k in each, so forked workers sharing the
    parent's imports are not counted twice, as a sum of RSS would)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:")) * 1024
        except (OSError, ValueError, StopIteration):
            pass
        stack.extend(children.get(pid, []))
    return total


def run(cmd):
    """Run ``cmd``; returns (wall seconds, peak memory of the tree in bytes, peak RSS of its largest
    process in bytes (getrusage of this child and the workers it waited for), stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_pss(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN's running max
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, peak[0], usage.ru_maxrss * 1024, out


def du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def repeat_corpus(src_prefix: str, dst_prefix: str, times: int) -> int:
    """The corpus ``times`` times, copy r with `` vR`` appended to both sides; returns pairs."""
    n = 0
    for s, t in textio.discover_pairs(src_prefix):
        f = textio.locate(src_prefix, s, t)
        src, tgt = textio.read_lines(f.src_path)[0], textio.read_lines(f.tgt_path)[0]
        with (
            open(f"{dst_prefix}.{s}-{t}.{s}", "w", encoding="utf-8") as fs,
            open(f"{dst_prefix}.{s}-{t}.{t}", "w", encoding="utf-8") as ft,
        ):
            for r in range(times):
                suffix = f" v{r}" if times > 1 else ""
                fs.writelines(x + suffix + "\n" for x in src)
                ft.writelines(x + suffix + "\n" for x in tgt)
        n += times * len(src)
    return n


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--langs", default="el,fi")
    p.add_argument("--sizes", default="1,4,16")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--sample-size", type=int, default=20000)
    p.add_argument("--chunk-lines", type=int, default=10000)
    p.add_argument("--work", help="working directory (default: a temporary one, deleted at the end)")
    args = p.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    workers = [int(x) for x in args.workers.split(",")]
    work = args.work or tempfile.mkdtemp(prefix="weam-scale-")
    os.makedirs(work, exist_ok=True)
    py = [sys.executable, "-m", "fairseq_weam.cli.prepare"]
    rows = []
    try:
        corpus = os.path.join(work, "corpus")
        if not os.path.isdir(corpus):
            build_corpus(corpus, CorpusOptions(langs=args.langs.split(",")))
        for m in sizes:
            prefix = os.path.join(work, f"x{m}", "train")
            os.makedirs(os.path.dirname(prefix), exist_ok=True)
            pairs = repeat_corpus(os.path.join(corpus, "train"), prefix, m)
            model = os.path.join(work, f"x{m}", "model")
            shutil.rmtree(model, ignore_errors=True)
            print(f"[{m}x: {pairs} pairs] fit ... ({load()})", file=sys.stderr, flush=True)
            wall, peak, largest, _ = run(
                py
                + [
                    "fit",
                    "--trainpref",
                    prefix,
                    "--destdir",
                    model,
                    "--skip-bad-lines",
                    "--sample-size",
                    str(args.sample_size),
                    "--chunk-lines",
                    str(args.chunk_lines),
                ]
            )
            rows.append(
                {
                    "size": m,
                    "pairs": pairs,
                    "run": "fit",
                    "wall_s": wall,
                    "peak_tree_mb": peak / 2**20,
                    "largest_process_mb": largest / 2**20,
                    "output_mb": du(model) / 2**20,
                    "load": load(),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            for w in workers:
                out = os.path.join(work, f"x{m}", f"shard-w{w}")
                shutil.rmtree(out, ignore_errors=True)
                wall, peak, largest, _ = run(
                    py
                    + [
                        "apply",
                        "--model",
                        model,
                        "--trainpref",
                        prefix,
                        "--destdir",
                        out,
                        "--workers",
                        str(w),
                        "--chunk-lines",
                        str(args.chunk_lines),
                    ]
                )
                with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
                    timings = json.load(f)["timings_s"]
                rows.append(
                    {
                        "size": m,
                        "pairs": pairs,
                        "run": f"apply w{w}",
                        "wall_s": wall,
                        "peak_tree_mb": peak / 2**20,
                        "largest_process_mb": largest / 2**20,
                        "output_mb": du(out) / 2**20,
                        "chunks_s": timings["chunks"],
                        "write_s": timings["write"],
                        "load": load(),
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                shutil.rmtree(out)
            shutil.rmtree(os.path.dirname(prefix))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    base = {r["run"]: r for r in rows if r["size"] == sizes[0]}
    print(
        f"{'size':>4} {'pairs':>8} {'run':<9} {'wall s':>7} {'us/pair':>8} {'x time/pair':>11} {'peak MB (PSS)':>14} "
        f"{'x peak':>6} {'largest MB':>10} {'out MB':>7} {'chunks s':>8} {'write s':>7}  load (1, 5, 15 min)"
    )
    for r in rows:
        b = base[r["run"]]
        per_pair = r["wall_s"] / r["pairs"] * 1e6
        print(
            f"{r['size']:>3}x {r['pairs']:>8} {r['run']:<9} {r['wall_s']:>7.1f} {per_pair:>8.1f} "
            f"{per_pair / (b['wall_s'] / b['pairs'] * 1e6):>11.2f} {r['peak_tree_mb']:>14.0f} "
            f"{r['peak_tree_mb'] / b['peak_tree_mb']:>6.2f} "
            f"{r['largest_process_mb']:>10.0f} {r['output_mb']:>7.1f} {r.get('chunks_s', float('nan')):>8.1f} "
            f"{r.get('write_s', float('nan')):>7.1f}  {r['load'].replace('load average ', '')}"
        )
    for m in sizes:
        by = {r["run"]: r for r in rows if r["size"] == m}
        if "apply w1" in by and "apply w2" in by:
            print(
                f"{m}x: chunk phase (read, encode, align, binarize) 1 worker / 2 workers = "
                f"{by['apply w1']['chunks_s'] / by['apply w2']['chunks_s']:.2f} (goal >= 1.7); "
                f"whole apply {by['apply w1']['wall_s'] / by['apply w2']['wall_s']:.2f}"
            )


if __name__ == "__main__":
    main()
