"""A real multilingual parallel corpus from the gettext catalogs every Linux machine carries.

``/usr/share/locale/LANG/LC_MESSAGES/*.mo`` hold human translations of program messages
(English msgid -> translated msgstr). Their sizes differ by three orders of magnitude between
languages (tens of thousands of messages for fr or de, a few thousand for ar or hi, a few dozen
for sw), which is the natural imbalance the data-imbalance study needs.

Layout written (English is the pivot, pairs ``en-LANG``)::

    OUT/train.en-LANG.en, OUT/train.en-LANG.LANG    line-aligned training text
    OUT/heldout/en-LANG.en, OUT/heldout/en-LANG.LANG  held-out pairs (sentence retrieval)
    OUT/summary.json                                  counts per language, options used

Held-out pairs are chosen by a seeded hash of the normalized English sentence, the same order for
every language, and an English sentence held out for any pair is removed from every pair's
training data: a model trained on the corpus has seen neither side of any held-out pair.
"""

import glob
import hashlib
import json
import os
import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence, Tuple

from tqdm import tqdm

from fairseq_weam.core.outdir import atomic_output_dir
from fairseq_weam.prepare.errors import PrepareError
from fairseq_weam.prepare.mo_catalog import MoFormatError, read_mo

DEFAULT_LANGS = ("fr", "de", "ru", "zh_CN", "fi", "el", "ar", "hi", "sw")
PIVOT = "en"

# GTK/Qt keyboard mnemonics: "_File", "&Open", and the CJK style "文件(_F)".
_PAREN_MNEMONIC = re.compile(r"\s*[(\uff08][_&][^\W_][)\uff09]")
_MNEMONIC = re.compile(r"(?<!\w)[_&](?=[^\W_])")
_SPACE = re.compile(r"\s+")
# Invisible formatting marks (bidi marks common in Arabic catalogs, zero-width space, BOM): they
# carry no words, so they are removed rather than making the message count as bad.
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@dataclass
class CorpusOptions:
    langs: Sequence[str] = DEFAULT_LANGS
    locale_dir: str = "/usr/share/locale"
    min_words: int = 3  # words with a letter, English side
    max_words: int = 60  # whitespace words, English side
    max_chars: int = 600  # either side, after cleaning
    heldout_size: int = 500  # per pair, at most ...
    heldout_max_share: float = 0.2  # ... this share of the pair's deduplicated pairs
    seed: int = 1


@dataclass
class LangStats:
    catalogs: int = 0
    catalogs_unreadable: List[str] = field(default_factory=list)
    messages: int = 0
    dropped: Counter = field(default_factory=Counter)
    train: int = 0
    heldout: int = 0


def check_lang_code(lang: str) -> None:
    # fairseq file names are SPLIT.SRC-TGT.LANG: a '-' or '.' in a code would be ambiguous.
    if not lang or any(c in lang for c in "-./ \t") or lang == PIVOT:
        raise PrepareError(f"invalid target language code {lang!r} (no '-', '.', '/', spaces; not {PIVOT!r})")


def clean_message(text: str) -> str:
    """Remove keyboard mnemonics and invisible marks, fold newlines/tabs into single spaces."""
    text = _PAREN_MNEMONIC.sub("", text)
    text = _MNEMONIC.sub("", text)
    text = _INVISIBLE.sub("", text)
    return _SPACE.sub(" ", text).strip()


def dedup_key(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Co", "Cs") for c in text)


def filter_reason(src: str, tgt: str, opts: CorpusOptions) -> str:
    """Why a cleaned (English, translation) pair is dropped, or '' to keep it."""
    if not tgt:
        return "untranslated"
    if not src:
        return "empty_source"
    if dedup_key(src) == dedup_key(tgt):
        return "copied_source"
    if _has_control(src) or _has_control(tgt):
        return "control_characters"
    words = src.split()
    if len(words) > opts.max_words:
        return "too_long"
    if sum(any(c.isalpha() for c in w) for w in words) < opts.min_words:
        return "too_short"
    if max(len(src), len(tgt)) > opts.max_chars:
        return "too_long"
    return ""


def catalog_paths(locale_dir: str, lang: str) -> List[str]:
    return sorted(glob.glob(os.path.join(locale_dir, lang, "LC_MESSAGES", "*.mo")))


def collect_language(lang: str, opts: CorpusOptions) -> Tuple[List[Tuple[str, str]], LangStats]:
    """Cleaned, filtered, deduplicated (English, translation) pairs of one language."""
    paths = catalog_paths(opts.locale_dir, lang)
    if not paths:
        raise PrepareError(
            f"no catalogs for {lang!r}: nothing matches {os.path.join(opts.locale_dir, lang, 'LC_MESSAGES', '*.mo')}"
        )
    stats = LangStats(catalogs=len(paths))
    pairs, seen_src, seen_tgt = [], set(), set()
    for path in paths:
        try:
            messages = read_mo(path)
        except (OSError, MoFormatError) as e:
            stats.catalogs_unreadable.append(f"{path}: {e}")
            continue
        for msg in messages:
            stats.messages += 1
            src, tgt = clean_message(msg.msgid), clean_message(msg.msgstr)
            reason = filter_reason(src, tgt, opts)
            if not reason:
                # One translation per English sentence and vice versa: duplicates would make
                # retrieval ambiguous and overweight boilerplate messages.
                ks, kt = dedup_key(src), dedup_key(tgt)
                if ks in seen_src:
                    reason = "duplicate_source"
                elif kt in seen_tgt:
                    reason = "duplicate_translation"
                else:
                    seen_src.add(ks)
                    seen_tgt.add(kt)
                    pairs.append((src, tgt))
                    continue
            stats.dropped[reason] += 1
    return pairs, stats


def _rank(seed: int, text: str) -> bytes:
    return hashlib.blake2b(f"{seed}\t{dedup_key(text)}".encode("utf-8"), digest_size=8).digest()


def split_heldout(
    pairs_by_lang: Dict[str, List[Tuple[str, str]]], heldout_size: int, max_share: float, seed: int
) -> Dict[str, Tuple[List[Tuple[str, str]], List[Tuple[str, str]], int]]:
    """Per language (train, heldout, n_dropped): held-out English sentences leave every pair's train."""
    heldout, held_keys = {}, set()
    for lang, pairs in pairs_by_lang.items():
        n = min(heldout_size, int(max_share * len(pairs)))
        chosen = sorted(pairs, key=lambda p: _rank(seed, p[0]))[:n]
        heldout[lang] = chosen
        held_keys.update(dedup_key(s) for s, _ in chosen)
    result = {}
    for lang, pairs in pairs_by_lang.items():
        own = {dedup_key(s) for s, _ in heldout[lang]}
        train = [p for p in pairs if dedup_key(p[0]) not in held_keys]
        n_elsewhere = sum(1 for p in pairs if dedup_key(p[0]) in held_keys and dedup_key(p[0]) not in own)
        result[lang] = (train, heldout[lang], n_elsewhere)
    return result


def _write_lines(path: str, lines: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def build_corpus(out_dir: str, opts: CorpusOptions, overwrite: bool = False) -> dict:
    """Build the corpus into ``out_dir`` (atomically); return the summary also written as JSON."""
    for lang in opts.langs:
        check_lang_code(lang)
    if len(set(opts.langs)) != len(opts.langs):
        raise PrepareError(f"duplicate languages in {list(opts.langs)}")
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        pairs_by_lang, stats = {}, {}
        for lang in tqdm(opts.langs, desc="reading catalogs", unit="lang"):
            pairs_by_lang[lang], stats[lang] = collect_language(lang, opts)
        splits = split_heldout(pairs_by_lang, opts.heldout_size, opts.heldout_max_share, opts.seed)
        os.makedirs(os.path.join(tmp, "heldout"))
        for lang, (train, held, n_elsewhere) in splits.items():
            stats[lang].dropped["english_held_out_for_another_pair"] += n_elsewhere
            stats[lang].train, stats[lang].heldout = len(train), len(held)
            if not train:
                continue  # nothing to train on; reported in the summary
            pair = f"{PIVOT}-{lang}"
            _write_lines(os.path.join(tmp, f"train.{pair}.{PIVOT}"), [s for s, _ in train])
            _write_lines(os.path.join(tmp, f"train.{pair}.{lang}"), [t for _, t in train])
            if held:
                _write_lines(os.path.join(tmp, "heldout", f"{pair}.{PIVOT}"), [s for s, _ in held])
                _write_lines(os.path.join(tmp, "heldout", f"{pair}.{lang}"), [t for _, t in held])
        summary = {
            "options": {**asdict(opts), "langs": list(opts.langs)},
            "pivot": PIVOT,
            "languages": {lang: {**asdict(s), "dropped": dict(sorted(s.dropped.items()))} for lang, s in stats.items()},
            "total_train": sum(s.train for s in stats.values()),
            "total_heldout": sum(s.heldout for s in stats.values()),
        }
        if not summary["total_train"]:  # an empty corpus is not a result: nothing is written
            catalogs = sum(s.catalogs for s in stats.values())
            raise PrepareError(
                f"{opts.locale_dir}: no usable catalog: {catalogs} catalogs under LANG/LC_MESSAGES/*.mo for "
                f"{','.join(opts.langs)} gave no training pair; check --locale-dir and --langs"
            )
        with open(os.path.join(tmp, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, ensure_ascii=False)
    return summary


def format_summary(summary: dict) -> str:
    rows = [f"{'pair':<10} {'catalogs':>8} {'messages':>9} {'train':>7} {'heldout':>7}  dropped"]
    for lang, s in summary["languages"].items():
        dropped = ", ".join(f"{k}={v}" for k, v in s["dropped"].items() if v)
        bad = f"  ({len(s['catalogs_unreadable'])} unreadable catalogs)" if s["catalogs_unreadable"] else ""
        rows.append(
            f"{PIVOT + '-' + lang:<10} {s['catalogs']:>8} {s['messages']:>9} {s['train']:>7} {s['heldout']:>7}  "
            f"{dropped}{bad}"
        )
    rows.append(f"total: {summary['total_train']} training pairs, {summary['total_heldout']} held-out pairs")
    return "\n".join(rows)
