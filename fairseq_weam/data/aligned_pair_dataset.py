"""AlignedPairDataset: word-aligned parallel pairs, laid out, masked and targeted for WEAM."""

import numpy as np
import torch

from fairseq_weam.core.errors import WeamDataError
from fairseq_weam.data.masked_examples import MaskedExamplesDataset, content_key
from fairseq_weam.data.masking import (  # noqa: F401
    WORD_BOUNDARIES,
    PieceTable,
    build_weam_example,
    one_to_one_links,
    word_ids,
    word_links,
)


def piece_table(dictionary, word_boundary: str, mask_idx: int) -> PieceTable:
    """The :class:`PieceTable` of a fairseq dictionary (its counts rank exchange partners).

    ``sentencepiece``: pieces starting with U+2581 open a word (XLM-R / mBART / our prepared data).
    ``token``: every token is a word (pre-tokenized text without subwords).
    """
    return PieceTable.from_symbols(
        dictionary.symbols, dictionary.count, word_boundary, nspecial=dictionary.nspecial, specials=(mask_idx,)
    )


class AlignedPairDataset(MaskedExamplesDataset):
    """One language pair of a WEAM corpus.

    Each item is ``<s> x </s> </s> y </s>`` with whole words (and their aligned partners) masked,
    and two target rows: the original tokens at masked positions (multilingual prediction) and
    the partner word's token at masked aligned positions (cross-lingual prediction).
    ``align`` None gives TLM: words masked independently, no cross-lingual targets.
    """

    def __init__(self, src, tgt, align, dictionary, **kwargs):
        super().__init__(dictionary, **kwargs)
        if len(src) != len(tgt):
            raise WeamDataError(f"source and target differ in length: {len(src)} vs {len(tgt)}")
        self.src, self.tgt, self.align = src, tgt, align
        self.sizes = np.asarray(src.sizes, dtype=np.int64) + np.asarray(tgt.sizes, dtype=np.int64) + 2
        self._bos = torch.LongTensor([dictionary.bos()])

    def __len__(self):
        return len(self.src)

    def links(self, index) -> np.ndarray:
        if self.align is None:
            return np.zeros((0, 2), dtype=np.int64)
        return self.align[index].numpy().reshape(-1, 2)

    def __getitem__(self, index):
        src, tgt = self.src[index], self.tgt[index]
        example = build_weam_example(
            src.numpy(),
            tgt.numpy(),
            self.links(index),
            pieces=self.pieces,
            params=self.params,
            rng=self.rng(index),
            sampler=self.sampler,
            **self.special_ids(),
        )
        item = self.item(index, example)
        if self.fields.views or self.fields.word_pairs:
            # Clean single sentences for the contrastive objectives (fairseq stores a trailing eos).
            item["views"] = (torch.cat([self._bos, src]), torch.cat([self._bos, tgt]))
        if self.fields.word_pairs:
            item["word_view"] = self.word_view(src.numpy(), tgt.numpy(), self.links(index))
        return item

    def word_view(self, src, tgt, token_links) -> dict:
        """Word ids over the view positions ``<s> x </s>`` (-1 on specials) and the one-to-one
        linked words with a content key for each side (equal keys = the same word)."""
        eos = self.dictionary.eos()
        src = src[:-1] if len(src) and src[-1] == eos else src
        tgt = tgt[:-1] if len(tgt) and tgt[-1] == eos else tgt
        sw, tw = word_ids(self.pieces.is_word_start[src]), word_ids(self.pieces.is_word_start[tgt])
        pairs = one_to_one_links(word_links(token_links, sw, tw))
        return {
            "src_word": np.concatenate([[-1], sw, [-1]]).astype(np.int64),
            "tgt_word": np.concatenate([[-1], tw, [-1]]).astype(np.int64),
            "pairs": pairs.astype(np.int64).reshape(-1, 2),
            "n_src": int(sw[-1]) + 1 if len(sw) else 0,
            "n_tgt": int(tw[-1]) + 1 if len(tw) else 0,
            "src_key": [content_key(torch.from_numpy(src[sw == a])) for a in pairs[:, 0]],
            "tgt_key": [content_key(torch.from_numpy(tgt[tw == b])) for b in pairs[:, 1]],
        }

    @property
    def supports_prefetch(self):
        return all(getattr(ds, "supports_prefetch", False) for ds in (self.src, self.tgt, self.align) if ds is not None)

    def prefetch(self, indices):
        for ds in (self.src, self.tgt, self.align):
            if ds is not None:
                ds.prefetch(indices)
