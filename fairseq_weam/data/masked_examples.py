"""What every WEAM-style dataset shares: per-(seed, epoch, index) masks, ordering, collation."""

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from .masking import RandomTokenSampler, random_token_weights


def collate_examples(samples, pad: int):
    """Pad a list of examples into a batch.

    Every example has ``source`` (masked input), ``target`` (multilingual targets),
    ``xl_target`` (cross-lingual targets) and ``stream`` (index of its language pair or
    language). Pair examples also carry ``views``: the clean ``<s> x </s>`` and ``<s> y </s>``,
    which the contrastive objective encodes separately; they are batched under ``views`` with
    the stream of each pair.
    """
    if len(samples) == 0:
        return {}
    batch = {
        "id": torch.LongTensor([s["id"] for s in samples]),
        "stream": torch.LongTensor([s["stream"] for s in samples]),
        "nsentences": len(samples),
        "ntokens": sum(len(s["source"]) for s in samples),
        "net_input": {
            "src_tokens": data_utils.collate_tokens([s["source"] for s in samples], pad),
            "src_lengths": torch.LongTensor([len(s["source"]) for s in samples]),
        },
        "target": data_utils.collate_tokens([s["target"] for s in samples], pad),
        "xl_target": data_utils.collate_tokens([s["xl_target"] for s in samples], pad),
    }
    paired = [s for s in samples if "views" in s]
    if paired:
        batch["views"] = {
            "src_tokens": data_utils.collate_tokens([s["views"][0] for s in paired], pad),
            "tgt_tokens": data_utils.collate_tokens([s["views"][1] for s in paired], pad),
            "stream": torch.LongTensor([s["stream"] for s in paired]),
        }
    return batch


class MaskedExamplesDataset(FairseqDataset):
    """Base class: masks are a deterministic function of (seed, epoch, index), as in fairseq's
    MaskTokensDataset, so a resumed run or another worker sees the same masks."""

    def __init__(self, dictionary, *, mask_idx, is_word_start, params, seed=1, stream=0, shuffle=True):
        self.dictionary = dictionary
        self.mask_idx = mask_idx
        self.is_word_start = is_word_start
        self.params = params
        self.seed = seed
        self.stream = stream
        self.shuffle = shuffle
        self.epoch = 1
        # a sampler with the CDF built once (same draws as rng.choice(p=weights), O(k) per call)
        self.random_weights = RandomTokenSampler(random_token_weights(len(dictionary), dictionary.nspecial, mask_idx))

    def rng(self, index) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def item(self, index, example) -> dict:
        """The dict :func:`collate_examples` expects, from a :class:`WeamExample`."""
        return {
            "id": index,
            "stream": self.stream,
            "source": torch.from_numpy(example.tokens),
            "target": torch.from_numpy(example.ml_target),
            "xl_target": torch.from_numpy(example.xl_target),
        }

    def special_ids(self):
        d = self.dictionary
        return dict(bos=d.bos(), eos=d.eos(), pad=d.pad(), mask_idx=self.mask_idx)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return True  # masks depend on the epoch through __getitem__, not through the batches

    def set_epoch(self, epoch, **unused):
        super().set_epoch(epoch)
        self.epoch = epoch

    def collater(self, samples):
        return collate_examples(samples, self.dictionary.pad())

    def num_tokens(self, index):
        return self.sizes[index]

    def size(self, index):
        return self.sizes[index]

    def ordered_indices(self):
        # fairseq seeds the global numpy RNG with (seed + epoch) around this call.
        order = np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))
        return order[np.argsort(self.sizes[order], kind="mergesort")]
