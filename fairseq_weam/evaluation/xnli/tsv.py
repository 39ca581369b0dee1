"""The NLI TSV dialects XNLI evaluation reads: GLUE MNLI, XNLI-1.0, XNLI-MT (told apart by their
header) and XTREME's headerless ``{train,dev,test}-XX.tsv`` (and its label files), as
``(language, premise, hypothesis, label)`` examples."""

import csv
import os
import re
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

from fairseq_weam.core.errors import WeamError
from fairseq_weam.core.text_files import open_text

LABELS = ("entailment", "neutral", "contradiction")
# XNLI-MT's translated MNLI training files spell one label differently.
LABEL_ALIASES = {"contradictory": "contradiction"}
# The order of the XNLI paper's tables.
XNLI_LANGS = ("en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur")
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
    with open_text(path, newline="") as f:
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
                "nor premise/hypo/label (XNLI-MT), and the file is not named as XTREME's headerless "
                "{train,dev,test}-XX.tsv"
            )
        return _read_xtreme(path, m.group(2))
    k1, k2, kl = (col[k] for k in keys)
    kl_lang = col.get("language")
    mt = XNLI_MT_NAME.match(os.path.basename(path))
    file_lang = mt.group(1) if mt else None
    out = []
    with open_text(path, newline="") as f:
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
    with open_text(path, newline="") as f:
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
    with open_text(path) as f:
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
