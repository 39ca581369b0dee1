"""``apply``: one slice of the corpus -> one shard directory, with the files ``fit`` wrote.

Slice K of N holds lines ``[n*K//N, n*(K+1)//N)`` of every pair's training text. The slice is cut
into chunks of ``chunk_lines`` lines; each chunk runs the stage chain (read -> pretokenize ->
encode -> check -> align -> binarize) in a worker process and is saved as one file, written
under a temporary name and renamed, so a killed run resumes at the first chunk not yet done.
When all are done, each dataset is written by streaming the chunk files in order, and the shard
directory appears by rename, complete. Memory is bounded by the chunk size and the fitted files,
whatever the corpus size. Every shard also gets the valid split fitted by ``fit``, so shards made
on different machines are interchangeable and combine as ``OUT/shard0:OUT/shard1:...``.
"""

import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
from tqdm import tqdm

from fairseq_weam.core.data_dir import DICT, SPM_MODEL
from fairseq_weam.core.outdir import check_output_dir, publish
from fairseq_weam.prepare import aligners, binarize, stages, textio
from fairseq_weam.prepare import summary as summary_mod
from fairseq_weam.prepare.errors import BadLines, PrepareError
from fairseq_weam.prepare.fit import MANIFEST, VALID_PREFIX, load_manifest, sha256

STATE = "state.json"
SPLITS = ("train", "valid")


@dataclass(frozen=True)
class Slice:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, spec: str) -> "Slice":
        k, sep, n = spec.partition("/")
        try:
            s = cls(int(k), int(n))
        except ValueError:
            raise PrepareError(f"--slice must be K/N with 0 <= K < N, got {spec!r}") from None
        if not sep or not 0 <= s.index < s.count:
            raise PrepareError(f"--slice must be K/N with 0 <= K < N, got {spec!r}")
        return s

    def lines(self, n: int) -> Tuple[int, int]:
        return n * self.index // self.count, n * (self.index + 1) // self.count

    def __str__(self):
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Task:
    """One chunk: lines of a split of a pair."""

    split: str
    pair: str
    index: int
    files: textio.PairFiles
    span: textio.Span

    @property
    def name(self) -> str:
        return f"{self.split}.{self.pair}.{self.index:06d}"


# -- work done in each worker process -------------------------------------------------------

_WORKER: dict = {}


def _init_worker(model_dir: str, manifest: dict, chunk_dir: str, threads: int) -> None:
    _WORKER.clear()
    _WORKER.update(
        model_dir=model_dir,
        manifest=manifest,
        chunk_dir=chunk_dir,
        threads=threads,
        vocab=stages.Vocab.load(model_dir),
        aligners={},
        valid_lines={},
    )


def _aligner(pair: str):
    w = _WORKER
    if pair not in w["aligners"]:
        aligner = aligners.get(w["manifest"]["options"]["aligner"])
        w["aligners"][pair] = aligner.load(pair, w["model_dir"], w["chunk_dir"])  # None: imported links
    return w["aligners"][pair]


def _valid_lines(pair: str) -> np.ndarray:
    """Training lines that fit moved to the valid split (excluded from every shard's train)."""
    w = _WORKER
    if pair not in w["valid_lines"]:
        path = os.path.join(w["model_dir"], f"{VALID_PREFIX}.{pair}.lines")
        w["valid_lines"][pair] = (
            np.loadtxt(path, dtype=np.int64, ndmin=1) if os.path.getsize(path) else np.zeros(0, dtype=np.int64)
        )
    return w["valid_lines"][pair]


def _chunk_file(task: Task) -> str:
    return os.path.join(_WORKER["chunk_dir"], task.name + ".npz")


def run_task(task: Task) -> dict:
    """The chain over one chunk, saved to its chunk file; returns its statistics. A chunk file
    already there (from an interrupted run) is reused."""
    path = _chunk_file(task)
    if os.path.exists(path):
        with np.load(path) as z:
            return json.loads(str(z["meta"]))
    o = _WORKER["manifest"]["options"]
    vocab = _WORKER["vocab"]
    bad = BadLines(o["skip_bad_lines"])
    chunk = stages.encoded_chunk(
        task.files,
        task.span,
        bad,
        vocab,
        split_cjk=_WORKER["manifest"]["pretokenize"]["split_cjk"],
        max_positions=o["max_positions"],
        imported=aligners.get(o["aligner"]).imported,
        threads=_WORKER["threads"],
    )
    if task.split == "train":
        stages.drop_lines(chunk, _valid_lines(task.pair))
    b = stages.binarize(stages.align(chunk, vocab, _aligner(task.pair)), vocab)
    meta = {
        "stats": b.stats.to_json(),
        "dropped": {task.pair: dict(bad.dropped(task.pair))},
        "lines_read": task.span.stop - task.span.start,
    }
    tmp = path + ".tmp.npz"
    np.savez(
        tmp,
        meta=np.array(json.dumps(meta)),
        src_flat=b.src[0],
        src_len=b.src[1],
        tgt_flat=b.tgt[0],
        tgt_len=b.tgt[1],
        align_flat=b.align[0],
        align_len=b.align[1],
    )
    os.replace(tmp, path)
    return meta


# -- the shard as a whole --------------------------------------------------------------------


def _check_inputs(manifest: dict, trainpref: str) -> Dict[str, textio.PairFiles]:
    """The pairs' training files, refused unless they are the ones fitted (same size and lines)."""
    o = manifest["options"]
    files = {}
    for pair in manifest["lang_pairs"]:
        s, t = pair.split("-")
        f = textio.locate(trainpref, s, t, aligners.get(o["aligner"]).link_suffix(o["align_suffix"]))
        fitted = manifest["inputs"][pair]["train"]
        sizes = [os.path.getsize(p) for p in f.paths]
        if sizes != fitted["bytes"]:
            raise PrepareError(
                f"{pair}: {' '.join(f.paths)} ({sizes} bytes) are not the files fitted ({' '.join(fitted['files'])}, "
                f"{fitted['bytes']} bytes); apply a slice of the corpus the model was fitted on"
            )
        files[pair] = f
    return files


def _tasks(
    manifest: dict, model_dir: str, files: Dict[str, textio.PairFiles], sl: Slice, chunk_lines: int
) -> List[Task]:
    tasks = []
    o = manifest["options"]
    for pair, f in files.items():
        n = manifest["inputs"][pair]["train"]["lines"]
        a, b = sl.lines(n)
        n_found, spans = textio.split_spans(f, a, b, chunk_lines)
        if n_found != n:
            raise PrepareError(
                f"{pair}: {f.paths[0]} has {n_found} lines, but {n} were fitted; apply a slice of the fitted corpus"
            )
        tasks += [Task("train", pair, k, f, span) for k, span in enumerate(spans)]
        s, t = pair.split("-")
        suffix = aligners.get(o["aligner"]).link_suffix(o["align_suffix"])
        vf = textio.locate(os.path.join(model_dir, VALID_PREFIX), s, t, suffix)
        tasks += [
            Task("valid", pair, k, vf, span) for k, span in enumerate(textio.split_spans(vf, 0, None, chunk_lines)[1])
        ]
    return tasks


def _run(tasks: List[Task], model_dir: str, manifest: dict, chunk_dir: str, workers: int, threads: int) -> List[dict]:
    if workers <= 1:
        _init_worker(model_dir, manifest, chunk_dir, threads)
        return [run_task(t) for t in tqdm(tasks, desc="chunks", unit="chunk")]
    # fork: the workers share the parent's imports; the parent has run no aligner or encoder yet
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(model_dir, manifest, chunk_dir, threads)) as pool:
        return list(tqdm(pool.imap(run_task, tasks), total=len(tasks), desc="chunks", unit="chunk"))


def _write_datasets(dest: str, chunk_dir: str, tasks: List[Task], vocab_size: int) -> None:
    """Each dataset of each split and pair, streamed from its chunk files in order."""
    groups: Dict[Tuple[str, str], List[str]] = {}
    for t in tasks:
        groups.setdefault((t.split, t.pair), []).append(os.path.join(chunk_dir, t.name + ".npz"))
    for (split, pair), paths in groups.items():
        s, t = pair.split("-")
        prefixes = {
            "src": binarize.pair_prefix(dest, split, s, t, s),
            "tgt": binarize.pair_prefix(dest, split, s, t, t),
            "align": binarize.align_prefix(dest, split, s, t),
        }
        for ds, prefix in prefixes.items():

            def chunks(ds=ds):
                for p in paths:
                    with np.load(p) as z:
                        yield z[f"{ds}_flat"], z[f"{ds}_len"]

            binarize.write_stream(prefix, chunks, None if ds == "align" else vocab_size)


def apply_into(
    model_dir: str,
    manifest: dict,
    trainpref: str,
    sl: Slice,
    dest: str,
    chunk_dir: str,
    *,
    workers: int = 1,
    threads: int = 1,
    chunk_lines: int = 50000,
) -> Tuple[dict, Dict[str, dict]]:
    """Write slice ``sl``'s datasets into the existing directory ``dest``, using ``chunk_dir``
    for the chunk files (finished ones are reused). Returns (per pair statistics, timings)."""
    timings = {}
    t0 = time.perf_counter()
    files = _check_inputs(manifest, trainpref)
    tasks = _tasks(manifest, model_dir, files, sl, chunk_lines)
    os.makedirs(chunk_dir, exist_ok=True)
    metas = _run(tasks, model_dir, manifest, chunk_dir, workers, threads)
    timings["chunks"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vocab_size = manifest["dictionary"]["size"]
    _write_datasets(dest, chunk_dir, tasks, vocab_size)
    timings["write"] = time.perf_counter() - t0
    per_pair: Dict[str, dict] = {}
    for task, meta in zip(tasks, metas):
        # valid lines were read (and counted) from the input by fit, not here
        e = per_pair.setdefault(
            task.pair,
            {
                "lines_read": {"train": 0, "valid": manifest["fit"][task.pair]["lines_read"].get("valid", 0)},
                "dropped": {},
                "stats": {split: stages.Stats() for split in SPLITS},
            },
        )
        if task.split == "train":
            e["lines_read"]["train"] += meta["lines_read"]
        stages.merge_counts({task.pair: e["dropped"]}, meta["dropped"])
        e["stats"][task.split] += stages.Stats.from_json(meta["stats"])
    return per_pair, timings


def pair_summary(lines_read: dict, dropped: dict, stats: Dict[str, stages.Stats]) -> dict:
    total = stages.Stats()
    for s in stats.values():
        total += s
    return summary_mod.pair_entry(
        lines_read,
        {split: stats[split].kept for split in SPLITS},
        dropped,
        links=total.links,
        coverage={side: float(total.linked_words[k] / max(total.words[k], 1)) for k, side in enumerate(("src", "tgt"))},
        words={side: int(total.words[k]) for k, side in enumerate(("src", "tgt"))},
        unk_tokens=total.unk,
    )


def tokens_per_language(per_pair: Dict[str, dict]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for pair, e in per_pair.items():
        for k, lang in enumerate(pair.split("-")):
            out[lang] = out.get(lang, 0) + int(sum(int(s.tokens[k]) for s in e["stats"].values()))
    return dict(sorted(out.items()))


def copy_fitted(model_dir: str, dest: str) -> None:
    """What fairseq-train and evaluation read next to the data: dictionary and sentencepiece model."""
    for name in (DICT, SPM_MODEL, "spm.vocab"):
        if os.path.exists(os.path.join(model_dir, name)):
            shutil.copyfile(os.path.join(model_dir, name), os.path.join(dest, name))


@dataclass
class ApplyOptions:
    model: str
    trainpref: str
    out: str
    slice: Slice = Slice()
    workers: int = 1
    chunk_lines: int = 50000
    overwrite: bool = False


def apply(opts: ApplyOptions) -> dict:
    """Prepare one shard; resumes an interrupted run of the same shard. Returns its summary."""
    t_start = time.perf_counter()
    manifest = load_manifest(opts.model)
    if opts.chunk_lines < 1:
        raise PrepareError("--chunk-lines must be at least 1")
    out = check_output_dir(opts.out, opts.overwrite, [opts.model])
    # A fixed partial name (not a random one) is what lets a rerun find the finished chunks.
    work = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.partial")
    state = {
        "manifest_sha256": sha256(os.path.join(opts.model, MANIFEST)),
        "slice": str(opts.slice),
        "trainpref": os.path.abspath(opts.trainpref),
        "chunk_lines": opts.chunk_lines,
    }
    state_path = os.path.join(work, STATE)
    resumed = False
    if os.path.isdir(work):
        try:
            with open(state_path, encoding="utf-8") as f:
                resumed = json.load(f) == state
        except (OSError, ValueError):
            pass
        if not resumed:
            shutil.rmtree(work)
    if not resumed:
        os.makedirs(work)
        with open(state_path, "w", encoding="utf-8") as f:
            json.dump(state, f)
    else:
        done = len(os.listdir(os.path.join(work, "chunks"))) if os.path.isdir(os.path.join(work, "chunks")) else 0
        print(f"resuming {work}: {done} chunk(s) already done", flush=True)
    chunk_dir = os.path.join(work, "chunks")
    per_pair, timings = apply_into(
        opts.model,
        manifest,
        opts.trainpref,
        opts.slice,
        work,
        chunk_dir,
        workers=opts.workers,
        chunk_lines=opts.chunk_lines,
    )
    copy_fitted(opts.model, work)
    shutil.copyfile(os.path.join(opts.model, MANIFEST), os.path.join(work, MANIFEST))
    timings["total"] = time.perf_counter() - t_start
    result = {
        "output": out,
        "model": os.path.abspath(opts.model),
        "manifest_sha256": state["manifest_sha256"],
        "slice": str(opts.slice),
        "options": manifest["options"],
        "pretokenize": manifest["pretokenize"],
        "sentencepiece": manifest["sentencepiece"],
        "dictionary": manifest["dictionary"],
        "lang_pairs": manifest["lang_pairs"],
        "pairs": {pair: pair_summary(e["lines_read"], e["dropped"], e["stats"]) for pair, e in per_pair.items()},
        "tokens_per_language": tokens_per_language(per_pair),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    summary_mod.write_summary(work, result)
    shutil.rmtree(chunk_dir)
    os.remove(state_path)
    publish(work, out)
    return result
