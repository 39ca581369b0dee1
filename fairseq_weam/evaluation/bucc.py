"""BUCC 2018 parallel-sentence mining, scored as LASER's ``tasks/bucc`` and XTREME score it.

Files as BUCC ships them (``de-en.training.de``, ``.en``, ``.gold``; XTREME renames
training -> test and sample -> dev): each pool line is ``ID<TAB>sentence``; the gold file has
one ``SRC_ID<TAB>TGT_ID`` pair per line.

The recipe (LASER ``mine_bitexts.py --mode mine --retrieval max --margin ratio -k 4`` and
``bucc.py``; XTREME ``third_party/utils_retrieve.py``):

1. Identical sentences of a pool are embedded once. A sentence that occurs under several IDs
   cannot be mapped back to one ID, so candidates on it are dropped (as ``read_sent2id`` does).
2. k nearest neighbours by cosine, both ways; ``fwd_mean`` / ``bwd_mean`` = mean cosine to them.
3. Each source sentence's best target among its k neighbours by the ratio margin
   ``cos(x, y) / ((fwd_mean(x) + bwd_mean(y)) / 2)``, and each target's best source likewise.
4. ``max`` retrieval: both lists together, by descending score, each sentence used at most once
   (greedy), scores > 0 kept: the candidates, each with its margin score.
5. Threshold: walk the candidates by descending score; at the prefix with the best F1 against the
   gold, the threshold is the midpoint between that candidate's score and the next one's
   (the last candidate's own score when it is the last). Tuned on the dev (sample) split, applied to
   test: pairs with score >= threshold are predicted.
6. precision = correct / predicted, recall = correct / gold, F1 their harmonic mean, over sets
   of ID pairs (XTREME ``evaluate.py: bucc_f1``).
"""

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch

from fairseq_weam.core.atomic import write_text_atomic
from fairseq_weam.core.errors import WeamError
from fairseq_weam.core.text_files import open_text
from fairseq_weam.evaluation import retrieval

Pair = Tuple[str, str]


class BuccFormatError(WeamError, ValueError):
    """A pool or gold file not in BUCC's format; names the file and line."""


@dataclass
class Pool:
    path: str
    ids: List[str]
    sentences: List[str]

    def unique(self) -> Tuple[List[str], List[Optional[str]]]:
        """Distinct sentences in first-seen order, and the ID of each (None: several IDs share it)."""
        first, count = OrderedDict(), {}
        for i, s in zip(self.ids, self.sentences):
            first.setdefault(s, i)
            count[s] = count.get(s, 0) + 1
        texts = list(first)
        return texts, [first[s] if count[s] == 1 else None for s in texts]


def read_pool(path: str) -> Pool:
    ids, sentences, seen = [], [], set()
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            sid, tab, text = line.partition("\t")
            if not tab or not sid.strip() or not text.strip():
                raise BuccFormatError(f"{path}:{lineno}: expected ID<TAB>sentence, got {line[:60]!r}")
            if sid in seen:
                raise BuccFormatError(f"{path}:{lineno}: ID {sid} occurs twice")
            seen.add(sid)
            ids.append(sid)
            sentences.append(text.strip())
    if not ids:
        raise BuccFormatError(f"{path}: empty pool")
    return Pool(path, ids, sentences)


def read_gold(path: str, src: Pool, tgt: Pool) -> Set[Pair]:
    src_ids, tgt_ids = set(src.ids), set(tgt.ids)
    gold = set()
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.strip().split("\t")
            if len(parts) != 2:
                raise BuccFormatError(f"{path}:{lineno}: expected SRC_ID<TAB>TGT_ID, got {line.strip()[:60]!r}")
            if parts[0] not in src_ids or parts[1] not in tgt_ids:
                raise BuccFormatError(
                    f"{path}:{lineno}: {parts[0]} / {parts[1]} not in {src.path} / {tgt.path} (source and target "
                    "swapped?)"
                )
            gold.add((parts[0], parts[1]))
    return gold


def mine(
    x, y, k: int = 4, batch_size: int = 1024, use_faiss: bool = False, device=None
) -> List[Tuple[int, int, float]]:
    """Steps 2-4 on embeddings ``x`` (n, d) and ``y`` (m, d): candidate ``(i, j, score)``."""
    x, y = retrieval.normalize(x).to(device), retrieval.normalize(y).to(device)
    x_sims, x_inds = retrieval.knn(x, y, k, batch_size, use_faiss, desc="k-NN src->tgt")
    y_sims, y_inds = retrieval.knn(y, x, k, batch_size, use_faiss, desc="k-NN tgt->src")
    x_mean, y_mean = x_sims.mean(1), y_sims.mean(1)
    fwd = x_sims / ((x_mean[:, None] + y_mean[x_inds]) / 2)
    bwd = y_sims / ((y_mean[:, None] + x_mean[y_inds]) / 2)
    fwd_score, fwd_col = fwd.max(1)
    bwd_score, bwd_col = bwd.max(1)
    fwd_best = x_inds.gather(1, fwd_col[:, None]).squeeze(1)
    bwd_best = y_inds.gather(1, bwd_col[:, None]).squeeze(1)
    src = torch.cat([torch.arange(len(x), device=x.device), bwd_best]).cpu().numpy()
    tgt = torch.cat([fwd_best, torch.arange(len(y), device=x.device)]).cpu().numpy()
    scores = torch.cat([fwd_score, bwd_score]).cpu().double().numpy()
    out, seen_src, seen_tgt = [], set(), set()
    for c in np.argsort(-scores, kind="stable"):
        i, j = int(src[c]), int(tgt[c])
        if i not in seen_src and j not in seen_tgt:
            seen_src.add(i)
            seen_tgt.add(j)
            if scores[c] > 0:
                out.append((i, j, float(scores[c])))
    return out


def candidates_by_id(mined, src_ids: Sequence[Optional[str]], tgt_ids: Sequence[Optional[str]]) -> Dict[Pair, float]:
    """Step 1's mapping back to IDs: ``{(src_id, tgt_id): score}``."""
    out = {}
    for i, j, s in mined:
        if src_ids[i] is not None and tgt_ids[j] is not None:
            key = (src_ids[i], tgt_ids[j])
            out[key] = max(s, out.get(key, s))
    return out


def prf(predicted: Set[Pair], gold: Set[Pair]) -> Dict[str, float]:
    correct = len(predicted & gold)
    if correct == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    p, r = correct / len(predicted), correct / len(gold)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r)}


def optimize_threshold(candidates: Dict[Pair, float], gold: Set[Pair]) -> float:
    """Step 5: the threshold with the best F1 of ``candidates`` against ``gold``."""
    items = sorted(candidates.items(), key=lambda kv: -kv[1])
    threshold, best_f1, correct = 0.0, 0.0, 0
    for n, (pair, score) in enumerate(items, 1):
        correct += pair in gold
        if correct:
            p, r = correct / n, correct / len(gold)
            f1 = 2 * p * r / (p + r)
            if f1 > best_f1:
                best_f1 = f1
                threshold = (score + items[n][1]) / 2 if n < len(items) else score
    return threshold


def extract(candidates: Dict[Pair, float], threshold: float) -> Set[Pair]:
    return {pair for pair, score in candidates.items() if score >= threshold}


def mine_pools(
    encoder,
    src: Pool,
    tgt: Pool,
    pooling: str = "mean",
    layer="middle",
    k: int = 4,
    batch_size: int = 64,
    score_batch_size: int = 1024,
    use_faiss: bool = False,
) -> Dict[Pair, float]:
    """Encode both pools (identical sentences once) and mine: ``{(src_id, tgt_id): score}``."""
    src_text, src_ids = src.unique()
    tgt_text, tgt_ids = tgt.unique()
    x = encoder.encode(src_text, pooling, layer, batch_size, desc=f"encoding {os.path.basename(src.path)}")
    y = encoder.encode(tgt_text, pooling, layer, batch_size, desc=f"encoding {os.path.basename(tgt.path)}")
    return candidates_by_id(mine(x, y, k, score_batch_size, use_faiss, encoder.device), src_ids, tgt_ids)


def write_pairs(path: str, pairs: Set[Pair]) -> None:
    """XTREME's submission format: ``SRC_ID<TAB>TGT_ID`` per line."""
    write_text_atomic(path, "".join(f"{s}\t{t}\n" for s, t in sorted(pairs)))
