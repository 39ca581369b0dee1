"""The gettext demo-corpus builder, on small catalogs this test compiles itself."""

import gettext
import json
import os
import struct

import pytest

from fairseq_weam.core.errors import OutputDirError
from fairseq_weam.prepare.errors import PrepareError
from fairseq_weam.prepare.gettext_corpus import CorpusOptions, build_corpus, clean_message
from fairseq_weam.prepare.mo_catalog import MoFormatError, parse_mo


def compile_mo(entries, charset="UTF-8"):
    """A minimal msgfmt: ``entries`` maps msgid (may hold ctx\\x04 and \\x00plural) -> msgstr.

    Layout from the GNU gettext manual: magic, revision 0, N, offsets of the two string tables,
    empty hash table, then the NUL-terminated strings; entries sorted by msgid.
    """
    entries = dict(entries)
    entries[""] = f"Content-Type: text/plain; charset={charset}\n"
    items = sorted((k.encode(charset), v.encode(charset)) for k, v in entries.items())
    n = len(items)
    header = 7 * 4
    orig_table, trans_table = header, header + 8 * n
    data_start = header + 16 * n
    blob, orig, trans = b"", [], []
    for key, _ in items:
        orig.append((len(key), data_start + len(blob)))
        blob += key + b"\0"
    for _, val in items:
        trans.append((len(val), data_start + len(blob)))
        blob += val + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, n, orig_table, trans_table, 0, 0)
    out += b"".join(struct.pack("<2I", *e) for e in orig) + b"".join(struct.pack("<2I", *e) for e in trans)
    return out + blob


def write_catalog(locale_dir, lang, domain, entries, **kw):
    d = os.path.join(locale_dir, lang, "LC_MESSAGES")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{domain}.mo")
    with open(path, "wb") as f:
        f.write(compile_mo(entries, **kw))
    return path


FR = {
    "Open the selected file": "Ouvrir le fichier sélectionné",
    "_Save the current document": "_Enregistrer le document actuel",
    "Could not read the file %s": "Impossible de lire le fichier %s",
    "Print the\nwhole page now": "Imprimer toute\nla page maintenant",
    "menu\x04Close all open windows": "Fermer toutes les fenêtres ouvertes",
    "Delete %d selected file\x00Delete %d selected files": "Supprimer %d fichier sélectionné\x00Supprimer %d fichiers "
    "sélectionnés",
    "Too short": "Trop court",  # 2 words: filtered
    "Untranslated message stays out": "",
    "Same text in both languages": "Same text in both languages",
}
DE = {
    "Open the selected file": "Ausgewählte Datei öffnen",
    "Could not read the file %s": "Datei %s konnte nicht gelesen werden",
    "Show hidden files in the list": "Versteckte Dateien in der Liste anzeigen",
    "Quit the program right now": "Das Programm sofort beenden",
}


def test_compiled_catalog_is_read_by_stdlib_gettext_and_by_us(tmp_path):
    path = write_catalog(str(tmp_path), "fr", "app", FR)
    with open(path, "rb") as f:
        t = gettext.GNUTranslations(f)
    assert t.gettext("Open the selected file") == "Ouvrir le fichier sélectionné"
    assert t.pgettext("menu", "Close all open windows") == "Fermer toutes les fenêtres ouvertes"
    messages, charset = parse_mo(open(path, "rb").read(), path)
    by_id = {m.msgid: m for m in messages}
    assert charset == "UTF-8" and len(messages) == len(FR)
    assert by_id["Close all open windows"].context == "menu"
    plural = by_id["Delete %d selected file"]
    assert plural.msgid_plural == "Delete %d selected files" and plural.msgstr == "Supprimer %d fichier sélectionné"


def test_latin1_catalog_and_bad_files(tmp_path):
    path = write_catalog(str(tmp_path), "de", "old", {"Open the file": "Datei öffnen"}, charset="ISO-8859-1")
    messages, charset = parse_mo(open(path, "rb").read(), path)
    assert charset == "ISO-8859-1" and messages[0].msgstr == "Datei öffnen"
    with pytest.raises(MoFormatError, match="bad magic"):
        parse_mo(b"\0" * 40, "x.mo")
    with pytest.raises(MoFormatError, match="x.mo: string table"):
        parse_mo(struct.pack("<7I", 0x950412DE, 0, 1000, 28, 8028, 0, 0), "x.mo")


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("_Save the file", "Save the file"),
        ("&Open it", "Open it"),
        ("文件(_F)", "文件"),
        ("LC_ALL is __init__", "LC_ALL is __init__"),
        ("two\nlines\there", "two lines here"),
        ("\u200fمرحبا\u200f بك", "مرحبا بك"),
    ],
)
def test_clean_message(raw, clean):
    assert clean_message(raw) == clean


def test_build_corpus(tmp_path):
    locale = str(tmp_path / "locale")
    write_catalog(locale, "fr", "app", FR)
    write_catalog(locale, "de", "app", DE)
    with open(os.path.join(locale, "de", "LC_MESSAGES", "broken.mo"), "wb") as f:
        f.write(b"not a catalog at all, just text")
    out = str(tmp_path / "corpus")
    opts = CorpusOptions(langs=("fr", "de"), locale_dir=locale, heldout_size=1, heldout_max_share=0.5, seed=3)
    summary = build_corpus(out, opts)

    fr = summary["languages"]["fr"]
    assert (
        fr["dropped"]["too_short"] == 1 and fr["dropped"]["untranslated"] == 1 and fr["dropped"]["copied_source"] == 1
    )
    assert fr["train"] + fr["heldout"] + fr["dropped"].get("english_held_out_for_another_pair", 0) == 6
    assert (
        summary["languages"]["de"]["catalogs_unreadable"]
        and "broken.mo" in summary["languages"]["de"]["catalogs_unreadable"][0]
    )

    def pairs(path_src, path_tgt):
        return list(
            zip(
                open(path_src, encoding="utf-8").read().splitlines(),
                open(path_tgt, encoding="utf-8").read().splitlines(),
            )
        )

    train_fr = pairs(f"{out}/train.en-fr.en", f"{out}/train.en-fr.fr")
    held_fr = pairs(f"{out}/heldout/en-fr.en", f"{out}/heldout/en-fr.fr")
    train_de = pairs(f"{out}/train.en-de.en", f"{out}/train.en-de.de")
    held_de = pairs(f"{out}/heldout/en-de.en", f"{out}/heldout/en-de.de")
    assert len(held_fr) == len(held_de) == 1
    expected_fr = {  # cleaned: mnemonic gone, newline folded, context stripped, plural -> singular
        "Open the selected file": "Ouvrir le fichier sélectionné",
        "Save the current document": "Enregistrer le document actuel",
        "Could not read the file %s": "Impossible de lire le fichier %s",
        "Print the whole page now": "Imprimer toute la page maintenant",
        "Close all open windows": "Fermer toutes les fenêtres ouvertes",
        "Delete %d selected file": "Supprimer %d fichier sélectionné",
    }
    all_fr = dict(train_fr + held_fr)
    assert all_fr.items() <= expected_fr.items()
    # what is missing was held out for de, and is counted
    assert set(expected_fr) - set(all_fr) <= {s for s, _ in held_de}
    assert len(expected_fr) - len(all_fr) == fr["dropped"].get("english_held_out_for_another_pair", 0)
    # No held-out English sentence is in any pair's training data.
    held_en = {s for s, _ in held_fr + held_de}
    assert not held_en & {s for s, _ in train_fr + train_de}
    assert json.load(open(f"{out}/summary.json"))["total_heldout"] == 2
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".corpus")]  # no partial leftovers

    with pytest.raises(OutputDirError, match="already exists"):
        build_corpus(out, opts)
    build_corpus(
        out, CorpusOptions(langs=("de",), locale_dir=locale, heldout_size=1, heldout_max_share=0.5), overwrite=True
    )
    assert not os.path.exists(f"{out}/train.en-fr.en") and os.path.exists(f"{out}/train.en-de.de")


def test_unknown_language_and_bad_codes(tmp_path):
    with pytest.raises(PrepareError, match="no catalogs for 'xx'"):
        build_corpus(str(tmp_path / "o"), CorpusOptions(langs=("xx",), locale_dir=str(tmp_path)))
    with pytest.raises(PrepareError, match="invalid target language code 'pt-BR'"):
        build_corpus(str(tmp_path / "o"), CorpusOptions(langs=("pt-BR",), locale_dir=str(tmp_path)))
    assert not os.path.exists(tmp_path / "o")
