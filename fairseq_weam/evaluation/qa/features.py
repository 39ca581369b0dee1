"""SQuAD-style features for an encoder with a span head: windows over long contexts, answer
positions for training, and answers read back from the start / end logits.

The standard recipe (BERT's run_squad, transformers' run_qa), on a fast tokenizer's offsets:

* each (question, context) pair is tokenized as ``<s> question </s></s> context </s>`` (the
  tokenizer's pair template); questions longer than ``max_query_length`` tokens are cut;
  contexts that do not fit ``max_seq_length`` are split into windows that share ``doc_stride``
  tokens with the next one (transformers' meaning of the stride: the overlap);
* training label of a window: the first and last token of the answer, or the ``<s>`` position
  (index 0) when the answer is not wholly inside the window;
* prediction: over all windows of a question, the ``n_best`` highest start and end logits are
  paired; a pair counts when both tokens are in the context, start <= end and the span has at
  most ``max_answer_length`` tokens; the best sum of logits wins and its text is the context's
  characters between the start token's first and the end token's last character. A question
  with no valid pair gets the empty answer.
"""

from typing import Dict, List, Sequence

import numpy as np

from fairseq_weam.core.errors import OptionError
from fairseq_weam.evaluation.qa.data import QAExample


def check_lengths(tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int) -> None:
    """Raise OptionError when a window could hold no context token beyond the shared stride."""
    room = max_seq_length - max_query_length - tokenizer.num_special_tokens_to_add(pair=True)
    if room <= doc_stride:
        raise OptionError(
            f"--max-seq-length {max_seq_length} leaves {room} context tokens per window after a question of "
            f"--max-query-length {max_query_length} and the special tokens; --doc-stride {doc_stride} must be smaller"
        )


def _cut_questions(tokenizer, questions: Sequence[str], max_query_length: int) -> List[str]:
    # Leading whitespace would become tokens of its own in some tokenizers (SQuAD has such questions).
    questions = [q.lstrip() for q in questions]
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [
        q if len(offs) <= max_query_length else q[: offs[max_query_length - 1][1]]
        for q, offs in zip(questions, enc["offset_mapping"])
    ]


def _encode(tokenizer, examples: Sequence[QAExample], max_seq_length, doc_stride, max_query_length):
    questions = _cut_questions(tokenizer, [ex.question for ex in examples], max_query_length)
    return tokenizer(
        questions,
        [ex.context for ex in examples],
        truncation="only_second",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


def _model_inputs(enc) -> Dict[str, list]:
    # BERT-style models need the segment ids; XLM-R's tokenizer returns none.
    return {k: enc[k] for k in ("input_ids", "token_type_ids") if k in enc}


def _context_span(sequence_ids) -> tuple:
    first = sequence_ids.index(1)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
    return first, last


def train_features(
    tokenizer, examples: Sequence[QAExample], max_seq_length: int, doc_stride: int, max_query_length: int
) -> Dict[str, list]:
    """Windows with ``start_positions`` / ``end_positions`` (token indices; 0 = answer not inside)."""
    enc = _encode(tokenizer, examples, max_seq_length, doc_stride, max_query_length)
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ex = examples[enc["overflow_to_sample_mapping"][i]]
        start_char = ex.answer_starts[0]
        end_char = start_char + len(ex.answers[0])
        first, last = _context_span(enc.sequence_ids(i))
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            starts.append(0)
            ends.append(0)
            continue
        s = first
        while s <= last and offsets[s][0] <= start_char:
            s += 1
        e = last
        while e >= first and offsets[e][1] >= end_char:
            e -= 1
        starts.append(s - 1)
        ends.append(e + 1)
    return {**_model_inputs(enc), "start_positions": starts, "end_positions": ends}


def eval_features(
    tokenizer, examples: Sequence[QAExample], max_seq_length: int, doc_stride: int, max_query_length: int
) -> Dict[str, list]:
    """Windows with ``example_index`` and ``offset_mapping`` (None outside the context)."""
    enc = _encode(tokenizer, examples, max_seq_length, doc_stride, max_query_length)
    offsets = [
        [o if s == 1 else None for o, s in zip(offs, enc.sequence_ids(i))]
        for i, offs in enumerate(enc["offset_mapping"])
    ]
    return {**_model_inputs(enc), "example_index": list(enc["overflow_to_sample_mapping"]), "offset_mapping": offsets}


def best_answers(
    examples: Sequence[QAExample],
    features: Dict[str, list],
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    n_best: int = 20,
    max_answer_length: int = 30,
) -> Dict[str, str]:
    """The best-scoring valid span of each example (``{id: text}``), over all its windows."""
    best = {}  # example index -> (score, text)
    for f, (ex_index, offsets) in enumerate(zip(features["example_index"], features["offset_mapping"])):
        start, end = np.asarray(start_logits[f]), np.asarray(end_logits[f])
        n = len(offsets)
        top_starts = np.argsort(start[:n])[::-1][:n_best]
        top_ends = np.argsort(end[:n])[::-1][:n_best]
        for s in top_starts:
            if offsets[s] is None:
                continue
            for e in top_ends:
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(start[s] + end[e])
                if ex_index not in best or score > best[ex_index][0]:
                    context = examples[ex_index].context
                    best[ex_index] = (score, context[offsets[s][0] : offsets[e][1]])
    return {ex.id: best[i][1].strip() if i in best else "" for i, ex in enumerate(examples)}
