#!/usr/bin/env python
"""Speed and memory of the ``weam`` criterion against fairseq's own ``masked_lm``.

In one process, on the same synthetic batches (built by our AlignedPairDataset: whole-word,
alignment-aware masking; ``masked_lm`` reads the same ``target`` row, i.e. the same masked
positions) and for identical RoBERTa models (same seed, same initial weights), it trains:

* ``masked_lm``       fairseq's criterion (``model(..., masked_tokens=...)`` + cross_entropy)
* ``weam``            the ``weam`` criterion as committed, default options: ``--vocab-chunk-size
                      -1``, the automatic head (the chunked head with 128 rows on CPU, the
                      unchunked one on GPU)
* ``weam-unchunked``  ``--vocab-chunk-size 0``: one projection and one log-softmax for both
                      targets (apex xentropy on CUDA if installed), the path fairseq's masked_lm takes
* ``weam-chunked``    ``--vocab-chunk-size N`` (``--chunk-rows`` here): the memory-bounded chunked
                      head of ``masked_prediction_loss(chunk_size=N)``; not run by default (on CPU
                      it is the default ``weam`` row), ask for it with ``--criteria``

With ``--contrastive-queue-size K`` two more rows: ``weam+ctr`` (the criterion with the in-batch
translation-pair InfoNCE, ``--contrastive-weight 1``) and ``weam+xlco`` (the same with a queue of K
past keys and a momentum key encoder, ``--contrastive-momentum``); their ``xlco / ctr`` ratios
(words/s, step peak, state incl. the key encoder and the queue) are printed below the table.

Steps are interleaved round robin (one step of each criterion, then the next batch; the order
rotates every step), so slow drifts of the machine hit all of them alike. Printed per criterion
and vocabulary size:

* ``words/s``: non-pad input tokens per second of a train step (forward, backward, Adam step),
  median over the timed steps; data loading is not included (batches are pre-built).
* ``step peak``: the largest amount of tensor memory allocated *during* one train step and live
  at the same time (activations, logits, gradients, optimizer temporaries); it excludes what
  exists before the step (parameters, Adam state), which the ``state`` column gives. On CPU it
  is read from torch.profiler's memory timeline (every tensor storage create/destroy of the
  step, in a separate, untimed profiled step); on CUDA it is ``max_memory_allocated() -
  memory_allocated()`` around the step. ``fwd+bwd peak`` is the same for forward + backward
  only (no optimizer step): the part the criterion controls. ``total`` = state + step peak.
* The optimizer is the Adam that fairseq's ``--optimizer adam`` uses (apex FusedAdam on CUDA
  when installed, else fairseq's own Adam).
* ``data %``: time of ``dataset[i]`` for the batch's items plus ``collater`` (the per-batch work
  a fairseq data-loader worker does, here done inline) divided by (that + the step time).

The machine's load average (``os.getloadavg``) is printed with every table: on a shared machine
only ratios measured in the same run mean something, and ``--clock cpu`` (CPU seconds of this
process) with ``--threads 1`` is the least disturbed timing.

Example (the full model of the issue; see docs/performance.md for measured numbers)::

    .venv/bin/python scripts/benchmark_speed.py --layers 6 --dim 512 --vocabs 32000,250000
"""

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairseq.criterions.masked_lm import MaskedLmConfig, MaskedLmLoss  # noqa: E402
from fairseq.data import Dictionary, ListDataset  # noqa: E402
from fairseq.models.roberta import RobertaModel  # noqa: E402

from fairseq_weam.criterions.weam import WeamCriterion, WeamCriterionConfig  # noqa: E402
from fairseq_weam.data.aligned_pair_dataset import AlignedPairDataset, piece_table  # noqa: E402
from fairseq_weam.data.masked_examples import BatchFields  # noqa: E402
from fairseq_weam.data.masking import MaskingParams  # noqa: E402
from fairseq_weam.objectives.losses.prediction_loss import AUTO_CHUNK, prediction_path  # noqa: E402
from fairseq_weam.train_runner import default_threads  # noqa: E402

# ------------------------------------------------------------------------------------------------
# Synthetic data
# ------------------------------------------------------------------------------------------------


def make_dictionary(vocab_size):
    d = Dictionary()
    for i in range(vocab_size - len(d) - 1):
        # two of three symbols open a word (sentencepiece style), the rest continue one
        d.add_symbol(f"\u2581w{i}" if i % 3 else f"w{i}")
    mask_idx = d.add_symbol("<mask>")
    assert len(d) == vocab_size
    return d, mask_idx


def make_dataset(d, mask_idx, n_pairs, min_len, max_len, seed, views=False):
    rng = np.random.default_rng(seed)
    n = len(d) - d.nspecial - 1
    p = 1.0 / np.arange(1, n + 1)  # Zipf-like frequencies over the vocabulary
    p /= p.sum()
    src, tgt, align = [], [], []
    for _ in range(n_pairs):
        ls, lt = rng.integers(min_len, max_len + 1, size=2)
        s = d.nspecial + rng.choice(n, size=ls, p=p)
        t = d.nspecial + rng.choice(n, size=lt, p=p)
        # about 80% of source tokens linked to a nearby target token (not the diagonal)
        i = np.flatnonzero(rng.random(ls) < 0.8)
        j = np.clip(np.round(i * (lt - 1) / max(ls - 1, 1)).astype(int) + rng.integers(-2, 3, size=i.size), 0, lt - 1)
        src.append(torch.from_numpy(np.append(s, d.eos())).long())
        tgt.append(torch.from_numpy(np.append(t, d.eos())).long())
        align.append(torch.from_numpy(np.stack([i, j], 1).reshape(-1)).long())
    sizes = lambda xs: np.array([len(x) for x in xs])  # noqa: E731
    return AlignedPairDataset(
        ListDataset(src, sizes(src)),
        ListDataset(tgt, sizes(tgt)),
        ListDataset(align, sizes(align)),
        d,
        mask_idx=mask_idx,
        pieces=piece_table(d, "sentencepiece", mask_idx),
        params=MaskingParams(),
        seed=seed,
        fields=BatchFields(views=views),
    )


def to_device(sample, device):
    if torch.is_tensor(sample):
        return sample.to(device)
    if isinstance(sample, dict):
        return {k: to_device(v, device) for k, v in sample.items()}
    return sample


def build_batches(ds, n_batches, batch_size, clock):
    """Pre-built batches and the time of getitem + collater for each."""
    batches, getitem_s, collate_s = [], [], []
    for b in range(n_batches):
        t0 = clock()
        items = [ds[i] for i in range(b * batch_size, (b + 1) * batch_size)]
        t1 = clock()
        batches.append(ds.collater(items))
        t2 = clock()
        getitem_s.append(t1 - t0)
        collate_s.append(t2 - t1)
    return batches, getitem_s, collate_s


# ------------------------------------------------------------------------------------------------
# Training steps and measurements
# ------------------------------------------------------------------------------------------------


def build_model(args, d, seed):
    task = argparse.Namespace(
        source_dictionary=d, target_dictionary=d, dictionary=d, max_positions=lambda: args.max_positions
    )
    margs = argparse.Namespace(
        encoder_layers=args.layers,
        encoder_embed_dim=args.dim,
        encoder_ffn_embed_dim=args.ffn or 4 * args.dim,
        encoder_attention_heads=args.heads,
        tokens_per_sample=args.max_positions,
    )
    torch.manual_seed(seed)
    return RobertaModel.build_model(margs, task), task


def state_bytes(model, optimizer):
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    n += extra_state_bytes(getattr(model, "_bench_criterion", None))
    for st in optimizer.state.values():
        n += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v) and v.dim() > 0)
    return n


DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def extra_state_bytes(criterion):
    """Training state a criterion keeps beside the model (contrastive queue, momentum encoder)."""

    def size(x):
        if torch.is_tensor(x):
            return x.numel() * x.element_size()
        if isinstance(x, dict):
            return sum(size(v) for v in x.values())
        return 0

    return size(criterion.training_state()) if hasattr(criterion, "training_state") else 0


def make_optimizer(model, device, dtype=torch.float32):
    """The Adam fairseq's ``--optimizer adam`` builds: apex FusedAdam on CUDA when installed,
    else fairseq's own (per-parameter) Adam. Half-precision models get fairseq's own Adam, which
    does its arithmetic and keeps its state in fp32 (as ``--memory-efficient-fp16`` would; no
    loss scaling here: the benchmark measures speed and memory, not convergence)."""
    from fairseq.optim.adam import Adam
    from fairseq.optim.fused_adam import get_fused_adam_class

    cls = get_fused_adam_class() if device.type == "cuda" and dtype == torch.float32 else None
    return (cls or Adam)(model.parameters(), lr=1e-4)


def train_step(model, criterion, optimizer, sample, update=True):
    optimizer.zero_grad(set_to_none=True)
    loss, sample_size, log = criterion(model, sample)
    loss.backward()
    if update:
        optimizer.step()
        if hasattr(criterion, "after_optimizer_step"):  # the momentum key encoder's update
            criterion.after_optimizer_step(model)
    return float(loss.detach()), log


def cpu_step_peak(fn):
    """Peak bytes of tensor storages created during ``fn`` and live at the same time."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        fn()
    live = peak = 0
    created = set()
    for _, action, (key, _version), size in prof._memory_profile().timeline:
        if key.device.type != "cpu":
            continue
        if action == Action.CREATE:
            created.add(key)
            live += size
        elif action == Action.DESTROY and key in created:
            live -= size
        peak = max(peak, live)
    return peak


def cuda_step_peak(fn):
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def run_vocab(args, vocab, device):
    d, mask_idx = make_dictionary(vocab)
    ctr = args.contrastive_queue_size > 0
    ds = make_dataset(
        d, mask_idx, args.batch_size * (args.warmup + args.steps + 1), args.min_len, args.max_len, args.seed, ctr
    )
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    batches, getitem_s, collate_s = build_batches(ds, args.warmup + args.steps + 1, args.batch_size, clock)
    batches = [to_device(b, device) for b in batches]

    base_model, task = build_model(args, d, args.seed)
    criteria = {
        "masked_lm": MaskedLmLoss(MaskedLmConfig(tpu=False), task),
        "weam": WeamCriterion(WeamCriterionConfig(xl_lambda=1.0), task),
        "weam-unchunked": WeamCriterion(WeamCriterionConfig(xl_lambda=1.0, vocab_chunk_size=0), task),
        "weam-chunked": WeamCriterion(WeamCriterionConfig(xl_lambda=1.0, vocab_chunk_size=args.chunk_rows), task),
    }
    criteria = {k: v for k, v in criteria.items() if k in args.criteria}
    if ctr:
        criteria["weam+ctr"] = WeamCriterion(WeamCriterionConfig(xl_lambda=1.0, contrastive_weight=1.0), task)
        criteria["weam+xlco"] = WeamCriterion(
            WeamCriterionConfig(
                xl_lambda=1.0,
                contrastive_weight=1.0,
                contrastive_queue_size=args.contrastive_queue_size,
                contrastive_momentum=args.contrastive_momentum,
            ),
            task,
        )
    runs = {}
    for name, crit in criteria.items():
        model = copy.deepcopy(base_model).to(device=device, dtype=DTYPES[args.dtype]).train()
        opt = make_optimizer(model, device, DTYPES[args.dtype])
        model._bench_criterion = crit
        runs[name] = dict(model=model, crit=crit, opt=opt, times=[], losses=[])
    del base_model

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    order = list(runs.items())
    for step in range(args.warmup + args.steps):
        sample = batches[step]
        # The order rotates every step: each criterion runs first, second, ... equally often (who
        # runs right after whom changes the allocator's and the caches' state).
        k = step % len(order)
        for name, r in order[k:] + order[:k]:
            sync()
            t0 = clock()
            loss, _ = train_step(r["model"], r["crit"], r["opt"], sample)
            sync()
            if step >= args.warmup:
                r["times"].append(clock() - t0)
            r["losses"].append(loss)

    # Memory: one more (untimed) step per criterion on the same batch.
    last = batches[-1]
    peak_fn = cuda_step_peak if device.type == "cuda" else cpu_step_peak
    for name, r in runs.items():
        r["state"] = state_bytes(r["model"], r["opt"])
        r["fb_peak"] = peak_fn(lambda: train_step(r["model"], r["crit"], r["opt"], last, update=False))
        r["peak"] = peak_fn(lambda: train_step(r["model"], r["crit"], r["opt"], last))
        del r["model"], r["opt"]
        if device.type == "cuda":
            torch.cuda.empty_cache()

    ntok = statistics.mean(int(b["ntokens"]) for b in batches[args.warmup : args.warmup + args.steps])
    nmasked = statistics.mean(int(b["target"].ne(d.pad()).sum()) for b in batches)
    nxl = statistics.mean(int(b["xl_target"].ne(d.pad()).sum()) for b in batches)
    data_s = statistics.median(g + c for g, c in zip(getitem_s, collate_s))
    rows = []
    for name, r in runs.items():
        step_s = statistics.median(r["times"])
        rows.append(
            dict(
                vocab=vocab,
                criterion=name,
                step_s=step_s,
                wps=ntok / step_s,
                state=r["state"],
                peak=r["peak"],
                fb_peak=r["fb_peak"],
                data_pct=100.0 * data_s / (data_s + step_s),
                first_loss=r["losses"][0] / max(nmasked, 1),
            )
        )
    ref = next((row for row in rows if row["criterion"] == "masked_lm"), None)
    for row in rows:
        if ref is not None:
            row["speed_ratio"] = row["wps"] / ref["wps"]
            row["peak_ratio"] = row["peak"] / ref["peak"]
            row["fb_ratio"] = row["fb_peak"] / ref["fb_peak"]
            row["total_ratio"] = (row["state"] + row["peak"]) / (ref["state"] + ref["peak"])
    by_name = {row["criterion"]: row for row in rows}
    if "weam+ctr" in by_name and "weam+xlco" in by_name:
        a, b = by_name["weam+xlco"], by_name["weam+ctr"]
        a["vs_ctr"] = dict(
            wps=a["wps"] / b["wps"],
            peak=a["peak"] / b["peak"],
            total=(a["state"] + a["peak"]) / (b["state"] + b["peak"]),
        )
    info = dict(
        vocab=vocab,
        tokens_per_batch=ntok,
        masked_per_batch=nmasked,
        xl_per_batch=nxl,
        getitem_ms=1000 * statistics.median(getitem_s),
        collate_ms=1000 * statistics.median(collate_s),
    )
    return rows, info


def mib(n):
    return f"{n / 2**20:,.0f}"


def load_average():
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"


def print_table(rows, infos, args, device):
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"\n## device: {dev}; {args.dtype}; torch {torch.__version__}; RoBERTa {args.layers} layers, dim {args.dim}, "
        f"ffn {args.ffn or 4 * args.dim}, heads {args.heads}; batch {args.batch_size} pairs of "
        f"{args.min_len}-{args.max_len}+{args.min_len}-{args.max_len} tokens; "
        f"{args.steps} timed steps after {args.warmup} warm-up; chunk rows {args.chunk_rows}; "
        f"clock: {'CPU seconds of the process' if args.clock == 'cpu' else 'wall'}; default head: "
        f"{prediction_path(torch.zeros(1, device=device), AUTO_CHUNK)}; {load_average()} at the end\n"
    )
    for info in infos:
        print(
            f"vocab {info['vocab']:,}: {info['tokens_per_batch']:.0f} tokens/batch, "
            f"{info['masked_per_batch']:.0f} masked, "
            f"{info['xl_per_batch']:.0f} with a cross-lingual target; data: getitem {info['getitem_ms']:.1f} ms + "
            f"collater {info['collate_ms']:.1f} ms per batch"
        )
    print()
    head = (
        "| vocab | criterion | step s | words/s | words/s ratio | fwd+bwd peak MiB | fwd+bwd ratio | step peak MiB "
        "| state MiB | total MiB | total ratio | data % |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        print(
            f"| {r['vocab']:,} | {r['criterion']} | {r['step_s']:.3f} | {r['wps']:,.0f} | "
            f"{r.get('speed_ratio', float('nan')):.3f} | "
            f"{mib(r['fb_peak'])} | {r.get('fb_ratio', float('nan')):.3f} | {mib(r['peak'])} | {mib(r['state'])} | "
            f"{mib(r['state'] + r['peak'])} | {r.get('total_ratio', float('nan')):.3f} | {r['data_pct']:.2f} |"
        )
    for r in rows:
        if "vs_ctr" in r:
            v = r["vs_ctr"]
            print(
                f"\nvocab {r['vocab']:,}: weam+xlco (queue {args.contrastive_queue_size}, momentum "
                f"{args.contrastive_momentum}) / weam+ctr (in-batch): words/s {v['wps']:.3f}, step peak "
                f"{v['peak']:.3f}, total memory {v['total']:.3f}"
            )
    sys.stdout.flush()


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--ffn", type=int, default=0, help="FFN dim (default 4 x dim)")
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--vocabs", default="32000,250000", help="comma-separated vocabulary sizes")
    p.add_argument("--batch-size", type=int, default=16, help="pairs per batch")
    p.add_argument("--min-len", type=int, default=20, help="min tokens per sentence")
    p.add_argument("--max-len", type=int, default=60, help="max tokens per sentence (pair <= 2 x this + 4)")
    p.add_argument("--max-positions", type=int, default=128)
    p.add_argument("--steps", type=int, default=4, help="timed steps per criterion")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--chunk-rows", type=int, default=128, help="rows per chunk for weam-chunked")
    p.add_argument(
        "--criteria",
        default="masked_lm,weam,weam-unchunked",
        help="comma-separated rows among masked_lm, weam, weam-unchunked, weam-chunked (default: %(default)s)",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default="fp32",
        help="model precision (fp16 / bf16: the whole model cast, as fairseq's --memory-efficient-fp16; GPU)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="torch CPU threads (default: this machine's cores, %(default)s; 0 = torch's own default)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: perf_counter; cpu: CPU seconds of this process (time.process_time), robust to other "
        "processes sharing the cores; meaningful with --threads 1 on CPU (idle OpenMP threads spin)",
    )
    p.add_argument(
        "--contrastive-queue-size",
        type=int,
        default=0,
        help="K > 0: also the rows weam+ctr (in-batch InfoNCE) and weam+xlco (queue of K keys + momentum encoder)",
    )
    p.add_argument("--contrastive-momentum", type=float, default=0.999, help="momentum of weam+xlco's key encoder")
    args = p.parse_args(argv)
    if 2 * args.max_len + 4 > args.max_positions:
        p.error("--max-positions must be >= 2 * --max-len + 4")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and args.device != "cpu":
        p.error("--clock cpu is for --device cpu")
    args.criteria = args.criteria.split(",")
    device = torch.device(args.device)
    print(f"apex xentropy on this device: {prediction_path(torch.zeros(1, device=device)) == 'apex'}", flush=True)
    print(f"start: {load_average()}", flush=True)
    rows, infos = [], []
    for vocab in (int(v) for v in args.vocabs.split(",")):
        t0 = time.time()
        r, info = run_vocab(args, vocab, device)
        rows += r
        infos.append(info)
        print(f"[vocab {vocab:,} done in {time.time() - t0:.0f} s]", file=sys.stderr, flush=True)
        print_table(r, [info], args, device)
    if len(infos) > 1:
        print_table(rows, infos, args, device)


if __name__ == "__main__":
    main()
