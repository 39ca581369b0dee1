"""MaskedSentenceDataset: monolingual sentences ``<s> x </s>`` with whole-word masking (MLM)."""

import numpy as np

from fairseq_weam.data.masked_examples import MaskedExamplesDataset
from fairseq_weam.data.masking import build_mlm_example


class MaskedSentenceDataset(MaskedExamplesDataset):
    """Masked-LM examples from one fairseq-binarized text (a monolingual stream, or one side of
    a bitext for the MLM baseline). No cross-lingual targets, no contrastive views."""

    def __init__(self, sentences, dictionary, **kwargs):
        super().__init__(dictionary, **kwargs)
        self.sentences = sentences
        self.sizes = np.asarray(sentences.sizes, dtype=np.int64) + 1  # + <s>

    def __len__(self):
        return len(self.sentences)

    def __getitem__(self, index):
        example = build_mlm_example(
            self.sentences[index].numpy(),
            pieces=self.pieces,
            params=self.params,
            rng=self.rng(index),
            sampler=self.sampler,
            **self.special_ids(),
        )
        return self.item(index, example)

    @property
    def supports_prefetch(self):
        return getattr(self.sentences, "supports_prefetch", False)

    def prefetch(self, indices):
        self.sentences.prefetch(indices)
