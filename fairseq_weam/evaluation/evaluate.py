"""Model-level evaluations: tie a :class:`SentenceEncoder` to the pure scorers in
``retrieval``, ``alignment_quality`` and ``bli``, over files on disk."""

import glob
import os
import re
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np

from fairseq_weam.core.errors import OptionError
from fairseq_weam.core.text_files import read_lines
from fairseq_weam.evaluation import alignment_quality, bli, retrieval
from fairseq_weam.evaluation.embeddings import SentenceEncoder


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
            methods=methods,
            k=k,
            batch_size=score_batch_size,
            use_faiss=use_faiss,
            device=encoder.device,
        )
        results[lang] = retrieval.language_result(correct)
    return results


def predict_alignments(
    encoder: SentenceEncoder,
    src: Sequence[str],
    tgt: Sequence[str],
    layer="middle",
    method: str = "intersect",
    word_pooling: str = "mean",
    batch_size: int = 64,
):
    """Word links per sentence pair from the encoder's contextual word vectors."""
    src_vecs = encoder.encode_words(src, layer, batch_size, word_pooling)
    tgt_vecs = encoder.encode_words(tgt, layer, batch_size, word_pooling)
    return [
        alignment_quality.extract_alignments(alignment_quality.cosine_matrix(s, t), method)
        for s, t in zip(src_vecs, tgt_vecs)
    ]


def evaluate_alignment(
    encoder: SentenceEncoder,
    src_path: str,
    tgt_path: str,
    gold_path: str,
    layers=("middle",),
    method: str = "intersect",
    word_pooling: str = "mean",
    one_indexed: bool = False,
    batch_size: int = 64,
):
    """``({layer: scores}, {layer: predicted links})`` against a gold Pharaoh file."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    gold = alignment_quality.read_gold(gold_path, one_indexed)
    if not len(src) == len(tgt) == len(gold):
        raise alignment_quality.GoldFormatError(
            f"{src_path}, {tgt_path}, {gold_path}: {len(src)}, {len(tgt)}, {len(gold)} lines; must match"
        )
    scores, predictions = OrderedDict(), OrderedDict()
    for layer in layers:
        index = encoder.resolve_layer(layer)
        predictions[index] = predict_alignments(encoder, src, tgt, index, method, word_pooling, batch_size)
        scores[index] = alignment_quality.score_alignments(predictions[index], gold)
    return scores, predictions


def evaluate_bli(
    encoder: SentenceEncoder,
    lexicons,
    texts: Optional[Dict[str, Sequence[str]]] = None,
    vectors: Optional[Sequence[str]] = None,
    candidates: str = "lexicon",
    layer="middle",
    pooling: str = "mean",
    word_pooling: str = "mean",
    k: int = 10,
    methods=bli.METHODS,
    max_occurrences: Optional[int] = 100,
    lowercase: bool = False,
    batch_size: int = 64,
    score_batch_size: int = 256,
) -> Dict[str, dict]:
    """Bilingual lexicon induction, both directions, for each lexicon.

    ``lexicons``: a directory of ``SRC-TGT.txt`` files, one lexicon file (its languages read
    from its name when it has that form), or ``{name: (src_lang, tgt_lang, path)}``.
    ``texts``: ``{lang: [files]}`` for contextual vectors and ``candidates="text"``.
    ``vectors``: ``isolated`` and/or ``context`` (default: both with texts, else isolated).
    ``candidates``: ``lexicon`` = the lexicon's distinct words of the other side; ``text`` =
    every distinct token of that language's texts (plus the lexicon words that occur there).

    Returns ``{name: {"langs": [src, tgt], "lexicon": path, "pairs": n, "vectors": {kind:
    {"src2tgt"|"tgt2src": {"n", "candidates", "dropped_pairs", method: {"p@1", "p@5"}}}}}}``,
    precisions in percent (None without queries).
    """
    from fairseq_weam.evaluation.word_vectors import (
        context_vectors,
        find_occurrences,
        isolated_vectors,
        read_text,
        text_vocabulary,
    )

    if isinstance(lexicons, str):
        lexicons = lexicon_set(lexicons)
    texts = texts or {}
    vectors = tuple(vectors or (("isolated", "context") if texts else ("isolated",)))
    if set(vectors) - {"isolated", "context"}:
        raise OptionError(f"--vectors must be isolated and/or context, not {vectors}")
    if candidates not in ("lexicon", "text"):
        raise OptionError(f"--candidates must be lexicon or text, not {candidates!r}")
    layer = encoder.resolve_layer(layer)

    lines_cache: Dict[str, list] = {}
    isolated_cache: Dict[str, np.ndarray] = {}  # spelling -> vector (the model has no language id)
    context_cache: Dict[str, Dict[str, Optional[np.ndarray]]] = {}  # lang -> word -> vector / None

    def lines(lang):
        if lang not in lines_cache:
            if lang not in texts:
                raise OptionError(f"--text: no text for language {lang!r} (name a file *.{lang} or pass {lang}:FILE)")
            lines_cache[lang] = read_text(texts[lang], encoder.pretokenize)
        return lines_cache[lang]

    def vocabulary(lang, lexicon_words):
        words = list(dict.fromkeys(lexicon_words))
        if candidates == "lexicon":
            return words
        text = lines(lang)
        present = find_occurrences(text, words, encoder.pretokenize, 1, lowercase)
        return list(dict.fromkeys(text_vocabulary(text, lowercase) + [w for w in words if w in present]))

    def lookup(kind, lang, words):
        """``{word: vector}`` for the words that have one."""
        if kind == "isolated":
            missing = [w for w in dict.fromkeys(words) if w not in isolated_cache]
            if missing:
                isolated_cache.update(zip(missing, isolated_vectors(encoder, missing, pooling, layer, batch_size)))
            return {w: isolated_cache[w] for w in words}
        cache = context_cache.setdefault(lang, {})
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            found = context_vectors(
                encoder,
                lines(lang),
                missing,
                layer,
                word_pooling,
                max_occurrences,
                lowercase,
                batch_size,
                desc=f"context vectors {lang}",
            )
            cache.update({w: found.get(w) for w in missing})
        return {w: cache[w] for w in words if cache[w] is not None}

    def direction(pairs, src_vecs, tgt_vecs):
        cands = list(tgt_vecs)
        task = bli.make_task(pairs, cands, src_vecs)
        result = {"n": len(task.queries), "candidates": len(cands), "dropped_pairs": task.dropped_pairs}
        if not task.queries:
            return {**result, **{m: {f"p@{p}": None for p in bli.PRECISION_AT} for m in methods}}
        scores = bli.evaluate_task(
            np.stack([src_vecs[w] for w in task.queries]),
            np.stack([tgt_vecs[w] for w in cands]),
            task.gold,
            methods,
            k,
            np.stack(list(src_vecs.values())),
            batch_size=score_batch_size,
        )
        return {**result, **scores}

    results = OrderedDict()
    for name, (src_lang, tgt_lang, path) in lexicons.items():
        pairs = bli.read_lexicon(path, lowercase)
        src_vocab = vocabulary(src_lang, [s for s, _ in pairs])
        tgt_vocab = vocabulary(tgt_lang, [t for _, t in pairs])
        by_kind = OrderedDict()
        for kind in vectors:
            src_vecs, tgt_vecs = lookup(kind, src_lang, src_vocab), lookup(kind, tgt_lang, tgt_vocab)
            by_kind[kind] = {
                "src2tgt": direction(pairs, src_vecs, tgt_vecs),
                "tgt2src": direction(bli.invert(pairs), tgt_vecs, src_vecs),
            }
        results[name] = {"langs": [src_lang, tgt_lang], "lexicon": path, "pairs": len(pairs), "vectors": by_kind}
    return results


def lexicon_set(path: str, langs: Optional[Sequence[str]] = None):
    """``{name: (src_lang, tgt_lang, path)}`` for a lexicon directory or a single file; a file
    not named ``SRC-TGT.txt`` needs ``langs`` = (src, tgt)."""
    if os.path.isdir(path):
        return bli.find_lexicons(path)
    name = os.path.basename(path)
    m = bli.LEXICON_NAME.match(name)
    if langs is None and not m:
        raise OptionError(f"{path}: name it SRC-TGT.txt or give the languages (--pair SRC-TGT)")
    src, tgt = langs if langs is not None else (m.group(1), m.group(2))
    key = name[: -len(".txt")] if name.endswith(".txt") else name
    return OrderedDict([(key, (src, tgt, path))])
