"""Zero-shot XNLI: convert MNLI / XNLI TSVs to fairseq ``sentence_prediction`` data with the
pre-training model's sentencepiece model and dictionary, fine-tune on English with the real
``fairseq-train --task sentence_prediction``, and evaluate on every XNLI language.

Layout written by :func:`prepare_data` (what ``--task sentence_prediction`` reads)::

    OUT/input0/{split}.{bin,idx}, dict.txt    premise pieces (the pre-training dict.txt)
    OUT/input1/{split}.{bin,idx}, dict.txt    hypothesis pieces
    OUT/label/{split}.{bin,idx}, dict.txt     entailment / neutral / contradiction
    OUT/splits.json                           {split: {"source": file, "lang": lang, "n": n}}

Modules, one job each: :mod:`.tsv` (the TSV dialects), :mod:`.data` (the data directory),
:mod:`.finetune` (the fine-tune command), :mod:`.evaluate` (accuracy, predictions, table). The
names below are the package's API (``from fairseq_weam.evaluation import xnli``).

Splits: ``train`` (English MNLI), ``valid`` (English only: XNLI dev ``en`` when given, else MNLI
dev), ``xnli_dev_{lang}`` and ``xnli_test_{lang}`` for every language in the XNLI files.
"""

from fairseq_weam.evaluation.xnli.data import prepare_data
from fairseq_weam.evaluation.xnli.evaluate import evaluate, format_table
from fairseq_weam.evaluation.xnli.finetune import HEAD, architecture_args, finetune, finetune_command
from fairseq_weam.evaluation.xnli.tsv import (
    LABELS,
    XNLI_LANGS,
    NliFormatError,
    by_language,
    read_label_file,
    read_nli_tsv,
    read_sources,
)

__all__ = [
    "HEAD",
    "LABELS",
    "XNLI_LANGS",
    "NliFormatError",
    "architecture_args",
    "by_language",
    "evaluate",
    "finetune",
    "finetune_command",
    "format_table",
    "prepare_data",
    "read_label_file",
    "read_nli_tsv",
    "read_sources",
]
