"""Zero-shot XNLI: convert MNLI / XNLI TSVs to fairseq ``sentence_prediction`` data with the
pre-training model's sentencepiece model and dictionary, fine-tune on English with the real
``fairseq-train --task sentence_prediction``, and evaluate on every XNLI language.

Layout written by :func:`prepare_data` (what ``--task sentence_prediction`` reads)::

    OUT/input0/{split}.{bin,idx}, dict.txt    premise pieces (the pre-training dict.txt)
    OUT/input1/{split}.{bin,idx}, dict.txt    hypothesis pieces
    OUT/label/{split}.{bin,idx}, dict.txt     entailment / neutral / contradiction
    OUT/splits.json                           {split: {"source": file, "lang": lang, "n": n}}

Splits: ``train`` (English MNLI), ``valid`` (English only: XNLI dev ``en`` when given, else MNLI
dev), ``xnli_dev_{lang}`` and ``xnli_test_{lang}`` for every language in the XNLI files.
"""

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import sentencepiece as spm
import torch

import fairseq_weam

from ..prepare.tokenize import pretokenizer_for
from .embeddings import load_checkpoint, model_args

logger = logging.getLogger(__name__)

LABELS = ("entailment", "neutral", "contradiction")
# XNLI-MT's translated MNLI training files spell one label differently.
LABEL_ALIASES = {"contradictory": "contradiction"}
# The order of the XNLI paper's tables.
XNLI_LANGS = ("en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur")
HEAD = "sentence_classification_head"

# Model config keys that decide parameter shapes; fine-tuning must rebuild the same encoder.
SHAPE_KEYS = (
    "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
    "max_positions", "activation_fn", "pooler_activation_fn",
)
SHAPE_FLAGS = ("untie_weights_roberta", "encoder_normalize_before", "no_token_positional_embeddings")

Example = Tuple[Optional[str], str, str, str]  # (language or None, premise, hypothesis, label)


class NliFormatError(ValueError):
    """An NLI TSV that is neither GLUE MNLI, XNLI-1.0 nor XNLI-MT; names the file."""


def read_nli_tsv(path: str) -> List[Example]:
    """Labelled examples of a GLUE MNLI TSV (``sentence1``, ``sentence2``, ``gold_label``),
    an XNLI-1.0 TSV (the same plus ``language``) or an XNLI-MT TSV (``premise``, ``hypo``,
    ``label``), told apart by the header. Rows without a gold label (``-``, test files) are
    skipped. GLUE's MNLI has stray quotes, so no quote processing (as GLUE's own loaders)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if header is None:
            raise NliFormatError(f"{path}: empty file")
        col = {name: k for k, name in enumerate(header)}
        if {"sentence1", "sentence2", "gold_label"} <= col.keys():
            keys = ("sentence1", "sentence2", "gold_label")
        elif {"premise", "hypo", "label"} <= col.keys():
            keys = ("premise", "hypo", "label")
        else:
            raise NliFormatError(
                f"{path}: header {header[:12]} has neither sentence1/sentence2/gold_label (GLUE MNLI, XNLI-1.0) "
                f"nor premise/hypo/label (XNLI-MT)"
            )
        k1, k2, kl = (col[k] for k in keys)
        kl_lang = col.get("language")
        out = []
        for lineno, row in enumerate(rows, 2):
            if len(row) <= max(k1, k2, kl):
                raise NliFormatError(f"{path}:{lineno}: {len(row)} columns, header has {len(header)}")
            label = LABEL_ALIASES.get(row[kl].strip(), row[kl].strip())
            if label not in LABELS:
                continue
            lang = row[kl_lang].strip() if kl_lang is not None else None
            out.append((lang, row[k1].strip(), row[k2].strip(), label))
    if not out:
        raise NliFormatError(f"{path}: no labelled examples")
    return out


def by_language(examples: Sequence[Example], default: str = "en") -> "OrderedDict[str, List[Example]]":
    groups = {}
    for ex in examples:
        groups.setdefault(ex[0] or default, []).append(ex)
    order = [l for l in XNLI_LANGS if l in groups] + sorted(l for l in groups if l not in XNLI_LANGS)
    return OrderedDict((l, groups[l]) for l in order)


def _write_raw(sp, pretokenize, raw_dir: str, split: str, examples: Sequence[Example]) -> None:
    def pieces(text):
        return " ".join(sp.encode(pretokenize(text), out_type=str))

    with open(os.path.join(raw_dir, f"{split}.input0"), "w", encoding="utf-8") as f0, open(
        os.path.join(raw_dir, f"{split}.input1"), "w", encoding="utf-8"
    ) as f1, open(os.path.join(raw_dir, f"{split}.label"), "w", encoding="utf-8") as fl:
        for _, premise, hypothesis, label in examples:
            f0.write(pieces(premise) + "\n")
            f1.write(pieces(hypothesis) + "\n")
            fl.write(label + "\n")


def _binarize(raw_dir: str, splits: Sequence[str], key: str, dict_path: str, dest: str) -> None:
    """Binarize one input column of every split exactly as ``fairseq-preprocess --only-source
    --srcdict`` does (whitespace tokens, </s> appended, mmap format), but in-process: the
    preprocess CLI only knows train/valid/test names and costs seconds of start-up per call."""
    from fairseq.data import Dictionary, indexed_dataset

    os.makedirs(dest, exist_ok=True)
    shutil.copyfile(dict_path, os.path.join(dest, "dict.txt"))
    dictionary = Dictionary.load(dict_path)
    for split in splits:
        prefix = os.path.join(dest, split)
        builder = indexed_dataset.make_builder(prefix + ".bin", impl="mmap", vocab_size=len(dictionary))
        with open(os.path.join(raw_dir, f"{split}.{key}"), encoding="utf-8") as f:
            for line in f:
                builder.add_item(dictionary.encode_line(line, add_if_not_exist=False, append_eos=True).long())
        builder.finalize(prefix + ".idx")


def prepare_data(
    out_dir: str,
    spm_model: str,
    dict_path: str,
    mnli_train: str,
    mnli_dev: Optional[str] = None,
    xnli_dev: Optional[str] = None,
    xnli_test: Optional[str] = None,
    max_train: Optional[int] = None,
) -> Dict[str, dict]:
    """Write the sentence_prediction data dir; return the split table (also in splits.json)."""
    if not (mnli_dev or xnli_dev):
        raise ValueError("need an English validation set: --mnli-dev or --xnli-dev")
    if not (xnli_dev or xnli_test):
        raise ValueError("need XNLI evaluation data: --xnli-dev and/or --xnli-test")
    sp = spm.SentencePieceProcessor(model_file=spm_model)
    # Normalize like the pre-training text was (CJK split into characters when prepared so).
    pretokenize = pretokenizer_for(os.path.dirname(os.path.abspath(spm_model)))
    splits = OrderedDict()
    train = read_nli_tsv(mnli_train)
    if any(lang not in (None, "en") for lang, *_ in train):
        raise ValueError(f"{mnli_train}: the zero-shot training set must be English only")
    splits["train"] = (mnli_train, "en", train[:max_train] if max_train else train)
    xnli = {name: by_language(read_nli_tsv(p)) for name, p in (("dev", xnli_dev), ("test", xnli_test)) if p}
    if "dev" in xnli and "en" in xnli["dev"]:
        # Model selection on English dev keeps the other languages truly zero-shot.
        splits["valid"] = (xnli_dev, "en", xnli["dev"]["en"])
    else:
        splits["valid"] = (mnli_dev, "en", read_nli_tsv(mnli_dev))
    for name, path in (("dev", xnli_dev), ("test", xnli_test)):
        for lang, examples in xnli.get(name, {}).items():
            splits[f"xnli_{name}_{lang}"] = (path, lang, examples)

    raw_dir = os.path.join(out_dir, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    for split, (_, _, examples) in splits.items():
        _write_raw(sp, pretokenize, raw_dir, split, examples)
    label_dict = os.path.join(raw_dir, "label.dict.txt")
    with open(label_dict, "w") as f:
        # A fixed label order, so label ids do not depend on training-set frequencies.
        f.writelines(f"{label} 1\n" for label in LABELS)
    for key, srcdict in (("input0", dict_path), ("input1", dict_path), ("label", label_dict)):
        _binarize(raw_dir, list(splits), key, srcdict, os.path.join(out_dir, key))
    table = {s: {"source": os.path.abspath(p), "lang": l, "n": len(ex)} for s, (p, l, ex) in splits.items()}
    with open(os.path.join(out_dir, "splits.json"), "w") as f:
        json.dump(table, f, indent=2)
    return table


def architecture_args(pretrained: str) -> List[str]:
    """fairseq-train flags that rebuild the pre-trained encoder with identical shapes."""
    args = model_args(load_checkpoint(pretrained))
    get = (lambda k: args.get(k)) if hasattr(args, "get") else (lambda k: getattr(args, k, None))
    out = ["--arch", get("arch") or "roberta"]
    for key in SHAPE_KEYS:
        if get(key) is not None:
            out += ["--" + key.replace("_", "-"), str(get(key))]
    out += ["--" + key.replace("_", "-") for key in SHAPE_FLAGS if get(key)]
    return out


def finetune_command(
    pretrained: str,
    data_dir: str,
    save_dir: str,
    max_update: int = 10000,
    lr: float = 1e-5,
    batch_size: int = 32,
    warmup_ratio: float = 0.06,
    extra_args: Sequence[str] = (),
) -> List[str]:
    """The fairseq-train command of the fairseq RoBERTa GLUE recipe, restoring the pre-trained
    encoder with --finetune-from-model (so a rerun resumes from save_dir's checkpoint_last.pt)."""
    from fairseq.data import Dictionary

    d = Dictionary.load(os.path.join(data_dir, "input0", "dict.txt"))
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "fairseq-train"), data_dir,
        # The plugin makes checkpoint loading work (safely) on torch >= 2.6.
        "--user-dir", os.path.dirname(fairseq_weam.__file__),
        "--finetune-from-model", os.path.abspath(pretrained),
        "--task", "sentence_prediction", "--num-classes", str(len(LABELS)),
        "--init-token", str(d.bos()), "--separator-token", str(d.eos()),
        "--shorten-method", "truncate",
        "--criterion", "sentence_prediction", "--classification-head-name", HEAD,
        *architecture_args(pretrained),
        "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-6", "--weight-decay", "0.1",
        "--lr", str(lr), "--lr-scheduler", "polynomial_decay", "--total-num-update", str(max_update),
        "--warmup-updates", str(max(1, int(warmup_ratio * max_update))), "--max-update", str(max_update),
        "--batch-size", str(batch_size), "--clip-norm", "0.0",
        "--best-checkpoint-metric", "accuracy", "--maximize-best-checkpoint-metric",
        "--no-epoch-checkpoints", "--find-unused-parameters", "--save-dir", save_dir,
    ]
    if not torch.cuda.is_available() and "--cpu" not in extra_args:
        cmd.append("--cpu")
    return cmd + list(extra_args)


def finetune(pretrained: str, data_dir: str, save_dir: str, log_path: Optional[str] = None, **kwargs) -> str:
    """Run fairseq-train; return the path of checkpoint_best.pt (best English dev accuracy)."""
    cmd = finetune_command(pretrained, data_dir, save_dir, **kwargs)
    os.makedirs(save_dir, exist_ok=True)
    log_path = log_path or os.path.join(save_dir, "finetune.log")
    logger.info("fine-tuning: %s (log: %s)", " ".join(cmd), log_path)
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-20:])
        raise RuntimeError(f"fairseq-train failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    return os.path.join(save_dir, "checkpoint_best.pt")


@torch.no_grad()
def evaluate(checkpoint: str, data_dir: str, splits: Optional[Sequence[str]] = None, batch_size: int = 64) -> Dict[str, dict]:
    """Accuracy of a fine-tuned checkpoint on each split (default: every xnli_* split)."""
    from fairseq import checkpoint_utils

    with open(os.path.join(data_dir, "splits.json")) as f:
        table = json.load(f)
    splits = list(splits) if splits else [s for s in table if s.startswith("xnli_")]
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data_dir})
    model = models[0].eval()
    results = OrderedDict()
    for split in splits:
        task.load_dataset(split)
        itr = task.get_batch_iterator(
            dataset=task.dataset(split), max_sentences=batch_size, max_positions=task.max_positions(),
            ignore_invalid_inputs=False,
        ).next_epoch_itr(shuffle=False)
        correct = total = 0
        for sample in itr:
            logits, _ = model(**sample["net_input"], features_only=True, classification_head_name=HEAD)
            correct += logits.argmax(-1).eq(sample["target"].view(-1)).sum().item()
            total += sample["target"].numel()
        results[split] = {"lang": table[split]["lang"], "n": total, "accuracy": correct / total if total else 0.0}
    return results


def format_table(results: Dict[str, dict]) -> str:
    """The paper table: one row per XNLI split kind (dev / test), per-language accuracy + avg."""
    rows = OrderedDict()
    for split, r in results.items():
        kind = split.rsplit("_", 1)[0] if split.startswith("xnli_") else split
        rows.setdefault(kind, OrderedDict())[r["lang"]] = r["accuracy"]
    langs = [l for l in XNLI_LANGS if any(l in r for r in rows.values())]
    langs += sorted({l for r in rows.values() for l in r} - set(langs))
    lines = ["| split | " + " | ".join(langs) + " | avg |", "|---" * (len(langs) + 2) + "|"]
    for kind, accs in rows.items():
        cells = [f"{100 * accs[l]:.1f}" if l in accs else "-" for l in langs]
        avg = 100 * sum(accs.values()) / len(accs)
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {avg:.1f} |")
    return "\n".join(lines) + "\n"
