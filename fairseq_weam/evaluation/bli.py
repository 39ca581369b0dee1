"""Bilingual lexicon induction (BLI): lexicon files and nearest-neighbour translation, as pure
functions over word vectors.

A lexicon is a MUSE dictionary file (Conneau et al. 2018, "Word Translation Without Parallel
Data"): one ``src_word tgt_word`` pair per line, separated by whitespace; a source word may have
several lines, and retrieving any of its translations counts as correct.

Each query word is translated to the best-scoring candidate of the other language by

* cosine similarity, or
* CSLS (cross-domain similarity local scaling, the same paper), which discounts "hubs" that are
  close to everything::

      CSLS(x, y) = 2 cos(x, y) - r_T(x) - r_S(y)

  where r_T(x) is the mean cosine of x to its k nearest target candidates and r_S(y) the mean
  cosine of y to its k nearest words of the source vocabulary (MUSE: k = 10).

Precision@k is the share of queries with a gold translation among their k best candidates, in
percent (MUSE reports it so). Scores are computed for ``batch_size`` queries at a time against
all candidates; memory is O(batch x candidates).
"""

import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Sequence, Set, Tuple

import torch

from fairseq_weam.core.errors import OptionError, WeamError
from fairseq_weam.evaluation.retrieval import knn_mean_similarity, normalize

METHODS = ("cosine", "csls")
PRECISION_AT = (1, 5)
# xx-yy.txt, and MUSE's split names such as en-fr.5000-6500.txt; language codes may hold "_".
LEXICON_NAME = re.compile(r"^([A-Za-z_]+)-([A-Za-z_]+)(\.[^/]*)?\.txt$")


class LexiconError(WeamError, ValueError):
    """A malformed lexicon file; the message names the file and line."""


def read_lexicon(path: str, lowercase: bool = False) -> List[Tuple[str, str]]:
    """The distinct ``(src, tgt)`` pairs of a MUSE dictionary file, in file order.

    Blank lines are skipped; any other line must hold exactly two whitespace-separated fields.
    """
    if not os.path.isfile(path):
        raise LexiconError(f"{path}: lexicon not found")
    pairs, seen = [], set()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise LexiconError(f"{path}:{lineno}: not UTF-8 ({e.reason} at byte {e.start})") from None
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise LexiconError(
                    f"{path}:{lineno}: expected 2 fields 'src_word tgt_word', found {len(fields)}: {line.strip()!r}"
                )
            pair = (fields[0].lower(), fields[1].lower()) if lowercase else (fields[0], fields[1])
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    if not pairs:
        raise LexiconError(f"{path}: no word pairs (empty lexicon)")
    return pairs


def find_lexicons(lexicon_dir: str) -> "OrderedDict[str, Tuple[str, str, str]]":
    """``{name: (src_lang, tgt_lang, path)}`` for every ``SRC-TGT[.anything].txt`` in the dir."""
    if not os.path.isdir(lexicon_dir):
        raise LexiconError(f"{lexicon_dir}: not a directory")
    found = OrderedDict()
    for name in sorted(os.listdir(lexicon_dir)):
        m = LEXICON_NAME.match(name)
        if m and os.path.isfile(os.path.join(lexicon_dir, name)):
            found[name[: -len(".txt")]] = (m.group(1), m.group(2), os.path.join(lexicon_dir, name))
    if not found:
        raise LexiconError(f"{lexicon_dir}: no lexicon named SRC-TGT.txt")
    return found


def invert(pairs: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
    return [(t, s) for s, t in pairs]


@dataclass
class Task:
    """One direction of a lexicon, as indices: query i's gold translations are ``gold[i]``
    (indices into ``candidates``). Candidates and queries are distinct words."""

    queries: List[str]
    candidates: List[str]
    gold: List[Set[int]]
    dropped_pairs: int  # lexicon pairs whose words are not both available


def make_task(pairs: Sequence[Tuple[str, str]], candidates: Sequence[str], sources=None) -> Task:
    """Queries and gold indices for ``pairs`` against ``candidates`` (deduplicated, order kept).

    A pair counts only if its target is a candidate and its source is in ``sources`` (the
    source words that have a vector; default: all). A query keeps the gold translations that
    count and is dropped when none does (MUSE drops dictionary pairs with out-of-vocabulary
    words the same way).
    """
    cand_index: Dict[str, int] = {}
    for w in candidates:
        cand_index.setdefault(w, len(cand_index))
    gold: "OrderedDict[str, Set[int]]" = OrderedDict()
    dropped = 0
    for s, t in pairs:
        if t in cand_index and (sources is None or s in sources):
            gold.setdefault(s, set()).add(cand_index[t])
        else:
            dropped += 1
    return Task(list(gold), list(cand_index), list(gold.values()), dropped)


def csls_scores(queries, candidates, source_vocab=None, k: int = 10) -> torch.Tensor:
    """The full (n_queries, n_candidates) CSLS matrix (for small inputs and checks).

    ``source_vocab`` (default: the queries) is the query language's vocabulary over which each
    candidate's neighbourhood r_S is measured."""
    q, c = normalize(queries), normalize(candidates)
    s = q if source_vocab is None else normalize(source_vocab)
    r_t = knn_mean_similarity(q, c, k)
    r_s = knn_mean_similarity(c, s, k)
    return 2 * (q @ c.T) - r_t[:, None] - r_s[None, :]


def top_candidates(
    queries, candidates, method: str = "cosine", k: int = 10, source_vocab=None, topn: int = 5, batch_size: int = 256
) -> torch.Tensor:
    """(n_queries, topn) candidate indices, best first; ties go to the lower index."""
    if method not in METHODS:
        raise OptionError(f"--methods: a method must be one of {METHODS}, not {method!r}")
    q, c = normalize(queries), normalize(candidates)
    if q.shape[0] == 0 or c.shape[0] == 0:
        return torch.zeros((q.shape[0], 0), dtype=torch.long)
    if method == "csls":
        s = q if source_vocab is None else normalize(source_vocab)
        r_s = knn_mean_similarity(c, s, k, batch_size)
        # r_T(x) is constant along a query's row: it does not change the ranking.
    topn = min(topn, c.shape[0])
    out = torch.empty((q.shape[0], topn), dtype=torch.long)
    for a in range(0, q.shape[0], batch_size):
        scores = q[a : a + batch_size] @ c.T
        if method == "csls":
            scores = 2 * scores - r_s[None, :]
        out[a : a + batch_size] = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :topn]
    return out


def precision_at(top: torch.Tensor, gold: Sequence[Set[int]], ks: Sequence[int] = PRECISION_AT) -> Dict[str, float]:
    """``{"p@k": percent of queries with a gold index among their first k candidates}``."""
    if len(gold) != top.shape[0]:
        raise LexiconError(f"{top.shape[0]} ranked queries but {len(gold)} gold sets")
    if not gold:
        return {f"p@{k}": float("nan") for k in ks}
    rows = top.tolist()
    first_hit = [next((r for r, c in enumerate(row) if c in g), None) for row, g in zip(rows, gold)]
    return {f"p@{k}": 100.0 * sum(h is not None and h < k for h in first_hit) / len(gold) for k in ks}


def evaluate_task(
    query_vecs,
    cand_vecs,
    gold: Sequence[Set[int]],
    methods=METHODS,
    k: int = 10,
    source_vocab=None,
    ks: Sequence[int] = PRECISION_AT,
    batch_size: int = 256,
) -> Dict[str, Dict[str, float]]:
    """``{method: {"p@1": .., "p@5": ..}}`` for one direction."""
    return {
        m: precision_at(top_candidates(query_vecs, cand_vecs, m, k, source_vocab, max(ks), batch_size), gold, ks)
        for m in methods
    }


def format_table(results: Dict[str, Dict], methods=METHODS, ks: Sequence[int] = PRECISION_AT) -> str:
    """Markdown table of :func:`fairseq_weam.evaluation.evaluate.evaluate_bli`'s results, P@k in %."""
    header = ["lexicon", "vectors", "direction", "n", "candidates"] + [f"{m} P@{k}" for m in methods for k in ks]
    rows = [header, ["---"] * len(header)]
    for name, r in results.items():
        src, tgt = r["langs"]
        for vectors, by_dir in r["vectors"].items():
            for direction, d in by_dir.items():
                arrow = f"{src}->{tgt}" if direction == "src2tgt" else f"{tgt}->{src}"
                row = [name, vectors, arrow, str(d["n"]), str(d["candidates"])]
                row += ["-" if d[m][f"p@{k}"] is None else f"{d[m][f'p@{k}']:.1f}" for m in methods for k in ks]
                rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n"
