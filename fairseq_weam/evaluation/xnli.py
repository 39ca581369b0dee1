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
import re
import shutil
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import sentencepiece as spm
import torch
from tqdm import tqdm

from fairseq_weam.core.atomic import write_text_atomic
from fairseq_weam.core.checkpoints import check_vocabulary, load_checkpoint, model_args
from fairseq_weam.core.errors import OptionError, WeamError
from fairseq_weam.prepare.tokenize import pretokenizer_for
from fairseq_weam.train_runner import run_train, train_command

logger = logging.getLogger(__name__)

LABELS = ("entailment", "neutral", "contradiction")
# XNLI-MT's translated MNLI training files spell one label differently.
LABEL_ALIASES = {"contradictory": "contradiction"}
# The order of the XNLI paper's tables.
XNLI_LANGS = ("en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur")
HEAD = "sentence_classification_head"

# Model config keys that decide parameter shapes; fine-tuning must rebuild the same encoder.
SHAPE_KEYS = (
    "encoder_layers",
    "encoder_embed_dim",
    "encoder_ffn_embed_dim",
    "encoder_attention_heads",
    "max_positions",
    "activation_fn",
    "pooler_activation_fn",
)
SHAPE_FLAGS = ("untie_weights_roberta", "encoder_normalize_before", "no_token_positional_embeddings")

# (language or None, premise, hypothesis, label; None in XTREME's test files, whose labels are withheld)
Example = Tuple[Optional[str], str, str, Optional[str]]

# XTREME's processed XNLI (download_data.sh): headerless csv-module TSVs named by split and language.
XTREME_NAME = re.compile(r"^(train|dev|test)-([A-Za-z_]+)\.tsv$")
# XNLI-MT's translated training sets name their language only in the file name.
XNLI_MT_NAME = re.compile(r"^multinli\.train\.([A-Za-z_]+)\.tsv$")
NO_GOLD = ("-", "")  # GLUE/SNLI rows whose annotators did not agree: skipped


class NliFormatError(WeamError, ValueError):
    """An NLI TSV that is neither GLUE MNLI, XNLI-1.0, XNLI-MT nor XTREME's; names file and line."""


def _label(path: str, lineno: int, value: str) -> str:
    label = LABEL_ALIASES.get(value.strip(), value.strip())
    if label not in LABELS:
        raise NliFormatError(f"{path}:{lineno}: unknown label {value.strip()!r}; expected one of {', '.join(LABELS)}")
    return label


def read_nli_tsv(path: str) -> List[Example]:
    """Examples of a GLUE MNLI TSV (``sentence1``, ``sentence2``, ``gold_label``), an XNLI-1.0
    TSV (the same plus ``language``), an XNLI-MT TSV (``premise``, ``hypo``, ``label``), told apart
    by the header, or of XTREME's headerless ``{train,dev,test}-XX.tsv`` (premise, hypothesis,
    label; test files without the label column: label None). Rows whose gold label is ``-`` are
    skipped; any other unknown label, or a row with the wrong number of columns, is an error naming
    the line. GLUE's MNLI has stray quotes, so header files get no quote processing (as GLUE's own
    loaders); XTREME wrote its files with Python's csv module, so they are read back with it."""
    with open(path, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), None)
    if header is None:
        raise NliFormatError(f"{path}: empty file")
    col = {name: k for k, name in enumerate(header)}
    if {"sentence1", "sentence2", "gold_label"} <= col.keys():
        keys = ("sentence1", "sentence2", "gold_label")
    elif {"premise", "hypo", "label"} <= col.keys():
        keys = ("premise", "hypo", "label")
    else:
        m = XTREME_NAME.match(os.path.basename(path))
        if not m:
            raise NliFormatError(
                f"{path}: header {header[:12]} has neither sentence1/sentence2/gold_label (GLUE MNLI, XNLI-1.0) "
                f"nor premise/hypo/label (XNLI-MT), and the file is not named as XTREME's headerless {{train,dev,test}}-XX.tsv"
            )
        return _read_xtreme(path, m.group(2))
    k1, k2, kl = (col[k] for k in keys)
    kl_lang = col.get("language")
    mt = XNLI_MT_NAME.match(os.path.basename(path))
    file_lang = mt.group(1) if mt else None
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        for lineno, row in enumerate(rows, 2):
            if len(row) <= max(k1, k2, kl):
                raise NliFormatError(f"{path}:{lineno}: {len(row)} columns, header has {len(header)}")
            if row[kl].strip() in NO_GOLD:
                continue
            lang = row[kl_lang].strip() if kl_lang is not None else file_lang
            out.append((lang, row[k1].strip(), row[k2].strip(), _label(path, lineno, row[kl])))
    if not out:
        raise NliFormatError(f"{path}: no labelled examples")
    return out


def _read_xtreme(path: str, lang: str) -> List[Example]:
    out, width = [], None
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            width = width or len(row)
            if len(row) != width or width not in (2, 3):
                raise NliFormatError(
                    f"{path}:{lineno}: {len(row)} columns; XTREME's files have premise, hypothesis, label "
                    f"(3 columns; 2 in test files){'' if lineno == 1 else f', as line 1 has {width}'}"
                )
            label = _label(path, lineno, row[2]) if width == 3 else None
            out.append((lang, row[0].strip(), row[1].strip(), label))
    if not out:
        raise NliFormatError(f"{path}: empty file")
    return out


def read_label_file(path: str, n: int) -> List[str]:
    """XTREME's gold / submission format: one label per line."""
    with open(path, encoding="utf-8") as f:
        labels = [_label(path, lineno, line) for lineno, line in enumerate(f, 1)]
    if len(labels) != n:
        raise NliFormatError(f"{path}: {len(labels)} labels for {n} examples")
    return labels


def read_sources(paths, split: str, labels_dir: Optional[str] = None) -> List[Example]:
    """Examples of one evaluation split from files and/or directories (a directory stands for
    XTREME's ``{split}-XX.tsv`` in it). Unlabelled XTREME test files take their labels from
    ``labels_dir/test-XX.tsv`` (XTREME's label files) when given."""
    paths = [paths] if isinstance(paths, str) else list(paths or ())
    files = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(
                os.path.join(p, n) for n in os.listdir(p) if XTREME_NAME.match(n) and n.startswith(f"{split}-")
            )
            if not found:
                raise NliFormatError(f"{p}: no XTREME {split}-XX.tsv files in this directory")
            files += found
        else:
            files.append(p)
    out = []
    for path in files:
        examples = read_nli_tsv(path)
        if labels_dir and examples[0][3] is None:
            gold = read_label_file(os.path.join(labels_dir, os.path.basename(path)), len(examples))
            examples = [(l, a, b, g) for (l, a, b, _), g in zip(examples, gold)]
        out += examples
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

    with (
        open(os.path.join(raw_dir, f"{split}.input0"), "w", encoding="utf-8") as f0,
        open(os.path.join(raw_dir, f"{split}.input1"), "w", encoding="utf-8") as f1,
        open(os.path.join(raw_dir, f"{split}.label"), "w", encoding="utf-8") as fl,
    ):
        for _, premise, hypothesis, label in examples:
            f0.write(pieces(premise) + "\n")
            f1.write(pieces(hypothesis) + "\n")
            # sentence_prediction needs a label per row; unlabelled splits are never scored.
            fl.write((label or LABELS[1]) + "\n")


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
    xnli_dev=None,
    xnli_test=None,
    max_train: Optional[int] = None,
    xnli_test_labels: Optional[str] = None,
) -> Dict[str, dict]:
    """Write the sentence_prediction data dir; return the split table (also in splits.json).
    ``xnli_dev`` / ``xnli_test``: a file, a list of files, or XTREME directories (see
    :func:`read_sources`). Unlabelled test sets (XTREME withholds the test labels) become splits
    with ``"labelled": false``, which evaluation predicts but does not score."""
    if not (mnli_dev or xnli_dev):
        raise OptionError("need an English validation set: --mnli-dev or --xnli-dev")
    if not (xnli_dev or xnli_test):
        raise OptionError("need XNLI evaluation data: --xnli-dev and/or --xnli-test")
    sp = spm.SentencePieceProcessor(model_file=spm_model)
    # Normalize like the pre-training text was (CJK split into characters when prepared so).
    pretokenize = pretokenizer_for(os.path.dirname(os.path.abspath(spm_model)))
    splits = OrderedDict()
    train = read_nli_tsv(mnli_train)
    if any(lang not in (None, "en") for lang, *_ in train):
        raise NliFormatError(f"{mnli_train}: the zero-shot training set must be English only")
    if any(ex[3] is None for ex in train):
        raise NliFormatError(f"{mnli_train}: has no labels; the training set must be labelled")
    splits["train"] = (mnli_train, "en", train[:max_train] if max_train else train)
    sources = {name: p for name, p in (("dev", xnli_dev), ("test", xnli_test)) if p}
    xnli = {
        name: by_language(read_sources(p, name, xnli_test_labels if name == "test" else None))
        for name, p in sources.items()
    }
    name_of = {name: ",".join([p] if isinstance(p, str) else p) for name, p in sources.items()}
    if "dev" in xnli and "en" in xnli["dev"] and xnli["dev"]["en"][0][3] is not None:
        # Model selection on English dev keeps the other languages truly zero-shot.
        splits["valid"] = (name_of["dev"], "en", xnli["dev"]["en"])
    elif mnli_dev:
        splits["valid"] = (mnli_dev, "en", read_nli_tsv(mnli_dev))
    else:
        raise OptionError("need a labelled English validation set: --mnli-dev, or --xnli-dev with English")
    for name in ("dev", "test"):
        for lang, examples in xnli.get(name, {}).items():
            if len({ex[3] is None for ex in examples}) > 1:
                raise NliFormatError(f"{name_of[name]}: {lang} {name} examples are partly labelled, partly not")
            splits[f"xnli_{name}_{lang}"] = (name_of[name], lang, examples)

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
    table = {
        s: {
            "source": ",".join(os.path.abspath(x) for x in p.split(",")),
            "lang": l,
            "n": len(ex),
            "labelled": ex[0][3] is not None,
        }
        for s, (p, l, ex) in splits.items()
    }
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
    device_flags: Optional[Sequence[str]] = None,
) -> List[str]:
    """The fairseq-train command of the fairseq RoBERTa GLUE recipe, restoring the pre-trained
    encoder with --finetune-from-model (so a rerun resumes from save_dir's checkpoint_last.pt).
    ``device_flags``: ``--cpu`` / ``--fp16`` / ``--bf16`` as :func:`device.fairseq_train_flags`
    gives them (default: ``--cpu`` when no GPU is visible)."""
    from fairseq.data import Dictionary

    d = Dictionary.load(os.path.join(data_dir, "input0", "dict.txt"))
    # The plugin (--user-dir) makes checkpoint loading work (safely) on torch >= 2.6.
    cmd = train_command(
        data_dir,
        "--finetune-from-model",
        os.path.abspath(pretrained),
        "--num-classes",
        str(len(LABELS)),
        "--init-token",
        str(d.bos()),
        "--separator-token",
        str(d.eos()),
        "--shorten-method",
        "truncate",
        "--classification-head-name",
        HEAD,
        *architecture_args(pretrained),
        "--optimizer",
        "adam",
        "--adam-betas",
        "(0.9,0.98)",
        "--adam-eps",
        "1e-6",
        "--weight-decay",
        "0.1",
        "--lr",
        str(lr),
        "--lr-scheduler",
        "polynomial_decay",
        "--total-num-update",
        str(max_update),
        "--warmup-updates",
        str(max(1, int(warmup_ratio * max_update))),
        "--max-update",
        str(max_update),
        "--batch-size",
        str(batch_size),
        "--clip-norm",
        "0.0",
        "--best-checkpoint-metric",
        "accuracy",
        "--maximize-best-checkpoint-metric",
        "--no-epoch-checkpoints",
        "--find-unused-parameters",
        "--save-dir",
        save_dir,
        task="sentence_prediction",
        criterion="sentence_prediction",
    )
    if device_flags is None:
        device_flags = [] if torch.cuda.is_available() else ["--cpu"]
    cmd += [f for f in device_flags if f not in extra_args]
    return cmd + list(extra_args)


def finetune(pretrained: str, data_dir: str, save_dir: str, log_path: Optional[str] = None, **kwargs) -> str:
    """Run fairseq-train; return the path of checkpoint_best.pt (best English dev accuracy)."""
    cmd = finetune_command(pretrained, data_dir, save_dir, **kwargs)
    os.makedirs(save_dir, exist_ok=True)
    log_path = log_path or os.path.join(save_dir, "finetune.log")
    logger.info("fine-tuning: %s (log: %s)", " ".join(cmd), log_path)
    # Progress lines (train_inner / valid) stream to the console; the full log goes to log_path.
    return run_train(cmd, log_path, what="fine-tuning").checkpoint("checkpoint_best.pt")


@torch.no_grad()
def evaluate(
    checkpoint: str,
    data_dir: str,
    splits: Optional[Sequence[str]] = None,
    batch_size: int = 64,
    device=None,
    dtype=torch.float32,
    predictions_dir: Optional[str] = None,
) -> Dict[str, dict]:
    """Accuracy of a fine-tuned checkpoint on each split (default: every xnli_* split), on
    ``device`` in ``dtype``. Unlabelled splits get accuracy None. With ``predictions_dir``, every
    split's predicted labels are written there in XTREME's submission format (``test-XX.tsv`` /
    ``dev-XX.tsv``: one label per line, in the order of the input file)."""
    from fairseq import checkpoint_utils, utils
    from fairseq.data import Dictionary

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with open(os.path.join(data_dir, "splits.json")) as f:
        table = json.load(f)
    splits = list(splits) if splits else [s for s in table if s.startswith("xnli_")]
    unknown = [s for s in splits if s not in table]
    if unknown:
        raise OptionError(f"--splits: {data_dir}/splits.json has no split {', '.join(unknown)}")
    state = load_checkpoint(checkpoint, {"data": data_dir})
    # sentence_prediction appends <mask> to input0/dict.txt, as the model's embedding table has it.
    dict_path = os.path.join(data_dir, "input0", "dict.txt")
    check_vocabulary(state, len(Dictionary.load(dict_path)) + 1, checkpoint, dict_path)
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [checkpoint], arg_overrides={"data": data_dir}, state=state
    )
    model = models[0].eval().to(device=device, dtype=dtype)
    labels = task.label_dictionary
    results = OrderedDict()
    for split in splits:
        task.load_dataset(split)
        itr = task.get_batch_iterator(
            dataset=task.dataset(split),
            max_sentences=batch_size,
            max_positions=task.max_positions(),
            ignore_invalid_inputs=False,
        ).next_epoch_itr(shuffle=False)
        predicted = [None] * len(task.dataset(split))
        correct = total = 0
        for sample in tqdm(itr, desc=f"evaluating {split}", unit="batch", disable=None, leave=False):
            sample = utils.move_to_cuda(sample, device) if device.type == "cuda" else sample
            logits, _ = model(**sample["net_input"], features_only=True, classification_head_name=HEAD)
            guess = logits.argmax(-1)
            correct += guess.eq(sample["target"].view(-1)).sum().item()
            total += sample["target"].numel()
            # The iterator orders by length; sample ids put the predictions back in file order.
            for i, g in zip(sample["id"].tolist(), guess.tolist()):
                predicted[i] = labels[g + labels.nspecial]
        labelled = table[split].get("labelled", True)
        results[split] = {
            "lang": table[split]["lang"],
            "n": total,
            "accuracy": (correct / total if total else 0.0) if labelled else None,
        }
        if predictions_dir:
            kind = split.split("_")[1]  # xnli_test_de -> test
            write_text_atomic(
                os.path.join(predictions_dir, f"{kind}-{table[split]['lang']}.tsv"),
                "".join(p + "\n" for p in predicted),
            )
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
        cells = [f"{100 * accs[l]:.1f}" if accs.get(l) is not None else "-" for l in langs]
        scored = [a for a in accs.values() if a is not None]  # unlabelled (XTREME test) splits: "-"
        avg = f"{100 * sum(scored) / len(scored):.1f}" if scored else "-"
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {avg} |")
    return "\n".join(lines) + "\n"
