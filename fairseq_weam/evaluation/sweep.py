"""The imbalance study: pre-train every (objective x sampling alpha x seed) grid point on the
same corpus and budget, evaluate sentence retrieval per held-out language, and report accuracy
against each language's share of the training data.

Every run lives in ``OUT/runs/NAME/`` (``NAME`` = ``SETTING_aALPHA_sSEED``; ``checkpoints/``,
``train.log``, ``result.json``). A run
is finished only when its ``result.json`` exists; it is written atomically (temp file + rename)
after evaluation, so an interrupted sweep reruns exactly the unfinished runs, and their
``fairseq-train`` resumes from ``checkpoint_last.pt``.
"""

import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

from fairseq_weam import train_runner
from fairseq_weam.core.atomic import write_json_atomic
from fairseq_weam.core.errors import OptionError
from fairseq_weam.data.language_sampling import temperature_probs
from fairseq_weam.evaluation.ladder_sweep import subsampled_sizes
from fairseq_weam.evaluation.sweep_base import (
    BASE_OBJECTIVE,
    BASE_SETTING,
    SCRATCH_PREFIX,
    SweepError,
    check_base_checkpoint,
    restore_flags,
)
from fairseq_weam.train_runner import TINY_MODEL, flags, never, run_train

logger = logging.getLogger(__name__)

# InfoXLM's XLCo on top of the InfoNCE: 1024 queued keys as extra negatives, momentum key encoder.
XLCO_ARGS = ["--contrastive-weight", "1.0", "--contrastive-queue-size", "1024", "--contrastive-momentum", "0.999"]
# THE table of objectives: setting name -> extra fairseq-train args (task and criterion weam).
# Adjust here; `fairseq-weam-sweep --setting NAME="ARGS"` adds or overrides entries per sweep.
SETTINGS: "OrderedDict[str, List[str]]" = OrderedDict(
    [
        # Each side of a pair is a separate monolingual masked-LM example (mBERT / XLM-R style).
        ("mlm", ["--bitext-objective", "mlm", "--xl-lambda", "0"]),
        # Concatenated pair, words masked independently, own-token targets only (XLM's TLM).
        ("tlm", ["--bitext-objective", "tlm", "--xl-lambda", "0"]),
        # Aligned words masked together, plus word-exchange targets (lambda 1, as the paper).
        ("weam", ["--bitext-objective", "weam", "--xl-lambda", "1"]),
        # WEAM plus sentence-level InfoNCE over translation pairs (InfoXLM XLCo / LaBSE style).
        ("weam+ctr", ["--bitext-objective", "weam", "--xl-lambda", "1", "--contrastive-weight", "1.0"]),
        # TLM plus the same InfoNCE: weam+ctr vs tlm+ctr is what word exchange adds on top of it.
        ("tlm+ctr", ["--bitext-objective", "tlm", "--xl-lambda", "0", "--contrastive-weight", "1.0"]),
        # WEAM plus InfoNCE between the pooled pieces of one-to-one aligned words (word level).
        ("weam+wctr", ["--bitext-objective", "weam", "--xl-lambda", "1", "--word-contrastive-weight", "1.0"]),
        # The same InfoNCE at the anchors' strength (InfoXLM's XLCo): docs/evaluation.md "Queue and momentum".
        ("tlm+xlco", ["--bitext-objective", "tlm", "--xl-lambda", "0", *XLCO_ARGS]),
        ("weam+xlco", ["--bitext-objective", "weam", "--xl-lambda", "1", *XLCO_ARGS]),
    ]
)
# 1 = natural proportions, 0.7 (XLM), 0.3 (XLM-R's best trade-off).
DEFAULT_ALPHAS = (1.0, 0.7, 0.3)

# The demo budget: the tiny model (train_runner.TINY_MODEL) makes the 12-run grid on the gettext
# corpus finish in about 30 minutes on 2 CPU cores. Scale up with --model-args / --train-args (see
# docs/evaluation.md).
TINY_MODEL_ARGS = flags(TINY_MODEL)
DEMO_TRAIN_ARGS = [
    "--optimizer",
    "adam",
    "--adam-betas",
    "(0.9,0.98)",
    "--lr",
    "1e-3",
    "--lr-scheduler",
    "inverse_sqrt",
    "--warmup-updates",
    "100",
    "--weight-decay",
    "0.01",
    "--batch-size",
    "32",
    "--max-update",
    "1000",
    "--num-workers",
    "0",
    "--disable-validation",
]
# Flags every run gets: one checkpoint to resume from and to evaluate, plain logs.
FIXED_TRAIN_ARGS = ["--no-epoch-checkpoints", "--log-format", "simple", "--log-interval", "50"]


@dataclass
class RunSpec:
    name: str
    setting: str
    alpha: float
    args: List[str] = field(default_factory=list)
    seed: int = 1
    restore: Optional[str] = None  # the base checkpoint a continued run starts from
    subsample: Dict[str, float] = field(default_factory=dict)  # a --ladder rung: {language: fraction}


def run_name(setting: str, alpha: float, seed: int = 1) -> str:
    return f"{setting}_a{alpha:g}_s{seed}"


def setting_args(name: str, table: Optional[Dict[str, List[str]]] = None) -> List[str]:
    """The extra fairseq-train args of setting ``name``: a table entry, or ``NAME@LAMBDA`` (the
    entry ``NAME`` with its exchange weight ``--xl-lambda`` set to ``LAMBDA``, e.g. ``weam+ctr@0.5``)."""
    table = SETTINGS if table is None else table
    if name in table:
        return list(table[name])
    base, sep, value = name.rpartition("@")
    if not sep or base not in table:
        raise OptionError(f"unknown setting {name!r}; known: {list(table)} (and NAME@LAMBDA)")
    try:
        lam = float(value)
    except ValueError:
        raise OptionError(f"setting {name!r}: λ {value!r} is not a number") from None
    args = list(table[base])
    objective = args[args.index("--bitext-objective") + 1] if "--bitext-objective" in args[:-1] else None
    if objective != "weam" or "--xl-lambda" not in args[:-1]:
        raise OptionError(f"setting {name!r}: λ weighs the word-exchange targets, which {base!r} has not")
    args[args.index("--xl-lambda") + 1] = f"{lam:g}"
    return args


def max_update(args: Sequence[str]) -> Optional[int]:
    """The last ``--max-update`` in ``args`` (the one fairseq uses), or None."""
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--max-update"]
    return int(values[-1]) if values else None


def base_spec(seed: int, alpha: float, updates: int, table: Optional[Dict[str, List[str]]] = None) -> RunSpec:
    """The base of one seed: monolingual masked LM for ``updates`` updates."""
    args = setting_args(BASE_OBJECTIVE, table) + ["--sampling-alpha", f"{alpha:g}", "--max-update", str(updates)]
    return RunSpec(f"{BASE_SETTING}_s{seed}", BASE_SETTING, float(alpha), args, int(seed))


def run_dir(out_dir: str, spec: RunSpec) -> str:
    """``OUT/base_sSEED`` for a trained base, else ``OUT/runs/NAME``."""
    if spec.setting == BASE_SETTING:
        return os.path.join(out_dir, spec.name)
    return os.path.join(out_dir, "runs", spec.name)


def scratch_grid(
    settings: Sequence[str],
    alpha: float,
    updates: int,
    table: Optional[Dict[str, List[str]]] = None,
    seeds: Sequence[int] = (1,),
) -> List[RunSpec]:
    """From-scratch controls: each setting from random weights for ``updates`` updates (the base's
    plus the continued runs': the same total), named ``scratch-SETTING``."""
    return [
        RunSpec(
            run_name(SCRATCH_PREFIX + s, alpha, seed),
            SCRATCH_PREFIX + s,
            float(alpha),
            setting_args(s, table) + ["--sampling-alpha", f"{alpha:g}", "--max-update", str(updates)],
            int(seed),
        )
        for seed in seeds
        for s in settings
    ]


def make_grid(
    settings: Sequence[str],
    alphas: Sequence[float],
    table: Optional[Dict[str, List[str]]] = None,
    seeds: Sequence[int] = (1,),
) -> List[RunSpec]:
    """Every setting x alpha, seed by seed: an interrupted sweep has whole grids of the first
    seeds, not all seeds of the first settings."""
    table = SETTINGS if table is None else table
    args = {s: setting_args(s, table) for s in settings}
    if len(set(seeds)) != len(seeds) or not seeds:
        raise OptionError(f"--seeds must be distinct and at least one: {list(seeds)}")
    return [
        RunSpec(run_name(s, a, seed), s, float(a), args[s] + ["--sampling-alpha", f"{a:g}"], int(seed))
        for seed in seeds
        for s in settings
        for a in alphas
    ]


def sampling_shares(sizes: Dict[str, int], alpha: float) -> Dict[str, float]:
    """q_i = p_i^alpha / sum_j p_j^alpha, the share of training examples each pair gets."""
    return dict(zip(sizes, temperature_probs(list(sizes.values()), alpha).tolist()))


def training_sizes(data_dir: str, src_lang: str = "en") -> "OrderedDict[str, int]":
    """Training pairs per language XX of every ``train.SRC-XX`` pair in the data dir."""
    from fairseq.data import data_utils

    from fairseq_weam.core.data_dir import discover_lang_pairs

    sizes = OrderedDict()
    for src, tgt in discover_lang_pairs(data_dir):
        lang = tgt if src == src_lang else src
        ds = data_utils.load_indexed_dataset(os.path.join(data_dir, f"train.{src}-{tgt}.{src}"), None)
        sizes[lang] = len(ds)
    if not sizes:
        raise FileNotFoundError(f"{data_dir}: no train.SRC-TGT.SRC.idx found")
    return sizes


def train_command(
    spec: RunSpec, data_dir: str, run_dir: str, model_args: Sequence[str], train_args: Sequence[str]
) -> List[str]:
    """The run's fairseq-train command; a continued run's first launch (no checkpoint of its own
    yet) starts from the base with fresh optimizer, scheduler, meters and data loader."""
    import torch

    save_dir = os.path.join(run_dir, "checkpoints")
    restore = restore_flags(spec.restore, save_dir)
    cmd = train_runner.train_command(
        data_dir,
        *model_args,
        *train_args,
        *FIXED_TRAIN_ARGS,
        *spec.args,
        "--seed",
        str(spec.seed),
        "--save-dir",
        save_dir,
        *restore,
    )
    if not torch.cuda.is_available() and "--cpu" not in cmd:
        cmd.append("--cpu")
    return cmd


@dataclass
class EvalOptions:
    heldout: str
    src_lang: str = "en"
    pooling: str = "mean"
    layer: str = "middle"
    k: int = 4
    max_sentences: Optional[int] = None
    batch_size: int = 64
    bli: Optional[str] = None  # a directory of SRC-TGT.txt lexicons: word translation too


def evaluate_run(checkpoint: str, data_dir: str, opts: EvalOptions):
    """``(retrieval results per language, the layer index used, BLI results or None)``."""
    from fairseq_weam.evaluation.embeddings import SentenceEncoder
    from fairseq_weam.evaluation.evaluate import evaluate_bli, evaluate_retrieval, find_parallel_sets

    encoder = SentenceEncoder.from_checkpoint(checkpoint, data_dir)
    sets = find_parallel_sets(opts.heldout, opts.src_lang)
    results = evaluate_retrieval(
        encoder, sets, opts.pooling, opts.layer, opts.k, batch_size=opts.batch_size, max_sentences=opts.max_sentences
    )
    bli = evaluate_bli(encoder, opts.bli, layer=opts.layer) if opts.bli else None
    return results, encoder.resolve_layer(opts.layer), bli


def check_cached(result: dict, spec: RunSpec, result_path: str) -> None:
    """A finished run is reused only for the same setting args and the same base."""
    if result.get("args", spec.args) != spec.args or result.get("restore") != spec.restore:
        was = f"args {result.get('args')}, base {result.get('restore')}"
        raise SweepError(
            f"{result_path}: trained with {was}, this sweep asks for args {spec.args}, base {spec.restore}: "
            "use another --out (or delete the run)"
        )


def sizes_record(sizes: Dict[str, int], alpha: float) -> dict:
    total = sum(sizes.values())
    return {
        lang: {"train_pairs": n, "share": n / total, "sampled_share": q}
        for (lang, n), q in zip(sizes.items(), sampling_shares(sizes, alpha).values())
    }


def run_one(
    spec: RunSpec,
    out_dir: str,
    data_dir: str,
    eval_opts: EvalOptions,
    model_args,
    train_args,
    sizes: Dict[str, int],
    threads: Optional[int] = None,
) -> dict:
    """Train (or resume) and evaluate one grid point; return its result (cached if finished)."""
    run_path = run_dir(out_dir, spec)
    result_path = os.path.join(run_path, "result.json")
    if os.path.exists(result_path):
        with open(result_path) as f:
            logger.info("%s: finished earlier, using %s", spec.name, result_path)
            result = json.load(f)
        check_cached(result, spec, result_path)
        if eval_opts.bli and "bli" not in result:  # --bli added to a finished sweep: score its checkpoint
            from fairseq_weam.evaluation.embeddings import SentenceEncoder
            from fairseq_weam.evaluation.evaluate import evaluate_bli

            encoder = SentenceEncoder.from_checkpoint(result["checkpoint"], data_dir)
            result["bli"] = evaluate_bli(encoder, eval_opts.bli, layer=eval_opts.layer)
            write_json_atomic(result_path, result)
        return result
    os.makedirs(run_path, exist_ok=True)
    cmd = train_command(spec, data_dir, run_path, model_args, train_args)
    logger.info("%s: training (log %s)", spec.name, os.path.join(run_path, "train.log"))
    start = time.time()
    # The whole log to train.log (appended: a resumed run keeps the first part), nothing on the console.
    run = run_train(cmd, os.path.join(run_path, "train.log"), show=never, append=True, what=spec.name, threads=threads)
    train_seconds = time.time() - start
    checkpoint = run.checkpoint("checkpoint_last.pt")
    # The last checkpoint, not the "best": every setting gets the same budget, and the
    # objectives' validation losses are not comparable with one another.
    start = time.time()
    retrieval, layer, bli = evaluate_run(checkpoint, data_dir, eval_opts)
    result = {
        **asdict(spec),
        "train_command": cmd,
        "checkpoint": checkpoint,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.time() - start, 1),
        "eval": {**asdict(eval_opts), "layer_index": layer},
        "data": sizes_record(sizes, spec.alpha),
        "retrieval": retrieval,
        **({"bli": bli} if bli is not None else {}),
    }
    write_json_atomic(result_path, result)
    return result


def given_base_results(
    checkpoint: str, out_dir: str, data_dir: str, eval_opts: EvalOptions, sizes: Dict[str, int], alpha: float, seeds
) -> List[dict]:
    """The row of a given base (``--base CKPT``): evaluated once (``OUT/base/result.json``) and
    filed under every seed, so each continued run is paired with it."""
    result_path = os.path.join(out_dir, BASE_SETTING, "result.json")
    if os.path.exists(result_path):
        with open(result_path) as f:
            result = json.load(f)
        if result["checkpoint"] != os.path.abspath(checkpoint):
            raise SweepError(
                f"{result_path}: evaluates {result['checkpoint']}, not --base {checkpoint}: use another --out"
            )
    else:
        os.makedirs(os.path.dirname(result_path), exist_ok=True)
        start = time.time()
        retrieval, layer, bli = evaluate_run(checkpoint, data_dir, eval_opts)
        result = {
            "name": BASE_SETTING,
            "setting": BASE_SETTING,
            "alpha": float(alpha),
            "args": [],
            "restore": None,
            "checkpoint": os.path.abspath(checkpoint),
            "eval_seconds": round(time.time() - start, 1),
            "eval": {**asdict(eval_opts), "layer_index": layer},
            "data": sizes_record(sizes, alpha),
            "retrieval": retrieval,
            **({"bli": bli} if bli is not None else {}),
        }
        write_json_atomic(result_path, result)
    return [{**result, "name": f"{BASE_SETTING}_s{seed}", "seed": seed} for seed in seeds]


def run_sweep(
    out_dir: str,
    data_dir: str,
    eval_opts: EvalOptions,
    grid: Sequence[RunSpec],
    model_args=TINY_MODEL_ARGS,
    train_args=DEMO_TRAIN_ARGS,
    metric: str = "margin",
    min_heldout: int = 100,
    bases: Sequence[RunSpec] = (),
    given_base: Optional[str] = None,
    base_alpha: float = 1.0,
    threads: Optional[int] = None,
) -> List[dict]:
    """Run every grid point (skipping finished ones), then write the tables and the figure.
    ``bases``: the bases to train first (one per seed, cached); ``given_base``: a checkpoint the
    grid continues from instead, checked against the data before anything runs."""
    from fairseq_weam.evaluation import report

    if given_base:
        check_base_checkpoint(given_base, data_dir, model_args)
    os.makedirs(out_dir, exist_ok=True)
    sizes = training_sizes(data_dir, eval_opts.src_lang)
    write_json_atomic(
        os.path.join(out_dir, "sweep.json"),
        {
            "data": os.path.abspath(data_dir),
            "model_args": list(model_args),
            "train_args": list(train_args),
            "seeds": sorted({s.seed for s in grid}),
            "grid": [asdict(s) for s in grid],
            "bases": [asdict(s) for s in bases],
            "given_base": given_base,
            "eval": asdict(eval_opts),
        },
    )
    run_sizes = [subsampled_sizes(sizes, spec.subsample) for spec in grid]  # --ladder rungs, checked up front
    results = []
    for spec in bases:
        logger.info("base of seed %d", spec.seed)
        results.append(run_one(spec, out_dir, data_dir, eval_opts, model_args, train_args, sizes, threads))
    if given_base:
        seeds = sorted({s.seed for s in grid})
        results += given_base_results(given_base, out_dir, data_dir, eval_opts, sizes, base_alpha, seeds)
    for k, spec in enumerate(grid, 1):
        logger.info("run %d/%d: %s", k, len(grid), spec.name)
        results.append(run_one(spec, out_dir, data_dir, eval_opts, model_args, train_args, run_sizes[k - 1], threads))
    report.write_report(results, out_dir, metric, min_heldout)
    return results
