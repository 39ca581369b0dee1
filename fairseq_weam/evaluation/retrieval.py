"""Bitext retrieval scoring (Tatoeba / BUCC style): pure functions over embedding matrices.

Row i of ``src`` translates row i of ``tgt``. For each query we find the best candidate on the
other side by cosine or by the ratio margin of Artetxe & Schwenk (2019, LASER):

    margin(x, y) = cos(x, y) / ((knn_mean(x) + knn_mean(y)) / 2)

where knn_mean(x) is the mean cosine of x to its k nearest neighbours on the other side. The
margin discounts "hub" vectors that are close to everything, which plain cosine rewards.

Scores are computed in blocks of ``batch_size`` queries against all candidates, so memory is
O(batch_size x N), never N x N. When faiss is installed it can do the k-NN search instead.
"""

from typing import Dict, Optional, Tuple

import numpy as np
import torch
from tqdm import tqdm

from fairseq_weam.core.errors import OptionError, WeamDataError
from fairseq_weam.core.text_files import read_lines
from fairseq_weam.evaluation import stats

METHODS = ("cosine", "margin")


def normalize(x) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _faiss():
    try:
        import faiss  # noqa: F401

        return faiss
    except ImportError:
        return None


def knn(
    queries: torch.Tensor,
    keys: torch.Tensor,
    k: int,
    batch_size: int = 1024,
    use_faiss: bool = False,
    desc: Optional[str] = None,
):
    """``(sims, indices)``, each (n_queries, k): the k nearest (unit-norm) keys of each (unit-norm)
    query by inner product, best first. faiss (exact inner-product index, CPU) when asked and
    installed, else blocked matrix products on the tensors' device (a tqdm bar when ``desc``)."""
    k = min(k, keys.shape[0])
    faiss = _faiss() if use_faiss else None
    if faiss is not None:
        index = faiss.IndexFlatIP(keys.shape[1])
        index.add(np.ascontiguousarray(keys.float().cpu().numpy()))
        sims, inds = index.search(np.ascontiguousarray(queries.float().cpu().numpy()), k)
        return torch.from_numpy(sims).to(queries.device), torch.from_numpy(inds).to(queries.device)
    sims = torch.empty(queries.shape[0], k, device=queries.device)
    inds = torch.empty(queries.shape[0], k, dtype=torch.long, device=queries.device)
    blocks = range(0, queries.shape[0], batch_size)
    for a in tqdm(blocks, desc=desc, unit="block", disable=None, leave=False) if desc else blocks:
        top = (queries[a : a + batch_size] @ keys.T).topk(k, dim=1)
        sims[a : a + batch_size], inds[a : a + batch_size] = top.values, top.indices
    return sims, inds


def knn_mean_similarity(
    queries: torch.Tensor, keys: torch.Tensor, k: int, batch_size: int = 1024, use_faiss: bool = False
) -> torch.Tensor:
    """Mean cosine of each (unit-norm) query to its k nearest (unit-norm) keys."""
    return knn(queries, keys, k, batch_size, use_faiss)[0].mean(1)


def best_candidates(
    queries: torch.Tensor,
    keys: torch.Tensor,
    method: str = "cosine",
    query_knn: Optional[torch.Tensor] = None,
    key_knn: Optional[torch.Tensor] = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Index of the best-scoring key for each query (unit-norm inputs), in blocks of queries."""
    if method not in METHODS:
        raise OptionError(f"--methods: a method must be one of {METHODS}, not {method!r}")
    if method == "margin" and (query_knn is None or key_knn is None):
        raise ValueError("margin scoring needs the k-NN mean similarities of both sides")
    best = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    for a in range(0, queries.shape[0], batch_size):
        scores = queries[a : a + batch_size] @ keys.T
        if method == "margin":
            scores = scores / ((query_knn[a : a + batch_size, None] + key_knn[None, :]) / 2)
        best[a : a + batch_size] = scores.argmax(1)
    return best


def retrieve(src, tgt, methods=METHODS, k: int = 4, batch_size: int = 1024, use_faiss: bool = False, device=None):
    """Best candidate of every query, both ways: ``{method: (src2tgt, tgt2src)}``, two numpy
    int64 arrays (index into ``tgt`` per ``src`` row, index into ``src`` per ``tgt`` row).
    ``src`` (n, d) and ``tgt`` (m, d) need not be aligned; scoring runs on ``device``."""
    src, tgt = normalize(src).to(device), normalize(tgt).to(device)
    if src.shape[0] == 0 or tgt.shape[0] == 0:
        raise WeamDataError("no sentences to retrieve")
    means = None
    if "margin" in methods:
        means = (
            knn_mean_similarity(src, tgt, k, batch_size, use_faiss),
            knn_mean_similarity(tgt, src, k, batch_size, use_faiss),
        )
    result = {}
    for method in methods:
        s_knn, t_knn = means if method == "margin" else (None, None)
        result[method] = (
            best_candidates(src, tgt, method, s_knn, t_knn, batch_size).cpu().numpy(),
            best_candidates(tgt, src, method, t_knn, s_knn, batch_size).cpu().numpy(),
        )
    return result


def accuracy_against(predictions, src2tgt_gold) -> Dict[str, Dict[str, float]]:
    """Top-1 accuracy ``{method: {"src2tgt", "tgt2src", "mean"}}`` of :func:`retrieve`'s output
    when ``src`` row i translates ``tgt`` row ``src2tgt_gold[i]`` (a permutation)."""
    gold = np.asarray(src2tgt_gold)
    inverse = np.empty_like(gold)
    inverse[gold] = np.arange(len(gold))
    result = {}
    for method, (s2t, t2s) in predictions.items():
        a, b = float(np.mean(s2t == gold)), float(np.mean(t2s == inverse))
        result[method] = {"src2tgt": a, "tgt2src": b, "mean": (a + b) / 2}
    return result


def retrieval_correct(
    src,
    tgt,
    methods=METHODS,
    k: int = 4,
    batch_size: int = 1024,
    use_faiss: bool = False,
    device=None,
) -> Dict[str, Dict[str, np.ndarray]]:
    """Per-pair top-1 hits ``{method: {"src2tgt": bool (n,), "tgt2src": bool (n,)}}`` for
    line-aligned ``src``/``tgt`` embeddings (n, d): entry i says whether query i found row i."""
    if np.shape(src) != np.shape(tgt):
        raise WeamDataError(
            f"src {tuple(np.shape(src))} and tgt {tuple(np.shape(tgt))} must be line-aligned (same shape)"
        )
    gold = np.arange(np.shape(src)[0])
    predictions = retrieve(src, tgt, methods, k, batch_size, use_faiss, device)
    return {m: {"src2tgt": s2t == gold, "tgt2src": t2s == gold} for m, (s2t, t2s) in predictions.items()}


def accuracies(correct: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, Dict[str, float]]:
    """``{method: {"src2tgt": acc, "tgt2src": acc, "mean": acc}}`` from per-pair hits."""
    result = {}
    for method, hits in correct.items():
        s2t, t2s = float(np.mean(hits["src2tgt"])), float(np.mean(hits["tgt2src"]))
        result[method] = {"src2tgt": s2t, "tgt2src": t2s, "mean": (s2t + t2s) / 2}
    return result


def retrieval_accuracy(
    src, tgt, methods=METHODS, k: int = 4, batch_size: int = 1024, use_faiss: bool = False, device=None
) -> Dict[str, Dict[str, float]]:
    """Top-1 accuracy ``{method: {"src2tgt": acc, "tgt2src": acc, "mean": acc}}`` for
    line-aligned ``src``/``tgt`` embeddings (n, d)."""
    return accuracies(retrieval_correct(src, tgt, methods, k, batch_size, use_faiss, device))


# Per-pair hits are kept in the results (and their JSON) as strings of 0/1, one character per
# held-out pair in file order: compact, and enough to bootstrap intervals later.
def pack_hits(hits) -> str:
    return "".join("1" if h else "0" for h in np.asarray(hits, dtype=bool))


def unpack_hits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8) == ord("1")


def language_result(correct: Dict[str, Dict[str, np.ndarray]]) -> dict:
    """One language's entry of the results: ``{"n", method: accuracies, "correct": {method:
    {direction: "0110..."}}}``."""
    n = len(next(iter(correct.values()))["src2tgt"])
    return {
        "n": n,
        **accuracies(correct),
        "correct": {m: {d: pack_hits(v) for d, v in hits.items()} for m, hits in correct.items()},
    }


def pair_scores(lang_result: dict, method: str, direction: str = "mean") -> Optional[np.ndarray]:
    """Per-pair score of one language's result: its hit (0/1) in one direction, or for
    ``mean`` the average of both directions (0, 0.5, 1); None for results without hits."""
    hits = lang_result.get("correct", {}).get(method)
    if hits is None:
        return None
    if direction == "mean":
        return (unpack_hits(hits["src2tgt"]).astype(np.float64) + unpack_hits(hits["tgt2src"])) / 2
    return unpack_hits(hits[direction]).astype(np.float64)


def averages(results: Dict[str, Dict], min_heldout: int = stats.MIN_HELDOUT) -> dict:
    """Fair averages of ``{lang: {"n", method: {...}}}``: ``{"min_heldout", "covered",
    "excluded", method: {direction: {"macro", "pair_weighted"}}}`` over the languages with at
    least ``min_heldout`` held-out pairs (None where no language qualifies)."""
    n = {lang: r["n"] for lang, r in results.items()}
    out = {"min_heldout": min_heldout, "covered": stats.covered_languages(n, min_heldout)}
    out["excluded"] = [lang for lang in results if lang not in out["covered"]]
    for m in METHODS:
        if all(m in r for r in results.values()):
            out[m] = {}
            for d in ("src2tgt", "tgt2src", "mean"):
                avg = stats.fair_average({lang: r[m][d] for lang, r in results.items()}, n, min_heldout)
                out[m][d] = {"macro": avg.macro, "pair_weighted": avg.pair_weighted}
    return out


def format_table(results: Dict[str, Dict], src_lang: str = "en", min_heldout: int = stats.MIN_HELDOUT) -> str:
    """Markdown table of ``{lang: {"n": n, method: {...}}}``: a row per language (``†`` marks
    fewer than ``min_heldout`` held-out pairs), then the language-macro and the pair-weighted
    averages over the other languages, and a note naming what the averages cover."""
    methods = [m for m in METHODS if any(m in r for r in results.values())]
    header = ["lang", "n"]
    for m in methods:
        header += [f"{m} {src_lang}->xx", f"{m} xx->{src_lang}"]
    rows = [header, ["---"] * len(header)]
    avg = averages(results, min_heldout)
    for lang in sorted(results):
        r = results[lang]
        row = [lang + ("" if lang in avg["covered"] else " †"), str(r["n"])]
        for m in methods:
            row += [f"{100 * r[m]['src2tgt']:.1f}", f"{100 * r[m]['tgt2src']:.1f}"]
        rows.append(row)
    note = ""
    if len(results) > 1:
        n_covered = sum(results[lang]["n"] for lang in avg["covered"])
        for kind, label in (("macro", f"avg ({len(avg['covered'])} langs)"), ("pair_weighted", "avg (pairs)")):
            row = [label, str(n_covered)]
            for m in methods:
                row += [
                    "-" if avg[m][d][kind] is None else f"{100 * avg[m][d][kind]:.1f}" for d in ("src2tgt", "tgt2src")
                ]
            rows.append(row)
        fair = stats.FairAverage(None, None, avg["covered"], avg["excluded"], min_heldout)
        note = (
            f"\navg: language-macro and pair-weighted averages; {fair.describe()}"
            + (" (marked †)" if avg["excluded"] else "")
            + ".\n"
        )
    return "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n" + note


def read_parallel(src_path: str, tgt_path: str, max_sentences: Optional[int] = None) -> Tuple[list, list]:
    """Line-aligned raw text; blank lines on either side drop the pair (nothing to embed)."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise WeamDataError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}")
    pairs = [(s, t) for s, t in zip(src, tgt) if s.strip() and t.strip()]
    if max_sentences:
        pairs = pairs[:max_sentences]
    return [s for s, _ in pairs], [t for _, t in pairs]
