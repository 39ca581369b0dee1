"""Static word vectors from a contextual encoder, for word-level evaluation (BLI).

Two kinds:

* **isolated**: the word alone, ``<s> word </s>``, pooled over the word's pieces (the sentence
  encoder's ``mean``/``max`` pooling, or ``cls`` = the ``<s>`` state). The word is pretokenized
  like the training text first (a CJK word becomes one "word" per character; all its pieces are
  pooled). The model has no language embedding, so a spelling has one isolated vector whatever
  its language.
* **context**: the mean of the word's contextual vectors over its occurrences in a text. Each
  line is pretokenized with the data dir's pretokenizer and split on whitespace; an occurrence
  is a run of tokens equal to the pretokenized word's tokens (one token, except for CJK words).
  A token's contextual vector is the mean (or ``first``) of its pieces' states; a multi-token
  occurrence is the mean of its tokens. At most ``max_occurrences`` occurrences per word, the
  first ones in file order, are used; tokens cut off by the model's length limit do not count.
"""

from collections import Counter, defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from fairseq_weam.core.errors import OptionError
from fairseq_weam.core.text_files import open_text
from fairseq_weam.evaluation.embeddings import SentenceEncoder


def isolated_vectors(
    encoder: SentenceEncoder, words: Sequence[str], pooling: str = "mean", layer="middle", batch_size: int = 64
) -> np.ndarray:
    """(len(words), C): each word encoded alone as ``<s> word </s>``."""
    return encoder.encode(list(words), pooling, layer, batch_size)


def read_text(paths: Iterable[str], pretokenize: Callable[[str], str] = str.strip) -> List[List[str]]:
    """The whitespace tokens of every non-blank line of the files, after ``pretokenize``."""
    lines = []
    for path in paths:
        with open_text(path) as f:
            for line in f:
                tokens = pretokenize(line).split()
                if tokens:
                    lines.append(tokens)
    return lines


def text_vocabulary(lines: Sequence[Sequence[str]], lowercase: bool = False) -> List[str]:
    """Distinct tokens, most frequent first (ties in first-seen order)."""
    counts = Counter(t.lower() if lowercase else t for line in lines for t in line)
    return [w for w, _ in counts.most_common()]


def find_occurrences(
    lines: Sequence[Sequence[str]],
    words: Sequence[str],
    pretokenize: Callable[[str], str] = str.strip,
    max_occurrences: Optional[int] = None,
    lowercase: bool = False,
) -> Dict[str, List[Tuple[int, int, int]]]:
    """``{word: [(line, first token, n tokens), ...]}`` for the words that occur, in text order.
    ``lowercase``: match the text lowercased (the words are taken as given)."""
    by_first: Dict[str, List[Tuple[str, Tuple[str, ...]]]] = defaultdict(list)
    for w in dict.fromkeys(words):
        seq = tuple(pretokenize(w).split())
        if seq:
            by_first[seq[0]].append((w, seq))
    found: Dict[str, List[Tuple[int, int, int]]] = defaultdict(list)
    for i, tokens in enumerate(lines):
        if lowercase:
            tokens = [t.lower() for t in tokens]
        for j, tok in enumerate(tokens):
            for w, seq in by_first.get(tok, ()):
                if tuple(tokens[j : j + len(seq)]) == seq and (
                    max_occurrences is None or len(found[w]) < max_occurrences
                ):
                    found[w].append((i, j, len(seq)))
    return dict(found)


def context_vectors(
    encoder: SentenceEncoder,
    lines: Sequence[Sequence[str]],
    words: Sequence[str],
    layer="middle",
    word_pooling: str = "mean",
    max_occurrences: Optional[int] = 100,
    lowercase: bool = False,
    batch_size: int = 64,
    chunk_lines: int = 2048,
    desc: str = "context vectors",
) -> Dict[str, np.ndarray]:
    """``{word: mean contextual vector}`` for the ``words`` that occur in ``lines`` (tokens, as
    from :func:`read_text`); words that do not occur (or only beyond the length limit) are absent.
    The model always sees the text as written; ``lowercase`` only affects matching."""
    occurrences = find_occurrences(lines, words, encoder.pretokenize, max_occurrences, lowercase)
    wanted: Dict[int, List[Tuple[str, int, int]]] = defaultdict(list)
    for w, occ in occurrences.items():
        for i, j, n in occ:
            wanted[i].append((w, j, n))
    dim = encoder.model.encoder.sentence_encoder.embed_tokens.embedding_dim
    sums: Dict[str, np.ndarray] = {}
    counts: Counter = Counter()
    line_ids = sorted(wanted)
    # Chunks bound memory: only one chunk's per-token vectors are alive at a time.
    for a in tqdm(
        range(0, len(line_ids), chunk_lines), desc=desc, unit="chunk", leave=False, disable=len(line_ids) <= chunk_lines
    ):
        chunk = line_ids[a : a + chunk_lines]
        per_line = encoder.encode_words([" ".join(lines[i]) for i in chunk], layer, batch_size, word_pooling)
        for i, vecs in zip(chunk, per_line):
            for w, j, n in wanted[i]:
                if j + n <= len(vecs):
                    sums[w] = sums.get(w, np.zeros(dim, np.float64)) + vecs[j : j + n].mean(0)
                    counts[w] += 1
    return {w: (sums[w] / counts[w]).astype(np.float32) for w in sums}


def texts_by_language(specs: Iterable[str]) -> Dict[str, List[str]]:
    """``{lang: [files]}`` from ``LANG:FILE`` specs or files named ``*.LANG`` (the held-out
    layout: ``en-fr.en`` is English, ``en-fr.fr`` French)."""
    import os

    out: Dict[str, List[str]] = defaultdict(list)
    for spec in specs:
        lang, sep, path = spec.partition(":")
        if not sep or os.path.exists(spec) or "/" in lang or "." in lang:
            path = spec
            lang = os.path.basename(spec).rpartition(".")[2] if "." in os.path.basename(spec) else ""
        if not lang:
            raise OptionError(
                f"--text {spec}: cannot tell the language of this text; name it FILE.LANG or pass LANG:FILE"
            )
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: text file not found")
        out[lang].append(path)
    return dict(out)
