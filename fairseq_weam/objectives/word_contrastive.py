"""Aligned-word contrastive learning (a word-level counterpart of the translation-pair loss, cf.
XLM-Align's and HICTL's word-level objectives): InfoNCE between the mean of the encoder states
over the pieces of two linked words in the clean views, every other linked word of the batch a
negative, except copies of the same word (the same pieces on either side)."""

from dataclasses import dataclass, field

import torch
from fairseq.dataclass import FairseqDataclass

from fairseq_weam.core.errors import OptionError
from fairseq_weam.objectives.base import ObjectiveTerm, register_term
from fairseq_weam.objectives.sentence_contrastive import contrastive_result


@dataclass
class WordContrastiveConfig(FairseqDataclass):
    word_contrastive_weight: float = field(
        default=0.0,
        metadata={
            "help": "weight of the aligned-word contrastive loss (InfoNCE between the pooled pieces of "
            "one-to-one linked words in the clean sentences, in-batch negatives; needs alignments); 0 = off"
        },
    )
    word_contrastive_temperature: float = field(default=0.1, metadata={"help": "its InfoNCE temperature"})
    word_contrastive_layer: int = field(
        default=-1, metadata={"help": "encoder layer whose word vectors are compared: -1 = last, k = layer k"}
    )


def pool_words(states: torch.Tensor, word: torch.Tensor, n_words: int) -> torch.Tensor:
    """Mean of ``states`` ``[B, T, C]`` over the positions of each word (``word`` ``[B, T]``
    holds global word ids, -1 outside words): ``[n_words, C]``."""
    flat = states.reshape(-1, states.shape[-1])
    ids = word.reshape(-1).to(states.device)
    keep = ids >= 0
    sums = flat.new_zeros(n_words, flat.shape[1]).index_add(0, ids[keep], flat[keep])
    counts = torch.bincount(ids[keep], minlength=n_words).clamp(min=1).to(flat.dtype)
    return sums / counts.unsqueeze(1)


@register_term("wctr", WordContrastiveConfig)
class WordContrastive(ObjectiveTerm):
    kind = "wctr"
    weight_field = "word_contrastive_weight"
    needs_views = True
    needs_word_pairs = True

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        objective = getattr(getattr(task, "cfg", None), "bitext_objective", "weam")
        if self.enabled and objective != "weam":
            raise OptionError("--word-contrastive-weight needs the alignments: use --bitext-objective weam")

    def compute(self, batch):
        views = batch.views
        xs, ys = batch.view_layer(self.cfg.word_contrastive_layer)
        src_word, tgt_word = views["src_word"], views["tgt_word"]
        x_words = pool_words(xs, src_word[:, : xs.shape[1]], int(src_word.max()) + 1)
        y_words = pool_words(ys, tgt_word[:, : ys.shape[1]], int(tgt_word.max()) + 1)
        pairs = views["word_pairs"].to(xs.device)
        return contrastive_result(
            x_words[pairs[:, 0]],
            y_words[pairs[:, 1]],
            views["word_pair_stream"],
            views["word_src_key"],
            views["word_tgt_key"],
            self.cfg.word_contrastive_temperature,
            self.weight,
            batch.scale,
        )
