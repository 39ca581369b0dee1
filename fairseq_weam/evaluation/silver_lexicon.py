"""A *silver* bilingual lexicon read off word alignments, for BLI where no human dictionary is
at hand (the offline demo corpus).

Each source word keeps its most frequently linked target word. A pair is kept when

* the source word is linked at least ``min_count`` times to that target word,
* that target takes at least ``min_share`` of all the source word's links (no vague pairs),
* both words are words: letters and combining marks only, with inner hyphens or apostrophes
  (no punctuation, numbers, placeholders such as ``%s`` or ``"%s"``), and
* the words differ ignoring case (identical strings, e.g. "Linux", would be free points: the
  model has no language id, so both sides get the same isolated vector).

Pairs are listed by the source word's link count, most linked first. Such a lexicon inherits
the aligner's errors: it measures agreement with fast_align, not with a human dictionary.
"""

import unicodedata
from collections import Counter, defaultdict
from typing import List, Optional, Sequence, Tuple

from fairseq_weam.core.errors import WeamDataError

_INNER = "-'\u2019"


def is_word(word: str) -> bool:
    """Letters (L*) and combining marks (M*, e.g. Devanagari vowel signs), starting and
    ending with a letter or mark; hyphens and apostrophes only inside."""
    if not word or word[0] in _INNER or word[-1] in _INNER:
        return False
    return (
        all(c in _INNER or unicodedata.category(c)[0] in "LM" for c in word) and unicodedata.category(word[0])[0] == "L"
    )


def induce_lexicon(
    src_lines: Sequence[Sequence[str]],
    tgt_lines: Sequence[Sequence[str]],
    links: Sequence[Sequence[Tuple[int, int]]],
    min_count: int = 3,
    min_share: float = 0.3,
    max_pairs: Optional[int] = None,
) -> List[Tuple[str, str, int, float]]:
    """``[(src, tgt, links of the pair, share of the source word's links), ...]`` from
    word-aligned sentences (``links[k]`` are ``(i, j)`` word indices of pair k)."""
    if not len(src_lines) == len(tgt_lines) == len(links):
        raise WeamDataError(
            f"{len(src_lines)} source, {len(tgt_lines)} target and {len(links)} alignment lines must match"
        )
    pair_counts = defaultdict(Counter)
    for s, t, ls in zip(src_lines, tgt_lines, links):
        for i, j in ls:
            pair_counts[s[i]][t[j]] += 1
    out = []
    for s, targets in pair_counts.items():
        total = sum(targets.values())
        t, c = targets.most_common(1)[0]  # ties: the target linked first
        if c >= min_count and c / total >= min_share and is_word(s) and is_word(t) and s.lower() != t.lower():
            out.append((s, t, c, c / total))
    out.sort(key=lambda x: -sum(pair_counts[x[0]].values()))  # stable: ties keep first-seen order
    return out[:max_pairs] if max_pairs else out


def write_lexicon(path: str, pairs: Sequence[Tuple[str, str, int, float]]) -> None:
    """MUSE format, ``src tgt`` per line, written under a temporary name then renamed."""
    import os

    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for s, t, *_ in pairs:
            f.write(f"{s} {t}\n")
    os.replace(tmp, path)
