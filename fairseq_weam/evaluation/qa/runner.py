"""Zero-shot QA end to end: fine-tune on English SQuAD, predict and score every eval file.

``run_qa(model_dir, train_file, eval_files, out_dir, ...)`` is the whole job; ``OUT`` holds

* ``finetune/model``: the fine-tuned transformers model (+ ``finetune/settings.json``, what it was
  trained from and how; a later run with the same settings reuses it, other settings are refused),
  ``finetune/last``: the state after the latest finished epoch (resume), ``finetune/train_log.jsonl``;
* ``predictions/NAME.json``: ``{question id: answer}`` in the official scripts' format, with
  ``NAME.key.json`` saying which model / file / windows produced it (reused when they match);
* ``qa.json`` (scores per file and averages) and ``qa.md`` (the table printed at the end).
"""

import json
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence

from fairseq_weam.core.atomic import write_json_atomic
from fairseq_weam.core.device import Precision
from fairseq_weam.core.errors import OptionError, OutputDirError
from fairseq_weam.core.file_digest import sha256 as file_sha256
from fairseq_weam.evaluation.qa import data as qa_data
from fairseq_weam.evaluation.qa import metrics
from fairseq_weam.evaluation.qa.data import QADataError
from fairseq_weam.evaluation.qa.finetune import (
    FinetuneConfig,
    WindowConfig,
    config_dict,
    finetune,
    has_qa_head,
    load_model,
    predict,
)

logger = logging.getLogger(__name__)


def model_fingerprint(model_dir: str) -> List[list]:
    """Names, sizes and modification times of the directory's files (hashing GBs of weights is slow)."""
    return [
        [name, st.st_size, st.st_mtime_ns]
        for name in sorted(os.listdir(model_dir))
        for st in [os.stat(os.path.join(model_dir, name))]
        if os.path.isfile(os.path.join(model_dir, name))
    ]


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def eval_names(eval_files: Sequence[str]) -> Dict[str, str]:
    """Result key (file name without .json) -> path; two files of one name are refused."""
    names = {}
    for path in eval_files:
        name = os.path.basename(path)[:-5] if path.endswith(".json") else os.path.basename(path)
        if name in names:
            raise OptionError(
                f"--eval: two eval files are both named {name!r} ({names[name]}, {path}); results are keyed by name"
            )
        names[name] = path
    return names


def model_identity_of(model_dir: str) -> dict:
    return {"model": os.path.abspath(model_dir), "model_files": model_fingerprint(model_dir)}


def finetuned_model(
    model_dir: str,
    train_file: Optional[str],
    out_dir: str,
    cfg: FinetuneConfig,
    window: WindowConfig,
    precision: Precision,
    max_train: Optional[int] = None,
    model_identity: Optional[dict] = None,
) -> str:
    """The model to evaluate: ``model_dir`` itself without ``train_file``, else its (reused) fine-tune."""
    if train_file is None:
        if not has_qa_head(model_dir):
            raise QADataError(
                f"{model_dir} has no trained question-answering head (config.json architectures); "
                "give --train to fine-tune it"
            )
        return os.path.abspath(model_dir)
    save_dir = os.path.join(out_dir, "finetune")
    settings = {
        **(model_identity or model_identity_of(model_dir)),
        "train_sha256": file_sha256(train_file),
        "max_train": max_train,
        **config_dict(cfg, window),
    }
    for k in ("max_answer_length", "n_best"):  # prediction-time only
        settings.pop(k)
    settings_path = os.path.join(save_dir, "settings.json")
    final = os.path.join(save_dir, "model")
    if os.path.isfile(settings_path):
        old = _read_json(settings_path)
        if old != settings:
            diff = ", ".join(
                f"{k}: {old.get(k)!r} -> {settings.get(k)!r}"
                for k in sorted(set(old) | set(settings))
                if old.get(k) != settings.get(k) and k != "model_files"
            )
            raise OutputDirError(
                f"{save_dir} holds a fine-tune with other settings ({diff or 'model files changed'}); "
                "use another --out or delete that directory"
            )
        if os.path.isdir(final):
            print(f"reusing the fine-tuned model {final}", flush=True)
            return final
    examples = qa_data.read_squad(train_file, training=True)
    if max_train is not None:
        examples = examples[:max_train]
    os.makedirs(save_dir, exist_ok=True)
    write_json_atomic(settings_path, settings)
    return finetune(model_dir, examples, save_dir, cfg, window, precision)


def score_file(path: str, predictions: Dict[str, str], examples=None, scheme: Optional[str] = None) -> dict:
    """EM / F1 of ``predictions`` on one eval file, with the file's benchmark and languages."""
    info = qa_data.describe_file(path)
    scheme = scheme or info.scheme
    examples = examples if examples is not None else qa_data.read_squad(path)
    if qa_data.has_gold(examples):
        scores = {
            "scored": True,
            **metrics.score(qa_data.gold_answers(examples), predictions, info.context_lang, scheme),
        }
    else:
        print(
            f"warning: {path}: every answer is blank (XTREME's test copies remove them); predictions written, "
            "not scored. Score with the original file.",
            file=sys.stderr,
            flush=True,
        )
        scores = {
            "scored": False,
            "exact_match": None,
            "f1": None,
            "n": len(examples),
            "answered": sum(ex.id in predictions for ex in examples),
        }
    return {
        "file": os.path.abspath(path),
        "benchmark": info.benchmark,
        "context_lang": info.context_lang,
        "question_lang": info.question_lang,
        "split": info.split,
        "setting": info.setting,
        "normalization": scheme,
        **scores,
    }


def averages(results: Dict[str, dict]) -> Dict[str, dict]:
    """Unweighted means over the scored files of each group: ``mlqa_SPLIT_xlt`` and
    ``mlqa_SPLIT_gxlt`` (MLQA's dev and test never mixed) and ``xquad`` (the papers' averages)."""
    groups: Dict[str, list] = {}
    for r in results.values():
        if not r["scored"] or r["benchmark"] == "squad":
            continue
        key = "xquad" if r["benchmark"] == "xquad" else f"mlqa_{r['split']}_{r['setting'].replace('-', '').lower()}"
        groups.setdefault(key, []).append(r)
    return {
        key: {
            "files": len(rows),
            "exact_match": sum(r["exact_match"] for r in rows) / len(rows),
            "f1": sum(r["f1"] for r in rows) / len(rows),
        }
        for key, rows in sorted(groups.items())
    }


def _average_label(key: str) -> str:
    if key == "xquad":
        return "XQuAD"
    _, split, setting = key.split("_")
    return f"MLQA {split} {'XLT' if setting == 'xlt' else 'G-XLT'}"


def format_table(results: Dict[str, dict], avgs: Dict[str, dict]) -> str:
    lines = [
        "| eval file | benchmark | context | question | setting | questions | EM | F1 |",
        "|---|---|---|---|---|---:|---:|---:|",
    ]
    for name, r in results.items():
        scores = f"{r['exact_match']:.1f} | {r['f1']:.1f}" if r["scored"] else "no gold | no gold"
        lines.append(
            f"| {name} | {r['benchmark']} | {r['context_lang'] or '-'} | {r['question_lang'] or '-'} | "
            f"{r['setting']} | {r['n']} | {scores} |"
        )
    for key, a in avgs.items():
        lines.append(
            f"| **average {_average_label(key)}** ({a['files']} file{'s' * (a['files'] > 1)}) | | | | | | "
            f"{a['exact_match']:.1f} | {a['f1']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run_qa(
    model_dir: str,
    train_file: Optional[str],
    eval_files: Sequence[str],
    out_dir: str,
    precision: Precision,
    cfg: Optional[FinetuneConfig] = None,
    window: Optional[WindowConfig] = None,
    max_train: Optional[int] = None,
    eval_batch_size: int = 64,
    scheme: Optional[str] = None,
    model_identity: Optional[dict] = None,
) -> dict:
    """Fine-tune (or reuse), predict every eval file (or reuse), score, write ``OUT/qa.json`` / ``qa.md``.

    ``scheme`` forces one answer normalization for every file (``squad`` / ``mlqa``); None picks
    each benchmark's own (MLQA: mlqa with the context language; others: squad).
    ``model_identity`` (JSON-able) stands for ``model_dir`` in what decides reuse; a caller that
    exports a fairseq checkpoint to a fresh temporary directory passes e.g. the checkpoint's path
    and sha256, so a rerun still reuses the fine-tune and predictions. Default: ``model_dir``'s
    path and its files' names, sizes and modification times.
    """
    cfg, window = cfg or FinetuneConfig(), window or WindowConfig()
    names = eval_names(eval_files)
    # Read and check every eval file before hours of fine-tuning.
    eval_examples = {name: qa_data.read_squad(path) for name, path in names.items()}
    for path in names.values():
        info = qa_data.describe_file(path)
        try:
            metrics.check_scheme(scheme or info.scheme, info.context_lang)
        except OptionError as e:
            raise OptionError(f"{path}: {e}") from None
    os.makedirs(out_dir, exist_ok=True)
    model_path = finetuned_model(model_dir, train_file, out_dir, cfg, window, precision, max_train, model_identity)
    # The fine-tune lives in OUT (stable); a model evaluated as it is may be a temporary export.
    evaluated = model_identity_of(model_path) if train_file or model_identity is None else model_identity

    pred_dir = os.path.join(out_dir, "predictions")
    os.makedirs(pred_dir, exist_ok=True)
    loaded = None
    results = {}
    for name, path in names.items():
        key = {**evaluated, "eval": os.path.abspath(path), "eval_sha256": file_sha256(path), **config_dict(window)}
        pred_path, key_path = (os.path.join(pred_dir, f"{name}{ext}") for ext in (".json", ".key.json"))
        if os.path.isfile(pred_path) and os.path.isfile(key_path) and _read_json(key_path) == key:
            print(f"reusing predictions {pred_path}", flush=True)
            predictions = _read_json(pred_path)
        else:
            if loaded is None:
                loaded = load_model(model_path)
            predictions = predict(*loaded, eval_examples[name], window, precision, eval_batch_size, desc=name)
            write_json_atomic(pred_path, predictions)
            write_json_atomic(key_path, key)
        results[name] = score_file(path, predictions, eval_examples[name], scheme)
    avgs = averages(results)
    report = {
        "model": os.path.abspath(model_dir),
        **({"model_identity": model_identity} if model_identity else {}),
        "finetuned": model_path,
        "train": os.path.abspath(train_file) if train_file else None,
        "config": {
            **config_dict(cfg, window),
            "max_train": max_train,
            "precision": precision.name,
            "device": str(precision.device),
        },
        "results": results,
        "averages": avgs,
    }
    table = format_table(results, avgs)
    write_json_atomic(os.path.join(out_dir, "qa.json"), report)
    tmp = os.path.join(out_dir, f"qa.md.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(table)
    os.replace(tmp, os.path.join(out_dir, "qa.md"))
    print(table, end="", flush=True)
    return report
