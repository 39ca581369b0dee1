"""SQuAD v1.1-format JSON (SQuAD, MLQA, XQuAD): reading, checking, and what a file name says.

A file is ``{"data": [{"title": ..., "paragraphs": [{"context": str, "qas": [{"id": str,
"question": str, "answers": [{"text": str, "answer_start": int}, ...]}]}]}]}``. Any entry that
does not fit is refused with ``FILE: data[i].paragraphs[j].qas[k] (id ...): reason``.

File names tell the benchmark and languages (the names the benchmarks ship):

* MLQA ``dev-context-XX-question-YY.json`` / ``test-context-XX-question-YY.json``: context
  language XX, question language YY; XLT when XX == YY, G-XLT otherwise. Scored with MLQA's
  normalization for the context language (the answer is a span of the context).
* XQuAD ``xquad.XX.json``: both in XX, scored with SQuAD v1.1's normalization (as XTREME does).
* anything else (e.g. SQuAD's ``dev-v1.1.json``): language unknown, SQuAD v1.1's normalization.

XTREME's download script blanks the test answers of its MLQA and XQuAD copies (every question
gets the one answer ``{"text": "", "answer_start": 0}``). Such a file can be predicted (XTREME's
submission format is our prediction file) but not scored: ``has_gold`` says which is which, and a
file that blanks only some questions is refused.
"""

import json
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from fairseq_weam.core.errors import WeamError

_MLQA_NAME = re.compile(r"^(dev|test)-context-([a-z]{2,3})-question-([a-z]{2,3})\.json$")
_XQUAD_NAME = re.compile(r"^xquad\.([a-z]{2,3})\.json$")


class QADataError(WeamError, ValueError):
    """A malformed QA file; the message names the file and the entry."""


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: List[str]  # gold texts (several for dev/test files)
    answer_starts: List[int]


@dataclass(frozen=True)
class EvalFileInfo:
    benchmark: str  # "mlqa", "xquad" or "squad"
    context_lang: Optional[str]
    question_lang: Optional[str]
    split: Optional[str] = None  # MLQA: "dev" or "test"

    @property
    def setting(self) -> str:
        """MLQA's XLT (same language) / G-XLT (mixed); XQuAD is XLT; unknown files: ``-``."""
        if self.context_lang is None:
            return "-"
        return "XLT" if self.context_lang == self.question_lang else "G-XLT"

    @property
    def scheme(self) -> str:
        """The answer normalization the benchmark's own evaluation uses."""
        return "mlqa" if self.benchmark == "mlqa" else "squad"


def describe_file(path: str) -> EvalFileInfo:
    name = os.path.basename(path)
    m = _MLQA_NAME.match(name)
    if m:
        return EvalFileInfo("mlqa", m.group(2), m.group(3), m.group(1))
    m = _XQUAD_NAME.match(name)
    if m:
        return EvalFileInfo("xquad", m.group(1), m.group(1))
    return EvalFileInfo("squad", None, None)


def _need(cond, path, where, reason):
    if not cond:
        raise QADataError(f"{path}: {where}: {reason}")


def read_squad(path: str, training: bool = False) -> List[QAExample]:
    """Every question of a SQuAD v1.1-format file, checked.

    ``training``: each question must have exactly one answer, and that answer must be the text
    found in the context at ``answer_start`` (the span the model learns). Evaluation files need
    at least one answer text per question (offsets are not used for scoring).
    """
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise QADataError(f"{path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except UnicodeDecodeError as e:
        raise QADataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    _need(
        isinstance(doc, dict) and isinstance(doc.get("data"), list),
        path,
        "top level",
        'expected {"data": [...]} (SQuAD v1.1 format)',
    )
    examples, seen, blank = [], {}, []
    for i, article in enumerate(doc["data"]):
        _need(
            isinstance(article, dict) and isinstance(article.get("paragraphs"), list),
            path,
            f"data[{i}]",
            'expected {"paragraphs": [...]}',
        )
        for j, para in enumerate(article["paragraphs"]):
            where = f"data[{i}].paragraphs[{j}]"
            _need(
                isinstance(para, dict) and isinstance(para.get("context"), str) and isinstance(para.get("qas"), list),
                path,
                where,
                'expected {"context": str, "qas": [...]}',
            )
            context = para["context"]
            for k, qa in enumerate(para["qas"]):
                qwhere = f"{where}.qas[{k}]"
                _need(isinstance(qa, dict) and isinstance(qa.get("id"), (str, int)), path, qwhere, 'missing "id"')
                qid = str(qa["id"])
                qwhere += f" (id {qid})"
                _need(qid not in seen, path, qwhere, f"duplicate id (also at {seen.get(qid)})")
                seen[qid] = qwhere
                _need(
                    isinstance(qa.get("question"), str) and qa["question"].strip(),
                    path,
                    qwhere,
                    '"question" must be a non-empty string',
                )
                answers = qa.get("answers")
                _need(isinstance(answers, list) and answers, path, qwhere, '"answers" must be a non-empty list')
                texts, starts = [], []
                for a, ans in enumerate(answers):
                    _need(
                        isinstance(ans, dict) and isinstance(ans.get("text"), str),
                        path,
                        f"{qwhere}.answers[{a}]",
                        'expected {"text": str, "answer_start": int}',
                    )
                    texts.append(ans["text"])
                    starts.append(ans.get("answer_start"))
                if training:
                    _need(
                        len(answers) == 1,
                        path,
                        qwhere,
                        f"a training question needs exactly one answer, got {len(answers)}",
                    )
                    start, text = starts[0], texts[0]
                    _need(
                        isinstance(start, int) and not isinstance(start, bool),
                        path,
                        qwhere,
                        '"answer_start" must be an integer',
                    )
                    _need(
                        text.strip() and context[start : start + len(text)] == text,
                        path,
                        qwhere,
                        f"answer {text!r} is not the context's text at answer_start {start} "
                        f"({context[start : start + len(text)]!r})",
                    )
                if not any(t.strip() for t in texts):
                    blank.append(qwhere)
                examples.append(QAExample(qid, qa["question"], context, texts, starts))
    _need(examples, path, "data", "no questions")
    _need(
        not blank or len(blank) == len(examples),
        path,
        blank[0] if blank else "",
        f"no answer text, while other questions have one ({len(blank)} of {len(examples)} questions are blank)",
    )
    return examples


def has_gold(examples: List[QAExample]) -> bool:
    """False for a file whose answers were blanked (XTREME's test copies); read_squad refuses a mix."""
    return any(t.strip() for t in examples[0].answers)


def gold_answers(examples: List[QAExample]) -> Dict[str, List[str]]:
    return {ex.id: ex.answers for ex in examples}
