"""The ``weam`` task: pre-training on word-aligned parallel text (WEAM, and TLM without links)."""

import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from fairseq import utils
from fairseq.data import ConcatDataset, Dictionary, ResamplingDataset, data_utils
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II

from fairseq_weam.core.checks import one_line_errors
from fairseq_weam.core.data_dir import discover_lang_pairs, flat_contents, load_dictionary, parse_lang_pairs
from fairseq_weam.core.errors import OptionError, WeamDataError
from fairseq_weam.core.indexed_files import check_indexed
from fairseq_weam.data.aligned_pair_dataset import WORD_BOUNDARIES, AlignedPairDataset, piece_table
from fairseq_weam.data.alignment import AlignmentError, validate_binarized_alignments
from fairseq_weam.data.language_sampling import (
    IndexSubsetDataset,
    cap_indices,
    parse_caps,
    resampling_ratios,
    sampling_table,
    temperature_probs,
)
from fairseq_weam.data.masked_examples import BatchFields
from fairseq_weam.data.masked_sentence_dataset import MaskedSentenceDataset
from fairseq_weam.data.masking import XL_POSITIONS, XL_TARGETS, MaskingParams
from fairseq_weam.data.subsample import resolve_subsample
from fairseq_weam.tasks.checks import check_task
from fairseq_weam.tasks.subsample_streams import check_fractions, kept_note, subsample_stream

BITEXT_OBJECTIVES = ("weam", "tlm", "mlm")

logger = logging.getLogger(__name__)


@dataclass
class WeamConfig(FairseqDataclass):
    data: str = field(
        default="",
        metadata={
            "help": "colon-separated data directories (one per epoch, round robin), each with "
            "dict.txt and, per pair SRC-TGT and split, fairseq-preprocess output: "
            "SPLIT.SRC-TGT.SRC, SPLIT.SRC-TGT.TGT and SPLIT.align.SRC-TGT"
        },
    )
    lang_pairs: str = field(
        default="",
        metadata={"help": "comma-separated language pairs, e.g. en-de,en-fr; empty = every pair found in the data"},
    )
    bitext_objective: ChoiceEnum(BITEXT_OBJECTIVES) = field(
        default="weam",
        metadata={
            "help": "what the parallel pairs train: weam (aligned words masked together, cross-lingual "
            "targets; reads SPLIT.align.SRC-TGT), tlm (words of the concatenated pair masked "
            "independently, alignments not read), mlm (each side a separate monolingual example)"
        },
    )
    mono_langs: str = field(
        default="",
        metadata={
            "help": "comma-separated languages with monolingual MLM data, read from "
            "SPLIT.LANG-None.LANG (fairseq-preprocess --only-source output)"
        },
    )
    sampling_alpha: float = field(
        default=1.0,
        metadata={
            "help": "temperature sampling over streams (language pairs and monolingual languages) in "
            "training: q_i ~ p_i^alpha; 1 = natural proportions, 0.3 = XLM-R, 0 = uniform"
        },
    )
    lang_caps: str = field(
        default="",
        metadata={
            "help": "per-stream caps on training data, e.g. en-sw:200,en-fr:50000tok,de:1000 "
            "(examples, or tokens with a tok suffix); a fixed random subset chosen by --seed"
        },
    )
    subsample: str = field(
        default="",
        metadata={
            "help": "keep a fraction of streams' training pairs, e.g. el:0.1,de:0.3 (a share ladder): LANG names "
            "every pair with LANG on one side (el -> en-el) and the monolingual stream LANG, SRC-TGT one pair; "
            "fraction in (0, 1]; keeps round-half-up(fraction x pairs) pairs, a fixed nested subset that "
            "depends only on the stream name, its size and the fraction (not on --seed or the objective); "
            "valid sets are untouched; applied before --lang-caps"
        },
    )
    tokens_per_sample: int = field(
        default=256,
        metadata={"help": "max tokens of a laid-out pair <s> x </s></s> y </s> (also the model's max positions)"},
    )
    mask_prob: float = field(default=0.3, metadata={"help": "share of words selected for masking (WEAM paper: 0.3)"})
    leave_unmasked_prob: float = field(default=0.1, metadata={"help": "share of masked tokens left unchanged"})
    random_token_prob: float = field(
        default=0.1, metadata={"help": "share of masked tokens replaced by a random token"}
    )
    word_boundary: ChoiceEnum(WORD_BOUNDARIES) = field(
        default="sentencepiece",
        metadata={
            "help": "how words are found among subwords: sentencepiece (U+2581 opens a word) or token (every token is "
            "a word)"
        },
    )
    xl_positions: ChoiceEnum(XL_POSITIONS) = field(
        default="first",
        metadata={
            "help": "which subwords of a masked aligned word carry the cross-lingual target: first or all "
            "(a word's cross-lingual weight is 1 in total either way)"
        },
    )
    xl_target: ChoiceEnum(XL_TARGETS) = field(
        default="first-content",
        metadata={
            "help": "what a masked aligned word predicts of its partner: first-content (the partner's first "
            "piece that is more than the word-start marker) or all-pieces (every content piece, each "
            "weighted 1/n); the partner of a one-to-many link is the rarest by dictionary count"
        },
    )
    seed: int = II("common.seed")
    train_subset: str = II("dataset.train_subset")
    dataset_impl: Optional[str] = II("dataset.dataset_impl")
    # Read by setup_task's checks (tasks/checks.py): an explicit --restore-file must exist, and a
    # --tokens-per-sample shorter than the data is refused unless skipping was asked for.
    restore_file: Optional[str] = II("checkpoint.restore_file")
    skip_invalid_size_inputs_valid_test: bool = II("dataset.skip_invalid_size_inputs_valid_test")


@register_task("weam", dataclass=WeamConfig)
class WeamTask(FairseqTask):
    """Pre-training on word-aligned parallel pairs (WEAM, TLM or MLM), optionally mixed with
    monolingual MLM streams, with temperature sampling and caps over the streams.

    A *stream* is one language pair (``en-fr``) or one monolingual language (``fr``); batches mix
    streams, every example carries its stream index, and the criterion logs per stream.
    """

    cfg: WeamConfig

    def __init__(self, cfg: WeamConfig, dictionary: Dictionary, lang_pairs, mono_langs=()):
        super().__init__(cfg)
        self.dictionary = dictionary
        self.lang_pairs = list(lang_pairs)
        self.mono_langs = list(mono_langs)
        self.stream_names = [f"{s}-{t}" for s, t in self.lang_pairs] + list(self.mono_langs)
        self.stream_kinds = ["pair"] * len(self.lang_pairs) + ["mono"] * len(self.mono_langs)
        # Optional batch fields (contrastive views...), switched on by the criterion's terms.
        self.batch_fields = BatchFields()
        if len(set(self.stream_names)) != len(self.stream_names):
            raise OptionError(f"--lang-pairs / --mono-langs name a stream twice: {self.stream_names}")
        self.caps = parse_caps(cfg.lang_caps)
        unknown = sorted(set(self.caps) - set(self.stream_names))
        if unknown:
            raise OptionError(f"--lang-caps names unknown streams {unknown}; streams are {self.stream_names}")
        self.subsample = resolve_subsample(cfg.subsample, self.stream_names)
        self.mask_idx = dictionary.add_symbol("<mask>")
        self.pieces = piece_table(dictionary, cfg.word_boundary, self.mask_idx)
        self.masking = MaskingParams(
            mask_prob=cfg.mask_prob,
            leave_unmasked_prob=cfg.leave_unmasked_prob,
            random_token_prob=cfg.random_token_prob,
            xl_positions=cfg.xl_positions,
            xl_target=cfg.xl_target,
        )

    @classmethod
    def setup_task(cls, cfg: WeamConfig, **kwargs):
        if not kwargs.get("from_checkpoint"):
            one_line_errors()  # under fairseq-train: a WeamError from here on is one line, not a traceback
        paths = utils.split_paths(cfg.data)
        if not paths:
            raise WeamDataError("no data directory given")
        for path in paths:
            if not os.path.isdir(path):
                raise WeamDataError(f"data directory not found: {path}")
        lang_pairs = parse_lang_pairs(cfg.lang_pairs) or discover_lang_pairs(paths[0])
        if not lang_pairs:
            raise WeamDataError(f"{paths[0]}: no language pairs given and none found (train.SRC-TGT.SRC.idx)")
        mono_langs = [lang.strip() for lang in cfg.mono_langs.split(",") if lang.strip()]
        check_task(cfg, paths, lang_pairs, mono_langs, from_checkpoint=kwargs.get("from_checkpoint", False))
        dictionary = load_dictionary(paths[0], lang_pairs)
        logger.info(
            "language pairs: %s; monolingual: %s; dictionary: %d types",
            ",".join(f"{s}-{t}" for s, t in lang_pairs),
            ",".join(mono_langs) or "-",
            len(dictionary),
        )
        task = cls(cfg, dictionary, lang_pairs, mono_langs)
        task.subsample_kept = check_fractions(task.subsample, paths[0], cfg.train_subset, cfg.dataset_impl)
        return task

    def _load_indexed(self, prefix: str, dictionary=None):
        check_indexed(prefix)  # a truncated file: named, instead of an AttributeError inside fairseq
        ds = data_utils.load_indexed_dataset(prefix, dictionary, self.cfg.dataset_impl)
        if ds is None:
            raise WeamDataError(f"missing data file: {prefix}.bin / {prefix}.idx")
        return ds

    def _dataset_kwargs(self, stream: int, side: int = 0):
        return dict(
            mask_idx=self.mask_idx,
            pieces=self.pieces,
            params=self.masking,
            seed=self.cfg.seed,
            stream=stream,
            side=side,
            fields=self.batch_fields,
        )

    def _cap(self, name: str, datasets, sizes, split: str):
        """Apply --subsample, then --lang-caps, to the aligned raw datasets of one stream (training split only)."""
        if split != self.cfg.train_subset:
            return datasets
        datasets, sizes = subsample_stream(name, datasets, sizes, self.subsample.get(name))
        cap = self.caps.get(name)
        if cap is None:
            return datasets
        keep = cap_indices(sizes, cap, self.cfg.seed)
        logger.info("%s: capped to %d of %d examples (%s)", name, len(keep), len(sizes), cap)
        return [None if ds is None else IndexSubsetDataset(ds, keep) for ds in datasets]

    def load_pair(self, data_path: str, split: str, src: str, tgt: str, stream: int):
        stem = os.path.join(data_path, f"{split}.{src}-{tgt}.")
        src_ds = self._load_indexed(stem + src, self.dictionary)
        tgt_ds = self._load_indexed(stem + tgt, self.dictionary)
        if len(src_ds) != len(tgt_ds):
            raise WeamDataError(f"{stem}{src} has {len(src_ds)} sentences but {stem}{tgt} has {len(tgt_ds)}")
        align_ds = None
        if self.cfg.bitext_objective == "weam":
            align_prefix = os.path.join(data_path, f"{split}.align.{src}-{tgt}")
            align_ds = self._load_indexed(align_prefix)
            if len(align_ds) != len(src_ds):
                raise WeamDataError(
                    f"{align_prefix} has {len(align_ds)} alignment lines but {stem}{src} has {len(src_ds)} sentences"
                )
            self._validate_alignments(align_ds, src_ds, tgt_ds, align_prefix)
        sizes = np.asarray(src_ds.sizes, dtype=np.int64) + np.asarray(tgt_ds.sizes, dtype=np.int64)
        src_ds, tgt_ds, align_ds = self._cap(f"{src}-{tgt}", [src_ds, tgt_ds, align_ds], sizes, split)
        if self.cfg.bitext_objective == "mlm":
            return ConcatDataset(
                [
                    MaskedSentenceDataset(ds, self.dictionary, **self._dataset_kwargs(stream, side))
                    for side, ds in enumerate((src_ds, tgt_ds))
                ]
            )
        return AlignedPairDataset(src_ds, tgt_ds, align_ds, self.dictionary, **self._dataset_kwargs(stream))

    def load_mono(self, data_path: str, split: str, lang: str, stream: int):
        sentences = self._load_indexed(os.path.join(data_path, f"{split}.{lang}-None.{lang}"), self.dictionary)
        (sentences,) = self._cap(lang, [sentences], np.asarray(sentences.sizes), split)
        return MaskedSentenceDataset(sentences, self.dictionary, **self._dataset_kwargs(stream))

    def _validate_alignments(self, align_ds, src_ds, tgt_ds, path):
        counts = np.asarray(align_ds.sizes, dtype=np.int64)
        flat = flat_contents(align_ds, path)
        try:
            validate_binarized_alignments(
                counts, flat, np.asarray(src_ds.sizes) - 1, np.asarray(tgt_ds.sizes) - 1, path=path + ".bin"
            )
        except AlignmentError as e:
            raise WeamDataError(str(e)) from None

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        paths = utils.split_paths(self.cfg.data)
        data_path = paths[(epoch - 1) % len(paths)]
        streams = [self.load_pair(data_path, split, s, t, i) for i, (s, t) in enumerate(self.lang_pairs)]
        streams += [self.load_mono(data_path, split, lang, len(streams) + i) for i, lang in enumerate(self.mono_langs)]
        if split == self.cfg.train_subset:
            streams = self._resample(streams, epoch)
        else:
            for name, ds in zip(self.stream_names, streams):
                logger.info("%s %s: %d examples", split, name, len(ds))
        self.datasets[split] = streams[0] if len(streams) == 1 else ConcatDataset(streams)

    def _resample(self, streams, epoch: int):
        """Temperature sampling over streams; logs the data share / sampling share table."""
        sizes = np.array([len(ds) for ds in streams], dtype=np.float64)
        tokens = np.array([np.asarray(ds.sizes).sum() for ds in streams], dtype=np.float64)
        probs = temperature_probs(sizes, self.cfg.sampling_alpha)
        if self.cfg.sampling_alpha == 1.0 or len(streams) == 1:
            epoch_sizes = sizes
        else:
            ratios = resampling_ratios(sizes, self.cfg.sampling_alpha)
            streams = [
                ResamplingDataset(ds, size_ratio=r, seed=self.cfg.seed, epoch=epoch, replace=r >= 1.0)
                if r != 1.0
                else ds
                for ds, r in zip(streams, ratios)
            ]
            epoch_sizes = np.array([len(ds) for ds in streams])
        logger.info(
            "training streams (sampling alpha %s):\n%s",
            self.cfg.sampling_alpha,
            sampling_table(self.stream_names, sizes, tokens, probs, epoch_sizes)
            + kept_note(getattr(self, "subsample_kept", {}), self.subsample),
        )
        return streams

    def build_criterion(self, cfg, from_checkpoint=False):
        """Build the criterion, then let the datasets build the optional fields its terms need."""
        criterion = super().build_criterion(cfg, from_checkpoint)
        self.batch_fields.views = getattr(criterion, "needs_views", False)
        self.batch_fields.word_pairs = getattr(criterion, "needs_word_pairs", False)
        self._criterion = criterion
        return criterion

    # The criterion's training state (the contrastive queue and momentum key encoder): updated
    # after every optimizer step, saved in the checkpoint's extra_state (fairseq's task hook),
    # restored on resume; never in the model.
    def optimizer_step(self, optimizer, model, update_num):
        super().optimizer_step(optimizer, model, update_num)
        hook = getattr(getattr(self, "_criterion", None), "after_optimizer_step", None)
        if hook is not None:
            hook(model)

    def get_checkpoint_dict(self):
        state = getattr(getattr(self, "_criterion", None), "training_state", lambda: {})()
        return {type(self).__name__: {"criterion": state}} if state else {}

    def set_checkpoint_dict(self, state):
        criterion = getattr(self, "_criterion", None)
        if criterion is not None and hasattr(criterion, "load_training_state"):
            criterion.load_training_state(state.get("criterion", {}))

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary

    def max_positions(self):
        return self.cfg.tokens_per_sample
