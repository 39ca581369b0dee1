"""What an objective actually trains on a prepared corpus, measured through fairseq's own iterators.

The batches come from ``task.get_batch_iterator`` exactly as ``fairseq-train`` builds them
(data-loader workers included), and every figure is computed from the collated batches alone:

* ``word_rate``: masked words / words (the quantity ``--mask-prob`` sets), with the spread of the
  per-example rate (p10, p90, max);
* ``token_rate``: masked tokens / tokens (specials excluded);
* ``xl_words_per_token``: masked words with an exchange target per masked token (under the
  loss before the fix, lambda was scaled by this; now each term is its own mean);
* ``xl_marker_share``: share of the exchange-target weight on pieces that are only a word-start
  marker (the bare ``▁``);
* ``fresh_share``: examples whose masked positions differ between epoch 1 and epoch 2;
* ``dup_batches`` / ``max_copies``: batches holding two pairs with the same source or target
  sentence (upsampled copies, or repeated messages), and the most copies of one sentence.
"""

from collections import defaultdict
from typing import Dict, Sequence

import numpy as np
import torch

from fairseq_weam.data.masking import WORD_START


class Vocab:
    """Word starts and marker-only pieces of a fairseq dictionary (self-contained, so the same
    measurement runs against any version of the task)."""

    def __init__(self, dictionary, word_boundary: str = "sentencepiece"):
        symbols = dictionary.symbols
        if word_boundary == "token":
            self.is_word_start = np.ones(len(symbols), dtype=bool)
        else:
            self.is_word_start = np.array([s.startswith(WORD_START) for s in symbols], dtype=bool)
        self.is_content = np.array([len(s.replace(WORD_START, "")) > 0 for s in symbols], dtype=bool)


def batch_stats(sample, pieces, special_ids: Sequence[int], pad: int) -> Dict[int, dict]:
    """Per-stream counts of one collated batch (see the module docstring); ``pieces`` has
    ``is_word_start`` and ``is_content`` arrays over the vocabulary."""
    target = sample["target"]
    source = sample["net_input"]["src_tokens"]
    original = torch.where(target.ne(pad), target, source).numpy()
    masked = target.ne(pad).numpy()
    special = np.isin(original, list(special_ids))
    starts = pieces.is_word_start[original] | np.roll(special, 1, axis=1)
    word_start = starts & ~special
    xl = sample["xl_target"]
    if xl.dim() == 2:  # one target per position, weight 1
        xl = xl.unsqueeze(-1)
    weight = sample["xl_weight"] if "xl_weight" in sample else xl.ne(pad).float()
    if weight.dim() == 2:
        weight = weight.unsqueeze(-1)
    xl, weight = xl.numpy(), weight.numpy()
    marker = ~pieces.is_content[xl] & (xl != pad)
    out = defaultdict(lambda: defaultdict(float))
    rates = defaultdict(list)
    for row, stream in enumerate(sample["stream"].tolist()):
        s = out[stream]
        n_words = int(word_start[row].sum())
        n_masked_words = int((word_start[row] & masked[row]).sum())
        s["words"] += n_words
        s["masked_words"] += n_masked_words
        s["tokens"] += int((~special[row]).sum())
        s["masked_tokens"] += int(masked[row].sum())
        s["xl_words"] += float(weight[row].sum())
        s["xl_marker"] += float((weight[row] * marker[row]).sum())
        if n_words:
            rates[stream].append(n_masked_words / n_words)
    for stream, r in rates.items():
        out[stream]["rates"] = r
    return out


def duplicate_copies(sample) -> int:
    """The largest number of pairs in the batch that share a source or a target sentence."""
    views = sample.get("views")
    if views is None:
        return 1
    most = 1
    for side in ("src_tokens", "tgt_tokens"):
        keys = [tuple(row.tolist()) for row in views[side]]
        counts = defaultdict(int)
        for k in keys:
            counts[k] += 1
        most = max(most, max(counts.values()))
    return most


def summarize(totals: dict) -> dict:
    rates = np.asarray(totals.get("rates", []), dtype=np.float64)
    return {
        "examples": int(rates.size),
        "word_rate": totals["masked_words"] / max(totals["words"], 1),
        "word_rate_p10": float(np.percentile(rates, 10)) if rates.size else 0.0,
        "word_rate_p90": float(np.percentile(rates, 90)) if rates.size else 0.0,
        "word_rate_max": float(rates.max()) if rates.size else 0.0,
        "token_rate": totals["masked_tokens"] / max(totals["tokens"], 1),
        "xl_words_per_token": totals["xl_words"] / max(totals["masked_tokens"], 1),
        "xl_marker_share": totals["xl_marker"] / totals["xl_words"] if totals["xl_words"] else 0.0,
    }


def masked_positions(sample, pad: int) -> Dict[tuple, tuple]:
    """``{(stream, id): masked positions}`` of one batch."""
    masked = sample["target"].ne(pad)
    return {
        (int(s), int(i)): tuple(masked[row].nonzero().flatten().tolist())
        for row, (s, i) in enumerate(zip(sample["stream"].tolist(), sample["id"].tolist()))
    }


def measure(
    task, batch_size: int = 32, num_workers: int = 0, epochs: int = 2, seed: int = 1, progress: bool = True
) -> dict:
    """Run ``epochs`` epochs of the task's training batches; statistics of epoch 1 per stream,
    mask freshness between epochs, and duplicate pairs per batch."""
    from tqdm import tqdm

    d = task.source_dictionary
    special_ids = (d.bos(), d.eos(), d.pad())
    vocab = Vocab(d, task.cfg.word_boundary)
    dataset = task.dataset(task.cfg.train_subset)
    per_stream = defaultdict(lambda: defaultdict(float))
    masks = []
    batches = dup_batches = max_copies = 0
    for epoch in range(1, epochs + 1):
        itr = task.get_batch_iterator(
            dataset=dataset,
            max_sentences=batch_size,
            max_positions=task.max_positions(),
            ignore_invalid_inputs=True,
            seed=seed,
            num_workers=num_workers,
            epoch=epoch,
        ).next_epoch_itr(shuffle=True)
        seen = {}
        for sample in tqdm(itr, desc=f"epoch {epoch}", disable=not progress, leave=False):
            if not sample:
                continue
            seen.update(masked_positions(sample, d.pad()))
            if epoch != 1:
                continue
            batches += 1
            copies = duplicate_copies(sample)
            dup_batches += copies > 1
            max_copies = max(max_copies, copies)
            for stream, counts in batch_stats(sample, vocab, special_ids, d.pad()).items():
                for k, v in counts.items():
                    if k == "rates":
                        per_stream[stream].setdefault("rates", []).extend(v)
                    else:
                        per_stream[stream][k] += v
        masks.append(seen)
    result = {
        "streams": {task.stream_names[s]: summarize(t) for s, t in sorted(per_stream.items())},
        "batches": batches,
        "dup_batches": dup_batches,
        "max_copies": max_copies,
    }
    all_totals = defaultdict(float)
    for t in per_stream.values():
        for k, v in t.items():
            if k != "rates":
                all_totals[k] += v
    all_totals["rates"] = [r for t in per_stream.values() for r in t.get("rates", [])]
    result["all"] = summarize(all_totals)
    if len(masks) > 1:
        common = set(masks[0]) & set(masks[1])
        result["fresh_share"] = sum(masks[0][k] != masks[1][k] for k in common) / max(len(common), 1)
        result["fresh_compared"] = len(common)
    return result
