"""A prepared data directory, as fairseq-weam-prepare writes it and ``--task weam`` reads it:
``dict.txt`` (the shared dictionary), ``train.SRC-TGT.{SRC,TGT}.{bin,idx}`` per language pair
(+ ``.align``), the held-out split, and beside them the sentencepiece model ``spm.model`` and
``summary.json`` (what was prepared and how: its ``pretokenize.split_cjk`` says how new text must be
normalized).

:class:`PreparedData` is the one object that knows these files; evaluation, the Hugging Face
export / import and XNLI read a data directory through it (and :func:`load_dictionary`, the one
dictionary loader, which the task uses too).
"""

import functools
import glob
import json
import os
import re
from typing import Callable, List, Optional, Tuple

import numpy as np
import sentencepiece as spm
from fairseq.data import Dictionary, indexed_dataset

from fairseq_weam.core.errors import WeamDataError
from fairseq_weam.core.pretokenize import pretokenize

DICT = "dict.txt"
SPM_MODEL = "spm.model"
SUMMARY = "summary.json"


def parse_lang_pairs(spec: str) -> List[Tuple[str, str]]:
    pairs = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        src, sep, tgt = item.partition("-")
        if not sep or not src or not tgt:
            raise WeamDataError(f"--lang-pairs: {item!r} is not of the form SRC-TGT")
        pairs.append((src, tgt))
    return pairs


def discover_lang_pairs(data_path: str, split: str = "train") -> List[Tuple[str, str]]:
    """Pairs for which ``SPLIT.SRC-TGT.SRC.idx`` exists, sorted."""
    pattern = re.compile(rf"^{re.escape(split)}\.([^.\-]+)-([^.\-]+)\.([^.]+)\.idx$")
    pairs = set()
    for path in glob.glob(os.path.join(data_path, f"{split}.*-*.*.idx")):
        m = pattern.match(os.path.basename(path))
        if m and m.group(3) == m.group(1) and m.group(2) != "None":  # None: --only-source output
            pairs.add((m.group(1), m.group(2)))
    return sorted(pairs)


def load_dictionary(data_path: str, lang_pairs=(), *, add_mask: bool = False) -> Dictionary:
    """The shared dictionary of a data directory: ``dict.txt``, else ``dict.SRC.txt`` of the
    first pair. ``add_mask``: append ``<mask>`` as the weam and sentence_prediction tasks do when
    they build a model, so the dictionary matches a trained model's embedding table (evaluation,
    export); the task itself adds it in ``setup_task``."""
    candidates = [os.path.join(data_path, DICT)]
    if lang_pairs:
        candidates.append(os.path.join(data_path, f"dict.{lang_pairs[0][0]}.txt"))
    for path in candidates:
        if os.path.exists(path):
            try:
                dictionary = Dictionary.load(path)
            except ValueError as e:  # fairseq: "Incorrect dictionary format, ..."
                raise WeamDataError(f"{path}: not a fairseq dictionary ({' '.join(str(e).split())})") from None
            if add_mask:
                dictionary.add_symbol("<mask>")
            return dictionary
    raise WeamDataError(f"no dictionary found: looked for {' and '.join(candidates)}")


def flat_contents(ds, prefix: str) -> np.ndarray:
    """All items of the indexed dataset ``ds`` (loaded from ``prefix``) concatenated. An mmap
    dataset's ``.bin`` file is exactly that, so it is mapped in one go (its dtype read by fairseq's
    public ``MMapIndexedDataset.Index``); other formats are read item by item."""
    if isinstance(ds, indexed_dataset.MMapIndexedDataset):
        dtype = indexed_dataset.MMapIndexedDataset.Index(indexed_dataset.index_file_path(prefix)).dtype
        total = int(np.asarray(ds.sizes, dtype=np.int64).sum())
        flat = np.memmap(indexed_dataset.data_file_path(prefix), dtype=dtype, mode="r", shape=(total,))
        return flat.view(np.ndarray)  # still mapped; a plain array for the arithmetic
    return np.concatenate([ds[i].numpy() for i in range(len(ds))]) if len(ds) else np.zeros(0, np.int64)


def piece_symbols(sp: spm.SentencePieceProcessor) -> List[Optional[str]]:
    """Piece string per sentencepiece id; None for control and unknown ids (fairseq has its own)."""
    return [None if sp.is_control(i) or sp.is_unknown(i) else sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def spm_to_dict(sp: spm.SentencePieceProcessor, d: Dictionary) -> np.ndarray:
    """Lookup table: sentencepiece id -> fairseq dictionary id (unknowns -> <unk>)."""
    return np.array([d.unk() if s is None else d.index(s) for s in piece_symbols(sp)], dtype=np.int64)


class PreparedData:
    """A data directory as fairseq-weam-prepare wrote it (or fairseq-weam-import-hf: dict.txt and
    spm.model, no summary). ``spm_model`` overrides ``PATH/spm.model`` (``--spm-model``).

    Nothing is read until asked for; the summary and the sentencepiece model are read once."""

    def __init__(self, path: str, spm_model: Optional[str] = None):
        self.path = path
        self.spm_model = spm_model or os.path.join(path, SPM_MODEL)

    def __repr__(self):
        return f"PreparedData({self.path!r})"

    @property
    def dict_path(self) -> str:
        return os.path.join(self.path, DICT)

    def dictionary(self, add_mask: bool = False, lang_pairs=()) -> Dictionary:
        """The shared dictionary (:func:`load_dictionary`); ``add_mask`` as a trained model has it."""
        return load_dictionary(self.path, lang_pairs, add_mask=add_mask)

    def sentencepiece(self) -> spm.SentencePieceProcessor:
        """The sentencepiece model (a WeamDataError naming it when it is missing)."""
        if not hasattr(self, "_sp"):
            if not os.path.isfile(self.spm_model):
                raise WeamDataError(f"sentencepiece model not found: {self.spm_model}")
            self._sp = spm.SentencePieceProcessor(model_file=self.spm_model)
        return self._sp

    @property
    def summary(self) -> dict:
        """``summary.json`` (counts, options, pre-tokenization); ``{}`` for data not prepared by us."""
        if not hasattr(self, "_summary"):
            path = os.path.join(self.path, SUMMARY)
            self._summary = {}
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    self._summary = json.load(f)
        return self._summary

    @property
    def split_cjk(self) -> bool:
        """Whether the text was prepared with each CJK character a word (summary.json)."""
        return bool(self.summary.get("pretokenize", {}).get("split_cjk", False))

    def pretokenizer(self) -> Callable[[str], str]:
        """The :func:`~fairseq_weam.core.pretokenize.pretokenize` the directory was made with, to
        encode new text (held-out sets, NLI data, the exported tokenizer's check) exactly like the
        training text. Data not prepared by us (e.g. XLM-R's own sentencepiece model) gets
        whitespace normalization only."""
        return functools.partial(pretokenize, split_cjk=self.split_cjk)


def pretokenizer_for(data_dir: str) -> Callable[[str], str]:
    """``PreparedData(data_dir).pretokenizer()``."""
    return PreparedData(data_dir).pretokenizer()
