"""Tatoeba sentence retrieval on the files as they are distributed.

Two layouts exist, and reading one as the other gives a silently wrong accuracy:

* **LASER originals** (facebookresearch/LASER ``data/tatoeba/v1``): ``tatoeba.XXX-eng.XXX`` and
  ``tatoeba.XXX-eng.eng`` with ISO 639-3 codes, line-aligned (line i translates line i).
* **XTREME's processed copy** (``xtreme/scripts/download_data.sh``, ``utils_preprocess.py``):
  ``xx-en.xx`` is the LASER ``XXX`` file unchanged, ``xx-en.en`` is the English side
  *sorted* (Python ``sorted`` of the stripped lines, a stable sort), so the line alignment is gone;
  XTREME keeps the gold for its leaderboard. For these we write XTREME's submission file
  (``test-xx.tsv``: line i = 0-based index in ``xx-en.en`` of the sentence retrieved for line i
  of ``xx-en.xx``, the xx -> en direction) and score only against gold: the LASER originals
  (the sort is redone and checked against the copy) or XTREME's label file ``test-xx.tsv`` (same
  format as the prediction).

The layout is told from the file names and checked against the content: an XTREME-named
English side that is not sorted, or a LASER-named English side of 8 or more lines that is
sorted (a renamed processed copy), is refused.
"""

import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from fairseq_weam.core.atomic import write_text_atomic
from fairseq_weam.core.errors import WeamError
from fairseq_weam.core.text_files import read_lines
from fairseq_weam.evaluation import retrieval

# LASER's 112 Tatoeba languages (ISO 639-3) -> our codes: ISO 639-1 where one exists, as
# XTREME's utils_preprocess.py maps them (cmn -> zh, pes -> fa, swh -> sw), else the 3-letter code.
LASER_CODES = {
    "afr": "af",
    "amh": "am",
    "ang": "ang",
    "ara": "ar",
    "arq": "arq",
    "arz": "arz",
    "ast": "ast",
    "awa": "awa",
    "aze": "az",
    "bel": "be",
    "ben": "bn",
    "ber": "ber",
    "bos": "bs",
    "bre": "br",
    "bul": "bg",
    "cat": "ca",
    "cbk": "cbk",
    "ceb": "ceb",
    "ces": "cs",
    "cha": "ch",
    "cmn": "zh",
    "cor": "kw",
    "csb": "csb",
    "cym": "cy",
    "dan": "da",
    "deu": "de",
    "dsb": "dsb",
    "dtp": "dtp",
    "ell": "el",
    "epo": "eo",
    "est": "et",
    "eus": "eu",
    "fao": "fo",
    "fin": "fi",
    "fra": "fr",
    "fry": "fy",
    "gla": "gd",
    "gle": "ga",
    "glg": "gl",
    "gsw": "gsw",
    "heb": "he",
    "hin": "hi",
    "hrv": "hr",
    "hsb": "hsb",
    "hun": "hu",
    "hye": "hy",
    "ido": "io",
    "ile": "ie",
    "ina": "ia",
    "ind": "id",
    "isl": "is",
    "ita": "it",
    "jav": "jv",
    "jpn": "ja",
    "kab": "kab",
    "kat": "ka",
    "kaz": "kk",
    "khm": "km",
    "kor": "ko",
    "kur": "ku",
    "kzj": "kzj",
    "lat": "la",
    "lfn": "lfn",
    "lit": "lt",
    "lvs": "lv",
    "mal": "ml",
    "mar": "mr",
    "max": "max",
    "mhr": "mhr",
    "mkd": "mk",
    "mon": "mn",
    "nds": "nds",
    "nld": "nl",
    "nno": "nn",
    "nob": "nb",
    "nov": "nov",
    "oci": "oc",
    "orv": "orv",
    "pam": "pam",
    "pes": "fa",
    "pms": "pms",
    "pol": "pl",
    "por": "pt",
    "ron": "ro",
    "rus": "ru",
    "slk": "sk",
    "slv": "sl",
    "spa": "es",
    "sqi": "sq",
    "srp": "sr",
    "swe": "sv",
    "swg": "swg",
    "swh": "sw",
    "tam": "ta",
    "tat": "tt",
    "tel": "te",
    "tgl": "tl",
    "tha": "th",
    "tuk": "tk",
    "tur": "tr",
    "tzl": "tzl",
    "uig": "ug",
    "ukr": "uk",
    "urd": "ur",
    "uzb": "uz",
    "vie": "vi",
    "war": "war",
    "wuu": "wuu",
    "xho": "xh",
    "yid": "yi",
    "yue": "yue",
    "zsm": "ms",
}
CODE_TO_LASER = {v: k for k, v in LASER_CODES.items()}
XTREME_DIRECTION = "xx2en"  # what XTREME's leaderboard scores
MIN_LINES_FOR_SORT_CHECK = 8  # 8 random lines come out sorted by chance 1 time in 40,320

_LASER_NAME = re.compile(r"^tatoeba\.([a-z]{3})-eng\.([a-z]{3})$")
_XTREME_NAME = re.compile(r"^([A-Za-z_]+)-en\.([A-Za-z_]+)$")


class TatoebaError(WeamError, ValueError):
    """A Tatoeba directory or gold file that cannot be read unambiguously; names the file."""


@dataclass
class TatoebaSet:
    lang: str  # our code
    layout: str  # "laser" (line-aligned) or "xtreme" (English side sorted)
    xx_path: str
    en_path: str
    gold_path: Optional[str] = None  # xtreme layout: LASER .eng original or XTREME label file
    laser_xx_path: Optional[str] = None  # xtreme layout with LASER originals: checked to match


def sort_order(english: Sequence[str]) -> List[int]:
    """Original line numbers in the order of XTREME's sorted English file."""
    return sorted(range(len(english)), key=lambda i: english[i].strip())


def gold_from_originals(english: Sequence[str]) -> np.ndarray:
    """``gold[i]`` = line of original English line i in the sorted file (the xx -> en answer)."""
    order = sort_order(english)
    gold = np.empty(len(order), dtype=np.int64)
    gold[order] = np.arange(len(order))
    return gold


def read_gold_file(path: str, n: int) -> np.ndarray:
    """XTREME's label file: one 0-based index per line, a permutation of 0..n-1."""
    values = []
    for lineno, line in enumerate(read_lines(path), 1):
        try:
            v = int(line.strip())
        except ValueError:
            raise TatoebaError(f"{path}:{lineno}: {line!r} is not a sentence index") from None
        if not 0 <= v < n:
            raise TatoebaError(f"{path}:{lineno}: index {v} outside 0..{n - 1}")
        values.append(v)
    if len(values) != n:
        raise TatoebaError(f"{path}: {len(values)} lines for {n} sentences")
    if len(set(values)) != n:
        raise TatoebaError(f"{path}: not a permutation (an English line is the answer twice)")
    return np.asarray(values, dtype=np.int64)


def _is_sorted(lines: Sequence[str]) -> bool:
    keys = [l.strip() for l in lines]
    return all(a <= b for a, b in zip(keys, keys[1:]))


def _pairs(directory: str):
    """``({lang: (xx, eng)} LASER, {lang: (xx, en)} XTREME)`` by file name; a half pair is an error."""
    laser, xtreme = {}, {}
    names = set(os.listdir(directory))
    for name in sorted(names):
        m = _LASER_NAME.match(name)
        if m and m.group(1) == m.group(2):
            partner = f"tatoeba.{m.group(1)}-eng.eng"
            if partner not in names:
                raise TatoebaError(f"{os.path.join(directory, name)}: its English side {partner} is missing")
            laser[LASER_CODES.get(m.group(1), m.group(1))] = (
                m.group(1),
                os.path.join(directory, name),
                os.path.join(directory, partner),
            )
            continue
        m = _XTREME_NAME.match(name)
        if m and m.group(1) == m.group(2) and m.group(1) != "en":
            partner = f"{m.group(1)}-en.en"
            if partner not in names:
                raise TatoebaError(f"{os.path.join(directory, name)}: its English side {partner} is missing")
            xtreme[m.group(1)] = (os.path.join(directory, name), os.path.join(directory, partner))
    return laser, xtreme


def find_sets(directory: str, gold_dir: Optional[str] = None, langs: Optional[Sequence[str]] = None):
    """``{lang: TatoebaSet}`` for every Tatoeba pair in ``directory`` (``langs``: our codes or
    LASER's 3-letter ones). Gold for XTREME copies is looked for in ``directory`` and ``gold_dir``."""
    if not os.path.isdir(directory):
        raise TatoebaError(f"{directory}: not a directory")
    laser, xtreme = _pairs(directory)
    if not laser and not xtreme:
        raise TatoebaError(
            f"{directory}: no Tatoeba files: expected LASER's tatoeba.XXX-eng.XXX / tatoeba.XXX-eng.eng "
            "or XTREME's xx-en.xx / xx-en.en (line-aligned en-XX.* held-out pairs go to --heldout)"
        )
    gold_laser = _pairs(gold_dir)[0] if gold_dir else {}
    wanted = {LASER_CODES.get(l, l) for l in langs} if langs else None
    sets = OrderedDict()
    for lang in sorted(set(laser) | set(xtreme)):
        if wanted is not None and lang not in wanted:
            continue
        if lang in xtreme:
            xx, en = xtreme[lang]
            if not _is_sorted(read_lines(en)):
                raise TatoebaError(
                    f"{en}: English side not sorted, so not XTREME's processed copy; if it is line-aligned, "
                    f"name the pair tatoeba.{CODE_TO_LASER.get(lang, lang)}-eng.{{{CODE_TO_LASER.get(lang, lang)},eng}}"
                )
            s = TatoebaSet(lang, "xtreme", xx, en)
            original = laser.get(lang) or gold_laser.get(lang)
            label = os.path.join(gold_dir, f"test-{lang}.tsv") if gold_dir else None
            if original:
                s.laser_xx_path, s.gold_path = original[1], original[2]
            elif label and os.path.exists(label):
                s.gold_path = label
            sets[lang] = s
        else:
            _, xx, eng = laser[lang]
            lines = read_lines(eng)
            if len(lines) >= MIN_LINES_FOR_SORT_CHECK and _is_sorted(lines) and not _is_sorted(read_lines(xx)):
                raise TatoebaError(
                    f"{eng}: English side is sorted, as in XTREME's processed copy, so its lines are not "
                    f"aligned with {os.path.basename(xx)}; give the LASER originals"
                )
            sets[lang] = TatoebaSet(lang, "laser", xx, eng)
    missing = sorted(wanted - set(sets)) if wanted else []
    if missing or not sets:
        raise TatoebaError(f"{directory}: no Tatoeba pair for {', '.join(missing) or 'the requested languages'}")
    return sets


def load_set(s: TatoebaSet):
    """``(xx sentences, en sentences, gold or None)``: gold[i] = line in the English file that
    translates xx line i; None when the set is XTREME's copy without gold (predictions only)."""
    xx, en = read_lines(s.xx_path), read_lines(s.en_path)
    if len(xx) != len(en):
        raise TatoebaError(f"{s.xx_path} has {len(xx)} lines but {s.en_path} has {len(en)}")
    if s.layout == "laser":
        return xx, en, np.arange(len(xx))
    if s.gold_path is None:
        return xx, en, None
    if s.laser_xx_path:
        original_en = read_lines(s.gold_path)
        if read_lines(s.laser_xx_path) != xx or [original_en[i].strip() for i in sort_order(original_en)] != en:
            raise TatoebaError(
                f"{s.xx_path} / {s.en_path} are not the processed copy of {s.laser_xx_path} / {s.gold_path}"
            )
        return xx, en, gold_from_originals(original_en)
    return xx, en, read_gold_file(s.gold_path, len(xx))


def score(
    xx_emb,
    en_emb,
    gold: Optional[np.ndarray],
    methods=retrieval.METHODS,
    k: int = 4,
    batch_size: int = 1024,
    use_faiss: bool = False,
    device=None,
):
    """``(predictions, scores)``: ``{method: xx2en indices}`` and, with gold,
    ``{method: {"xx2en", "en2xx", "mean"}}`` top-1 accuracies (None without gold)."""
    found = retrieval.retrieve(xx_emb, en_emb, methods, k, batch_size, use_faiss, device)
    predictions = {m: xx2en for m, (xx2en, _) in found.items()}
    if gold is None:
        return predictions, None
    acc = retrieval.accuracy_against(found, gold)
    return predictions, {m: {"xx2en": a["src2tgt"], "en2xx": a["tgt2src"], "mean": a["mean"]} for m, a in acc.items()}


def write_predictions(path: str, xx2en: Sequence[int]) -> None:
    """XTREME's submission format: one 0-based index into ``xx-en.en`` per line of ``xx-en.xx``."""
    write_text_atomic(path, "".join(f"{int(i)}\n" for i in xx2en))


def evaluate(
    encoder,
    sets: Dict[str, TatoebaSet],
    pooling: str = "mean",
    layer="middle",
    k: int = 4,
    methods=retrieval.METHODS,
    batch_size: int = 64,
    score_batch_size: int = 1024,
    use_faiss: bool = False,
    predictions_dir: Optional[str] = None,
):
    """Per language ``{"n", "layout", "gold", "predictions", method: {...}}``; XTREME copies get
    their submission file in ``predictions_dir`` (from the first of ``methods``)."""
    results = OrderedDict()
    for lang, s in sets.items():
        xx, en, gold = load_set(s)
        if gold is None and predictions_dir is None:
            raise TatoebaError(
                f"{s.en_path}: XTREME's processed copy has no gold here; give --tatoeba-gold (the LASER "
                "originals or XTREME's test-xx.tsv labels) to score it, or --tatoeba-predictions to write predictions"
            )
        predictions, scores = score(
            encoder.encode(xx, pooling, layer, batch_size, desc=f"encoding {lang}"),
            encoder.encode(en, pooling, layer, batch_size, desc=f"encoding en ({lang})"),
            gold,
            methods,
            k,
            score_batch_size,
            use_faiss,
            encoder.device,
        )
        r = {
            "n": len(xx),
            "layout": s.layout,
            "files": [s.xx_path, s.en_path],
            "gold": s.gold_path,
            "predictions": None,
        }
        if s.layout == "xtreme" and predictions_dir:
            r["predictions"] = os.path.join(predictions_dir, f"test-{lang}.tsv")
            write_predictions(r["predictions"], predictions[methods[0]])
        if scores:
            r.update(scores)
        results[lang] = r
    return results


def format_table(results: Dict[str, dict], methods=retrieval.METHODS) -> str:
    """Markdown: per language both directions per method, xx -> en (XTREME's) first and marked."""
    header = ["lang", "n", "layout"]
    for m in methods:
        header += [f"{m} xx->en (XTREME)", f"{m} en->xx"]
    rows = [header, ["---"] * len(header)]
    scored = [r for r in results.values() if methods[0] in r]
    for lang, r in results.items():
        row = [lang, str(r["n"]), r["layout"]]
        for m in methods:
            row += [f"{100 * r[m][d]:.1f}" if m in r else "-" for d in ("xx2en", "en2xx")]
        rows.append(row)
    if len(scored) > 1:
        row = [f"avg ({len(scored)} scored)", str(sum(r["n"] for r in scored)), ""]
        for m in methods:
            row += [f"{100 * np.mean([r[m][d] for r in scored]):.1f}" for d in ("xx2en", "en2xx")]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n"
