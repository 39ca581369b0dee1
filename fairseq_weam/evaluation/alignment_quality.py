"""Word alignments from contextual embeddings, scored against gold alignments (pure functions).

Extraction follows SimAlign's "ArgMax" (Jalili Sabet et al., 2020): a link (i, j) is kept when
target j is source i's most similar word and source i is target j's most similar word
(``intersect``); the one-directional and ``union`` variants are there for comparison.

Scoring follows Och & Ney (2003) with sure links S and possible links P (S is a subset of P; a
gold file without possible links has P = S), summed over the corpus:

    precision = |A & P| / |A|,  recall = |A & S| / |S|,  AER = 1 - (|A & S| + |A & P|) / (|A| + |S|)
"""

import re
from typing import Dict, Iterable, List, Sequence, Set, Tuple

import numpy as np

from fairseq_weam.core.errors import OptionError, WeamError
from fairseq_weam.core.text_files import open_text

Links = Set[Tuple[int, int]]
EXTRACTIONS = ("intersect", "src2tgt", "tgt2src", "union")

_LINK = re.compile(r"^(\d+)([-?pP])(\d+)$")


class GoldFormatError(WeamError, ValueError):
    """A malformed gold alignment line; the message names file and line."""


def parse_gold_line(line: str, one_indexed: bool = False, where: str = "<gold>") -> Tuple[Links, Links]:
    """``(sure, possible)`` from a Pharaoh line: ``i-j`` is sure, ``i?j`` or ``ipj`` possible
    (the conventions of the Och & Ney / Vilar gold sets as distributed with SimAlign and
    awesome-align). Sure links are added to the possible set, so S is a subset of P."""
    sure, possible = set(), set()
    offset = 1 if one_indexed else 0
    for token in line.split():
        m = _LINK.match(token)
        if not m:
            raise GoldFormatError(f"{where}: cannot parse alignment link {token!r} (expected i-j, i?j or ipj)")
        link = (int(m.group(1)) - offset, int(m.group(3)) - offset)
        if min(link) < 0:
            raise GoldFormatError(f"{where}: link {token!r} is negative after 1-indexing; drop --one-indexed?")
        (sure if m.group(2) == "-" else possible).add(link)
    return sure, possible | sure


def read_gold(path: str, one_indexed: bool = False) -> List[Tuple[Links, Links]]:
    with open_text(path) as f:
        return [parse_gold_line(l, one_indexed, f"{path}:{n}") for n, l in enumerate(f, 1)]


def cosine_matrix(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    src = src / np.maximum(np.linalg.norm(src, axis=1, keepdims=True), 1e-12)
    tgt = tgt / np.maximum(np.linalg.norm(tgt, axis=1, keepdims=True), 1e-12)
    return src @ tgt.T


def extract_alignments(sim: np.ndarray, method: str = "intersect") -> Links:
    """Links (i, j) from an (n_src, n_tgt) similarity matrix by row/column argmax."""
    if method not in EXTRACTIONS:
        raise OptionError(f"--extraction must be one of {EXTRACTIONS}, not {method!r}")
    if sim.size == 0:
        return set()
    fwd = {(i, int(j)) for i, j in enumerate(sim.argmax(axis=1))}
    bwd = {(int(i), j) for j, i in enumerate(sim.argmax(axis=0))}
    return {"intersect": fwd & bwd, "src2tgt": fwd, "tgt2src": bwd, "union": fwd | bwd}[method]


def score_alignments(predicted: Iterable[Links], gold: Sequence[Tuple[Links, Links]]) -> Dict[str, float]:
    """Corpus-level precision, recall, AER (and F1 over sure links) of predicted link sets."""
    predicted = list(predicted)
    if len(predicted) != len(gold):
        raise GoldFormatError(f"{len(predicted)} predicted sentences but {len(gold)} gold sentences")
    a = a_s = a_p = s = 0
    for pred, (sure, possible) in zip(predicted, gold):
        a += len(pred)
        s += len(sure)
        a_s += len(pred & sure)
        a_p += len(pred & possible)
    precision = a_p / a if a else 0.0
    recall = a_s / s if s else 0.0
    aer = 1.0 - (a_s + a_p) / (a + s) if a + s else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "aer": aer, "f1": f1, "predicted": a, "sure": s}
