"""What every WEAM-style dataset shares: per-(seed, stream, side, epoch, index) masks, ordering,
collation."""

from dataclasses import dataclass

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from fairseq_weam.data.masking import RandomTokenSampler, random_token_weights


@dataclass
class BatchFields:
    """Optional batch fields the objective terms ask for. The task shares one instance with all
    its datasets and fills it in when the criterion is built (datasets read it per item, so
    data-loader workers started afterwards see it too)."""

    views: bool = False  # clean <s> x </s> and <s> y </s> of each pair
    word_pairs: bool = False  # one-to-one linked words inside the views


def collate_rows(rows, pad_value, width: int):
    """Stack ``[L_i, K_i]`` arrays into ``[B, max L, width]`` filled with ``pad_value``."""
    out = torch.full((len(rows), max(r.shape[0] for r in rows), width), pad_value, dtype=rows[0].dtype)
    for i, r in enumerate(rows):
        out[i, : r.shape[0], : r.shape[1]] = r
    return out


def content_key(tokens: torch.Tensor) -> int:
    """A key equal for equal token sequences (to find copies of a sentence within a batch)."""
    return hash(tuple(tokens.tolist()))


def collate_examples(samples, pad: int):
    """Pad a list of examples into a batch.

    Every example has ``source`` (masked input), ``target`` (multilingual targets),
    ``xl_target`` / ``xl_weight`` (``[L, K]`` cross-lingual targets and weights) and ``stream``
    (index of its language pair or language). Pair examples also carry ``views``: the clean
    ``<s> x </s>`` and ``<s> y </s>``, which the contrastive objective encodes separately; they are
    batched under ``views`` with the stream of each pair and a content key per side, so the
    contrastive loss never uses a copy of a pair (an upsampled example, or the same sentence
    elsewhere in the corpus) as a negative.
    """
    if len(samples) == 0:
        return {}
    width = max(s["xl_target"].shape[1] for s in samples)
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
        "xl_target": collate_rows([s["xl_target"] for s in samples], pad, width),
        "xl_weight": collate_rows([s["xl_weight"] for s in samples], 0.0, width),
    }
    paired = [s for s in samples if "views" in s]
    if paired:
        batch["views"] = {
            "src_tokens": data_utils.collate_tokens([s["views"][0] for s in paired], pad),
            "tgt_tokens": data_utils.collate_tokens([s["views"][1] for s in paired], pad),
            "stream": torch.LongTensor([s["stream"] for s in paired]),
            "src_key": torch.LongTensor([content_key(s["views"][0]) for s in paired]),
            "tgt_key": torch.LongTensor([content_key(s["views"][1]) for s in paired]),
        }
        if all("word_view" in s for s in paired):
            batch["views"].update(collate_word_views([s["word_view"] for s in paired], [s["stream"] for s in paired]))
    return batch


def collate_word_views(word_views, streams):
    """Batch the linked words of the views: word ids over view positions made global (-1 on
    specials and padding), the linked pairs as global ids, their streams and content keys."""
    out = {"pairs": [], "stream": [], "src_key": [], "tgt_key": []}
    src_word, tgt_word = [], []
    n_src = n_tgt = 0
    for wv, stream in zip(word_views, streams):
        src_word.append(torch.from_numpy(np.where(wv["src_word"] >= 0, wv["src_word"] + n_src, -1)))
        tgt_word.append(torch.from_numpy(np.where(wv["tgt_word"] >= 0, wv["tgt_word"] + n_tgt, -1)))
        out["pairs"].append(torch.from_numpy(wv["pairs"] + np.array([n_src, n_tgt])))
        out["stream"] += [stream] * len(wv["pairs"])
        out["src_key"] += wv["src_key"]
        out["tgt_key"] += wv["tgt_key"]
        n_src += wv["n_src"]
        n_tgt += wv["n_tgt"]
    return {
        "src_word": data_utils.collate_tokens(src_word, -1),
        "tgt_word": data_utils.collate_tokens(tgt_word, -1),
        "word_pairs": torch.cat(out["pairs"]).long().reshape(-1, 2),
        "word_pair_stream": torch.LongTensor(out["stream"]),
        "word_src_key": torch.LongTensor(out["src_key"]),
        "word_tgt_key": torch.LongTensor(out["tgt_key"]),
    }


class MaskedExamplesDataset(FairseqDataset):
    """Base class: masks are a deterministic function of (seed, stream, side, epoch, index), so a
    resumed run, another data-loader worker or another GPU sees the same masks, and no two
    streams (nor the two sides of a pair in the MLM baseline) share random draws.

    The epoch reaches data-loader workers only through a new iterator: fairseq keeps a reusable
    epoch iterator (and its persistent workers, with their copy of this dataset at the epoch they
    were started) across epochs, so these datasets say they cannot be reused; fairseq then builds
    the next epoch's iterator, and its workers, after ``set_epoch``.
    """

    def __init__(self, dictionary, *, mask_idx, pieces, params, seed=1, stream=0, side=0, shuffle=True, fields=None):
        self.dictionary = dictionary
        self.mask_idx = mask_idx
        self.pieces = pieces
        self.params = params
        self.seed = seed
        self.stream = stream
        self.side = side
        self.shuffle = shuffle
        self.fields = BatchFields() if fields is None else fields
        self.epoch = 1
        # a sampler with the CDF built once (same draws as rng.choice(p=weights), O(k) per call)
        self.sampler = RandomTokenSampler(random_token_weights(len(dictionary), dictionary.nspecial, mask_idx))

    def rng(self, index) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.stream, self.side, self.epoch, index))

    def item(self, index, example) -> dict:
        """The dict :func:`collate_examples` expects, from a :class:`WeamExample`."""
        return {
            "id": index,
            "stream": self.stream,
            "source": torch.from_numpy(example.tokens),
            "target": torch.from_numpy(example.ml_target),
            "xl_target": torch.from_numpy(example.xl_target),
            "xl_weight": torch.from_numpy(example.xl_weight),
        }

    def special_ids(self):
        d = self.dictionary
        return dict(bos=d.bos(), eos=d.eos(), pad=d.pad(), mask_idx=self.mask_idx)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        # Masks depend on the epoch, which a reused iterator's worker processes never see.
        return False

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
