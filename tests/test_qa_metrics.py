"""EM / F1 with MLQA's per-language and SQuAD v1.1's answer normalization, on crafted answers
whose scores are computed by hand (token multisets after normalization)."""

import pytest

from fairseq_weam.evaluation.qa import metrics
from fairseq_weam.evaluation.qa.metrics import answer_tokens, exact_match, f1, normalize_answer, score


@pytest.mark.parametrize(
    "lang,text,tokens",
    [
        ("en", "The Eiffel Tower!", ["eiffel", "tower"]),
        ("en", "an apple, a pear", ["apple", "pear"]),
        ("en", "theatre", ["theatre"]),  # articles only as whole words
        ("es", "¿Los gatos negros?", ["gatos", "negros"]),  # ¿ is Unicode punctuation
        ("es", "el elefante", ["elefante"]),
        ("de", "Einer der Hunde", ["hunde"]),
        ("de", "Einstein", ["einstein"]),
        ("vi", "những con mèo của tôi", ["con", "mèo", "tôi"]),
        ("vi", "các con mèo", ["các", "con", "mèo"]),  # các is not in MLQA's list
        ("hi", "a b", ["a", "b"]),  # no articles in hi
        ("ar", "الكتاب", ["كتاب"]),
        ("ar", "مالك", ["م", "ك"]),  # ال removed inside the word too
        ("zh", "北京市。", ["北", "京", "市"]),
        ("zh", "iPhone 手机", ["iphone", "手", "机"]),
        ("zh", "the 北京", ["the", "北", "京"]),  # no articles in zh
    ],
)
def test_mlqa_tokens(lang, text, tokens):
    assert answer_tokens(text, lang, "mlqa") == tokens
    assert normalize_answer(text, lang) == " ".join(tokens)


def test_squad_normalization_keeps_unicode_punctuation_and_spanish_articles():
    assert answer_tokens("¿Dónde?", scheme="squad") == ["¿dónde"]
    assert answer_tokens("«El gato»", scheme="squad") == ["«el", "gato»"]
    assert answer_tokens("The cat.", scheme="squad") == ["cat"]
    assert exact_match("el gato", "gato", scheme="squad") == 0.0
    assert f1("el gato", "gato", scheme="squad") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert exact_match("el gato", "gato", "es", "mlqa") == 1.0


@pytest.mark.parametrize(
    "lang,pred,gold,em,f",
    [
        ("en", "the big red car", "a red car", 0.0, 0.8),  # P 2/3, R 1
        ("en", "Red car", "red car.", 1.0, 1.0),
        ("en", "the", "a", 1.0, 0.0),  # both empty: EM 1, F1 0 (as the scripts)
        ("en", "cat cat dog", "cat dog dog", 0.0, 2 / 3),  # multiset overlap 2: P 2/3, R 2/3
        ("vi", "các con mèo", "con mèo", 0.0, 0.8),
        ("zh", "北京市", "北京", 0.0, 0.8),  # character F1: P 2/3, R 1
        ("zh", "在北京", "北京市", 0.0, 2 / 3),  # P 2/3, R 2/3
        ("ar", "مالك", "ملك", 0.0, 0.0),
        ("de", "dem Haus", "das Haus", 1.0, 1.0),
        ("es", "unas casas", "casas", 1.0, 1.0),
    ],
)
def test_exact_match_and_f1(lang, pred, gold, em, f):
    assert exact_match(pred, gold, lang) == em
    assert f1(pred, gold, lang) == pytest.approx(f)


def test_score_maxes_over_golds_and_counts_unanswered_as_zero():
    golds = {"q1": ["Paris", "the city of Paris"], "q2": ["red"], "q3": ["blue car"]}
    preds = {"q1": "city of paris", "q2": "red car", "extra": "ignored"}
    out = score(golds, preds, "en")
    # q1: EM 1 and F1 1 against the second gold; q2: EM 0, F1 2*(1/2*1)/(3/2) = 2/3; q3: unanswered.
    assert out["exact_match"] == pytest.approx(100 / 3)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert (out["n"], out["answered"]) == (3, 2)


def test_unknown_language_or_scheme_is_refused():
    with pytest.raises(ValueError, match="no rules for language 'th'"):
        answer_tokens("x", "th", "mlqa")
    with pytest.raises(ValueError, match="unknown answer normalization"):
        answer_tokens("x", "en", "bleu")
    assert answer_tokens("The x", "th", "squad") == ["x"]  # squad ignores the language


def test_unicode_punctuation_set():
    for ch in "。，、«»¿¡—…“”":
        assert ch in metrics.UNICODE_PUNCT
    assert "$" in metrics.UNICODE_PUNCT and "$" in metrics.ASCII_PUNCT  # string.punctuation (a symbol, not P*)
    assert "€" not in metrics.UNICODE_PUNCT  # currency symbols are Sc, kept
