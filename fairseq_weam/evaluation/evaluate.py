"""Model-level evaluations: tie a :class:`SentenceEncoder` to the pure scorers in
``retrieval`` and ``alignment_quality``, over files on disk."""

import glob
import os
import re
from collections import OrderedDict
from typing import Dict, Optional, Sequence

from . import alignment_quality, retrieval
from .embeddings import SentenceEncoder


def find_parallel_sets(heldout_dir: str, src_lang: str = "en", langs: Optional[Sequence[str]] = None):
    """``{lang: (SRC-LANG.SRC, SRC-LANG.LANG)}`` for the held-out files of the corpus builder."""
    found = OrderedDict()
    pattern = re.compile(rf"^{re.escape(src_lang)}-([^.]+)\.{re.escape(src_lang)}$")
    for path in sorted(glob.glob(os.path.join(heldout_dir, f"{src_lang}-*.{src_lang}"))):
        m = pattern.match(os.path.basename(path))
        if not m:
            continue
        lang = m.group(1)
        other = os.path.join(heldout_dir, f"{src_lang}-{lang}.{lang}")
        if os.path.exists(other) and (not langs or lang in langs):
            found[lang] = (path, other)
    missing = [l for l in langs or () if l not in found]
    if missing or not found:
        raise FileNotFoundError(
            f"{heldout_dir}: no held-out pair {src_lang}-XX.{src_lang} / {src_lang}-XX.XX "
            + (f"for {', '.join(missing)}" if missing else "found")
        )
    return found


def evaluate_retrieval(
    encoder: SentenceEncoder,
    sets: Dict[str, tuple],
    pooling: str = "mean",
    layer="middle",
    k: int = 4,
    methods=retrieval.METHODS,
    batch_size: int = 64,
    score_batch_size: int = 1024,
    max_sentences: Optional[int] = None,
    use_faiss: bool = False,
) -> Dict[str, dict]:
    """Top-1 retrieval accuracy per language of line-aligned ``{lang: (src_file, tgt_file)}``,
    with the per-pair hits (``retrieval.language_result``) for bootstrap intervals."""
    results = OrderedDict()
    for lang, (src_path, tgt_path) in sets.items():
        src, tgt = retrieval.read_parallel(src_path, tgt_path, max_sentences)
        correct = retrieval.retrieval_correct(
            encoder.encode(src, pooling, layer, batch_size, desc=f"encoding {lang} src"),
            encoder.encode(tgt, pooling, layer, batch_size, desc=f"encoding {lang} tgt"),
            methods=methods, k=k, batch_size=score_batch_size, use_faiss=use_faiss, device=encoder.device,
        )
        results[lang] = retrieval.language_result(correct)
    return results


def predict_alignments(encoder: SentenceEncoder, src: Sequence[str], tgt: Sequence[str], layer="middle",
                       method: str = "intersect", word_pooling: str = "mean", batch_size: int = 64):
    """Word links per sentence pair from the encoder's contextual word vectors."""
    src_vecs = encoder.encode_words(src, layer, batch_size, word_pooling)
    tgt_vecs = encoder.encode_words(tgt, layer, batch_size, word_pooling)
    return [
        alignment_quality.extract_alignments(alignment_quality.cosine_matrix(s, t), method)
        for s, t in zip(src_vecs, tgt_vecs)
    ]


def evaluate_alignment(encoder: SentenceEncoder, src_path: str, tgt_path: str, gold_path: str, layers=("middle",),
                       method: str = "intersect", word_pooling: str = "mean", one_indexed: bool = False,
                       batch_size: int = 64):
    """``({layer: scores}, {layer: predicted links})`` against a gold Pharaoh file."""
    with open(src_path, encoding="utf-8") as fs, open(tgt_path, encoding="utf-8") as ft:
        src, tgt = fs.read().splitlines(), ft.read().splitlines()
    gold = alignment_quality.read_gold(gold_path, one_indexed)
    if not len(src) == len(tgt) == len(gold):
        raise ValueError(f"{src_path}, {tgt_path}, {gold_path}: {len(src)}, {len(tgt)}, {len(gold)} lines; must match")
    scores, predictions = OrderedDict(), OrderedDict()
    for layer in layers:
        index = encoder.resolve_layer(layer)
        predictions[index] = predict_alignments(encoder, src, tgt, index, method, word_pooling, batch_size)
        scores[index] = alignment_quality.score_alignments(predictions[index], gold)
    return scores, predictions
