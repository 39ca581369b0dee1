"""Sentence and word embeddings from a pre-trained checkpoint.

The checkpoints are fairseq RoBERTa encoders over sentencepiece pieces mapped through the data
dir's ``dict.txt`` (+ ``<mask>``, added by the weam and sentence_prediction tasks). We rebuild the
model from the checkpoint's own config and that dictionary instead of going through the task, so
that a checkpoint can be evaluated without its training data files being present.
"""

import logging
import os
from typing import List, Optional, Sequence

import numpy as np
import sentencepiece as spm
import torch
from fairseq.data import Dictionary
from tqdm import tqdm

import fairseq_weam  # noqa: F401  (safe checkpoint loading; registers the weam task)
from fairseq_weam.core.checkpoints import EmbeddingError, build_model, checkpoint_data_dir, load_checkpoint
from fairseq_weam.core.data_dir import PreparedData
from fairseq_weam.pooling import POOLINGS, pool

logger = logging.getLogger(__name__)


class SentenceEncoder:
    """A pre-trained encoder plus its spm model and dictionary: text in, vectors out."""

    def __init__(
        self,
        model,
        dictionary: Dictionary,
        sp: spm.SentencePieceProcessor,
        max_positions: int,
        pretokenize=str.strip,
        device="cpu",
        dtype=torch.float32,
        progress: Optional[bool] = None,
    ):
        self.device, self.dtype = torch.device(device), dtype
        self.model = model.eval().to(device=self.device, dtype=dtype)
        self.progress = progress  # tqdm's disable=None: a bar on a terminal, none in logs
        self.pretokenize = pretokenize  # the data preparation's text normalization (CJK splitting)
        self.dictionary = dictionary
        self.sp = sp
        self.max_positions = max_positions
        self.num_layers = len(model.encoder.sentence_encoder.layers)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str,
        data_dir: Optional[str] = None,
        spm_model: Optional[str] = None,
        device="cpu",
        dtype=torch.float32,
        progress: Optional[bool] = None,
    ):
        """``data_dir`` (default: the checkpoint's own --data) holds dict.txt and spm.model;
        ``device`` / ``dtype`` as :func:`fairseq_weam.core.device.resolve` chose them."""
        state = load_checkpoint(checkpoint)
        data_dir = data_dir or checkpoint_data_dir(state)
        if not data_dir:
            raise EmbeddingError(f"{checkpoint}: pass the data dir (dict.txt, spm.model); the checkpoint names none")
        data = PreparedData(data_dir, spm_model)
        if not os.path.exists(data.spm_model):
            raise EmbeddingError(f"sentencepiece model not found: {data.spm_model}")
        dictionary = data.dictionary(add_mask=True)
        model, args = build_model(state, dictionary, checkpoint, data.dict_path)
        return cls(
            model,
            dictionary,
            data.sentencepiece(),
            int(args.max_positions),
            pretokenize=data.pretokenizer(),
            device=device,
            dtype=dtype,
            progress=progress,
        )

    def resolve_layer(self, layer) -> int:
        """Index into the hidden states: 0 = embeddings, num_layers = last; 'middle', negatives."""
        if layer in (None, "middle"):
            return (self.num_layers + 1) // 2
        if layer == "last":
            return self.num_layers
        try:
            given = int(layer)
        except ValueError:
            raise EmbeddingError(f"--layer {layer!r}: expected a layer number, middle or last") from None
        layer = given + self.num_layers + 1 if given < 0 else given
        if not 0 <= layer <= self.num_layers:
            raise EmbeddingError(
                f"--layer {given}: out of range for this {self.num_layers}-layer model "
                f"(0..{self.num_layers}, or -{self.num_layers + 1}..-1 from the last)"
            )
        return layer

    def pieces(self, text: str) -> List[str]:
        return self.sp.encode(self.pretokenize(text), out_type=str)

    def token_ids(self, pieces: Sequence[str]) -> torch.Tensor:
        """``<s> pieces </s>``, truncated to the model's positions (keeping the final </s>)."""
        ids = self.dictionary.encode_line(" ".join(pieces), add_if_not_exist=False, append_eos=True).long()
        ids = torch.cat([torch.tensor([self.dictionary.bos()]), ids])
        if len(ids) > self.max_positions:
            ids = torch.cat([ids[: self.max_positions - 1], ids[-1:]])
        return ids

    def progress_bar(self, total: int, desc: str, unit: str = "sent"):
        """A tqdm bar on stderr: on a terminal by default (progress=None), always or never."""
        disable = None if self.progress is None else not self.progress
        return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False)

    def collate(self, batch: List[torch.Tensor]) -> torch.Tensor:
        """(B, T) right-padded token ids on the encoder's device."""
        pad = self.dictionary.pad()
        tokens = torch.full((len(batch), max(len(t) for t in batch)), pad, dtype=torch.long)
        for i, t in enumerate(batch):
            tokens[i, : len(t)] = t
        return tokens.to(self.device)

    @torch.no_grad()
    def hidden_states(self, batch: List[torch.Tensor], layer: int):
        """(B, T, C) float32 states of ``layer`` for a list of token id tensors, on the encoder's
        device, and the (B, T) token ids they belong to."""
        tokens = self.collate(batch)
        _, extra = self.model(tokens, features_only=True, return_all_hiddens=True)
        states = extra["inner_states"][layer].transpose(0, 1)
        return states.float(), tokens

    def _batches(self, token_lists, batch_size):
        # Length-sorted batches waste less padding; results go back to input order.
        order = np.argsort([len(t) for t in token_lists], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield idx, [token_lists[i] for i in idx]

    def encode(
        self,
        sentences: Sequence[str],
        pooling: str = "mean",
        layer="middle",
        batch_size: int = 64,
        desc: str = "encoding",
    ) -> np.ndarray:
        """One float32 vector per sentence, pooled by :func:`fairseq_weam.pooling.pool` (the
        contrastive loss's pooling): ``mean``/``max`` over the sentence's pieces (not <s>, </s>),
        ``cls`` the <s> state."""
        if pooling not in POOLINGS:
            raise EmbeddingError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        layer = self.resolve_layer(layer)
        token_lists = [self.token_ids(self.pieces(s)) for s in sentences]
        out = np.zeros((len(sentences), self.model.encoder.sentence_encoder.embed_tokens.embedding_dim), np.float32)
        with self.progress_bar(len(sentences), desc) as bar:
            for idx, batch in self._batches(token_lists, batch_size):
                states, tokens = self.hidden_states(batch, layer)
                out[idx] = pool(states, tokens, self.dictionary.pad(), pooling).cpu().numpy()
                bar.update(len(idx))
        return out

    def encode_words(self, sentences: Sequence[str], layer="middle", batch_size: int = 64, word_pooling: str = "mean"):
        """Per-sentence (n_words, C) arrays of contextual word vectors for whitespace words:
        the mean (or first) of each word's pieces. Words cut off by truncation get no vector, so
        the array may be shorter than the sentence."""
        if word_pooling not in ("mean", "first"):
            raise EmbeddingError(f"word pooling must be mean or first, not {word_pooling!r}")
        layer = self.resolve_layer(layer)
        piece_lists = []
        for s in sentences:
            # Encode word by word so every whitespace word starts a new piece run, even where
            # spm would merge punctuation; this keeps word indices those of the gold file.
            pieces, counts = [], []
            for w in s.split():
                p = self.sp.encode(w, out_type=str) or [self.dictionary.unk_word]
                pieces += p
                counts.append(len(p))
            piece_lists.append((pieces, np.asarray(counts, dtype=np.int64)))
        token_lists = [self.token_ids(p) for p, _ in piece_lists]
        result: List[np.ndarray] = [None] * len(sentences)
        for idx, batch in self._batches(token_lists, batch_size):
            states, _ = self.hidden_states(batch, layer)
            for row, i in enumerate(idx):
                n_pieces = len(batch[row]) - 2
                counts = piece_lists[i][1]
                bounds = np.concatenate([[0], np.cumsum(counts)])
                vecs = []
                for w in range(len(counts)):
                    a, b = bounds[w], min(bounds[w + 1], n_pieces)
                    if a >= b:
                        break
                    span = states[row, 1 + a : 1 + b]
                    vecs.append(span.mean(0) if word_pooling == "mean" else span[0])
                dim = states.shape[-1]
                result[i] = torch.stack(vecs).cpu().numpy() if vecs else np.zeros((0, dim), np.float32)
        return result
