"""AlignedPairDataset: word-aligned parallel pairs, laid out, masked and targeted for WEAM."""

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from .masking import MaskingParams, build_weam_example, random_token_weights

WORD_BOUNDARIES = ("sentencepiece", "token")


def word_start_mask(dictionary, word_boundary: str) -> np.ndarray:
    """Boolean array over the vocabulary: does this symbol open a word?

    ``sentencepiece``: pieces starting with U+2581 open a word (XLM-R / mBART / our prepared data).
    ``token``: every token is a word (pre-tokenized text without subwords).
    """
    if word_boundary == "token":
        return np.ones(len(dictionary), dtype=bool)
    if word_boundary == "sentencepiece":
        return np.array([sym.startswith("\u2581") for sym in dictionary.symbols], dtype=bool)
    raise ValueError(f"word_boundary must be one of {WORD_BOUNDARIES}, got {word_boundary!r}")


class AlignedPairDataset(FairseqDataset):
    """One language pair of a WEAM corpus.

    Each item is ``<s> x </s> </s> y </s>`` with whole words (and their aligned partners) masked,
    and two target rows: the original tokens at masked positions (multilingual prediction) and
    the partner word's token at masked aligned positions (cross-lingual prediction). Masks are a
    deterministic function of (seed, epoch, index), as in fairseq's MaskTokensDataset, so a
    resumed run sees the same masks.

    ``align`` may be None (plain TLM: no partners, no cross-lingual targets).
    """

    def __init__(self, src, tgt, align, dictionary, *, mask_idx, is_word_start, params: MaskingParams, seed=1, pair_id=0, shuffle=True):
        if len(src) != len(tgt):
            raise ValueError(f"source and target differ in length: {len(src)} vs {len(tgt)}")
        self.src, self.tgt, self.align = src, tgt, align
        self.dictionary = dictionary
        self.mask_idx = mask_idx
        self.is_word_start = is_word_start
        self.params = params
        self.seed = seed
        self.pair_id = pair_id
        self.shuffle = shuffle
        self.epoch = 1
        self.sizes = np.asarray(src.sizes, dtype=np.int64) + np.asarray(tgt.sizes, dtype=np.int64) + 2
        self.random_weights = random_token_weights(len(dictionary), dictionary.nspecial, mask_idx)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return True  # masks depend on the epoch through __getitem__, not through the batches

    def set_epoch(self, epoch, **unused):
        super().set_epoch(epoch)
        self.epoch = epoch

    def __len__(self):
        return len(self.src)

    def links(self, index) -> np.ndarray:
        if self.align is None:
            return np.zeros((0, 2), dtype=np.int64)
        return self.align[index].numpy().reshape(-1, 2)

    def __getitem__(self, index):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        d = self.dictionary
        example = build_weam_example(
            self.src[index].numpy(),
            self.tgt[index].numpy(),
            self.links(index),
            is_word_start=self.is_word_start,
            bos=d.bos(),
            eos=d.eos(),
            pad=d.pad(),
            mask_idx=self.mask_idx,
            params=self.params,
            rng=rng,
            random_weights=self.random_weights,
        )
        return {
            "id": index,
            "pair": self.pair_id,
            "source": torch.from_numpy(example.tokens),
            "target": torch.from_numpy(example.ml_target),
            "xl_target": torch.from_numpy(example.xl_target),
        }

    def collater(self, samples):
        if len(samples) == 0:
            return {}
        pad = self.dictionary.pad()
        src_tokens = data_utils.collate_tokens([s["source"] for s in samples], pad)
        return {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "pair": torch.LongTensor([s["pair"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": sum(len(s["source"]) for s in samples),
            "net_input": {
                "src_tokens": src_tokens,
                "src_lengths": torch.LongTensor([len(s["source"]) for s in samples]),
            },
            "target": data_utils.collate_tokens([s["target"] for s in samples], pad),
            "xl_target": data_utils.collate_tokens([s["xl_target"] for s in samples], pad),
        }

    def num_tokens(self, index):
        return self.sizes[index]

    def size(self, index):
        return self.sizes[index]

    def ordered_indices(self):
        # fairseq seeds the global numpy RNG with (seed + epoch) around this call.
        order = np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))
        return order[np.argsort(self.sizes[order], kind="mergesort")]

    @property
    def supports_prefetch(self):
        return all(getattr(ds, "supports_prefetch", False) for ds in (self.src, self.tgt, self.align) if ds is not None)

    def prefetch(self, indices):
        for ds in (self.src, self.tgt, self.align):
            if ds is not None:
                ds.prefetch(indices)
