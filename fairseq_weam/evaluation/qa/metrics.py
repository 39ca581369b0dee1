"""Exact match and F1 of extractive QA answers, as the official MLQA and SQuAD v1.1 scripts compute them.

Pure functions, no model. Two normalizations:

* ``squad`` (SQuAD v1.1 ``evaluate-v1.1.py``; XTREME scores XQuAD and TyDi QA with it): lower-case,
  drop ASCII punctuation (``string.punctuation``), replace the English articles a / an / the
  (whole words) by a space, split on whitespace.
* ``mlqa`` (MLQA ``mlqa_evaluation_v1.py``, language = the context's language): lower-case, drop
  every character of a Unicode ``P*`` category or ``string.punctuation``, replace the articles of
  the answer language by a space, then split: on whitespace for en es hi vi de ar, "mixed
  segmentation" for zh (every CJK character U+4E00..U+9FA5 is a token of its own, runs of other
  characters are split on whitespace). Articles (whole words, Python ``re`` ``\\b``):

  | lang | removed |
  |---|---|
  | en | a an the |
  | es | un una unos unas el la los las |
  | de | ein eine einen einem eines einer der die das den dem des |
  | vi | của là cái chiếc những |
  | ar | every occurrence of the letters ال, also inside a word (the official regex |
  |    | ``\\sال^|ال``: its first branch can never match, so the second one decides) |
  | hi, zh | none |

EM of a prediction is 1 when its normalized string equals one gold answer's; F1 is the token
F1 (multiset overlap), maximized over the gold answers. A file's score is the mean over all its
questions, in percent; an unanswered question scores 0. Both scripts' quirk is kept: two answers
that both normalize to nothing match exactly (EM 1) but have F1 0.
"""

import re
import string
import sys
import unicodedata
from collections import Counter
from typing import Dict, Iterable, List, Mapping, Optional

from fairseq_weam.core.errors import OptionError
from fairseq_weam.evaluation.qa.data import QADataError

ASCII_PUNCT = frozenset(string.punctuation)
UNICODE_PUNCT = (
    frozenset(chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")) | ASCII_PUNCT
)

WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
MIXED_SEGMENTATION_LANGS = ("zh",)
MLQA_LANGS = WHITESPACE_LANGS + MIXED_SEGMENTATION_LANGS

_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")
SCHEMES = ("squad", "mlqa")


def check_scheme(scheme: str, lang: Optional[str]) -> None:
    """Raise OptionError for a scheme / language the official scripts do not define."""
    if scheme not in SCHEMES:
        raise OptionError(f"--scheme: unknown answer normalization {scheme!r} (choose from {', '.join(SCHEMES)})")
    if scheme == "mlqa" and lang not in MLQA_LANGS:
        raise OptionError(
            f"MLQA's answer normalization has no rules for language {lang!r} "
            f"(it knows {', '.join(MLQA_LANGS)}); score such files with the squad normalization"
        )


def _remove_articles(text: str, lang: str) -> str:
    if lang == "ar":
        return text.replace("ال", " ")
    pattern = _ARTICLES.get(lang)
    return pattern.sub(" ", text) if pattern else text


def mixed_segmentation(text: str) -> List[str]:
    """MLQA's zh tokens: each CJK character (or punctuation mark) alone, other runs split on whitespace."""
    tokens, run = [], []
    for ch in text:
        if _CJK.match(ch) or ch in UNICODE_PUNCT:
            tokens.extend("".join(run).split())
            run = []
            tokens.append(ch)
        else:
            run.append(ch)
    tokens.extend("".join(run).split())
    return tokens


def answer_tokens(text: str, lang: Optional[str] = None, scheme: str = "mlqa") -> List[str]:
    """The normalized tokens of one answer (their join with spaces is the normalized answer)."""
    check_scheme(scheme, lang)
    text = text.lower()
    if scheme == "squad":
        text = "".join(ch for ch in text if ch not in ASCII_PUNCT)
        return _ARTICLES["en"].sub(" ", text).split()
    text = _remove_articles("".join(ch for ch in text if ch not in UNICODE_PUNCT), lang)
    tokens = mixed_segmentation(text) if lang in MIXED_SEGMENTATION_LANGS else text.split()
    return [t for t in tokens if t.strip()]


def normalize_answer(text: str, lang: Optional[str] = None, scheme: str = "mlqa") -> str:
    return " ".join(answer_tokens(text, lang, scheme))


def exact_match(prediction: str, gold: str, lang: Optional[str] = None, scheme: str = "mlqa") -> float:
    return float(answer_tokens(prediction, lang, scheme) == answer_tokens(gold, lang, scheme))


def f1(prediction: str, gold: str, lang: Optional[str] = None, scheme: str = "mlqa") -> float:
    pred, ref = answer_tokens(prediction, lang, scheme), answer_tokens(gold, lang, scheme)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric, prediction: str, golds: Iterable[str], lang=None, scheme="mlqa") -> float:
    return max(metric(prediction, g, lang, scheme) for g in golds)


def score(
    golds: Mapping[str, List[str]], predictions: Mapping[str, str], lang: Optional[str] = None, scheme: str = "mlqa"
) -> Dict[str, float]:
    """EM / F1 in percent over every question of ``golds`` (id -> gold answer texts).

    A question missing from ``predictions`` scores 0 (the official scripts do the same).
    """
    check_scheme(scheme, lang)
    if not golds:
        raise QADataError("no questions to score")
    em = f = 0.0
    answered = 0
    for qid, answers in golds.items():
        if qid not in predictions:
            continue
        answered += 1
        em += best_over_golds(exact_match, predictions[qid], answers, lang, scheme)
        f += best_over_golds(f1, predictions[qid], answers, lang, scheme)
    n = len(golds)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f / n, "n": n, "answered": answered}
