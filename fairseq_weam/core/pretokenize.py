"""The text normalization of prepared data: what is tokenized and aligned, and what evaluation and
the exported tokenizer must apply to new text to encode it like the training text.

Scripts written without spaces (Chinese, Japanese) would make a whole sentence one "word". Like
BERT's basic tokenizer we put spaces around each CJK ideograph and kana, so each becomes a word.
Whether a prepared directory did is recorded in its ``summary.json`` (see
:class:`fairseq_weam.core.data_dir.PreparedData`).
"""

import re

# CJK symbols and punctuation, hiragana, katakana, CJK ideographs (with extension A and the
# compatibility block), fullwidth forms, and the supplementary ideograph planes.
CJK_CHARS = "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f]"
_CJK = re.compile(f"({CJK_CHARS})")


def pretokenize(line: str, split_cjk: bool = True) -> str:
    """The text that is tokenized and aligned: single spaces, CJK characters as separate words.

    Evaluation code that encodes raw text for a model trained on prepared data should apply the
    same function with the ``split_cjk`` recorded in the output's summary.json
    (``PreparedData(path).pretokenizer()``).
    """
    if split_cjk:
        line = _CJK.sub(r" \1 ", line)
    return " ".join(line.split())
