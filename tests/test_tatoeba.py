"""Tatoeba in both distributed layouts, written here from text: LASER's line-aligned originals
and XTREME's processed copy (English side sorted), scored with hand-computed answers through a
lookup "encoder", the refusals, and the fairseq-weam-retrieval --tatoeba command on a tiny
checkpoint."""

import json
import os

import numpy as np
import pytest
import torch
from eval_fixtures import shared_pretrained

from fairseq_weam.evaluation import retrieval, tatoeba

# English in LASER's (unsorted) order. Sorted, it reads: apple(1) banana(4) cherry(5) kiwi(3)
# mango(2) zebra(0), so original line i sits at sorted line GOLD[i].
ENGLISH = ["zebra one", "apple two", "mango three", "kiwi four", "banana five", "cherry six"]
XX = ["x zero", "x one", "x two", "x three", "x four", "x five"]
GOLD = [5, 0, 4, 3, 1, 2]


class LookupEncoder:
    """English line i -> basis vector e_i; xx line i -> e_i, except xx 3 -> e_4 + 0.1 e_3, so
    xx -> en gets 5 of 6 right (xx 3 finds English 4) and en -> xx all 6 (English 4 still
    prefers xx 4 at cosine 1; English 3's only non-zero cosine is with xx 3)."""

    device = torch.device("cpu")

    def __init__(self):
        eye = np.eye(6, dtype=np.float32)
        self.vectors = {e: eye[i] for i, e in enumerate(ENGLISH)}
        self.vectors.update({x: eye[i] for i, x in enumerate(XX)})
        self.vectors[XX[3]] = eye[4] + 0.1 * eye[3]

    def encode(self, sentences, *args, **kwargs):
        return np.stack([self.vectors[s] for s in sentences])


def write_laser(d, code3="deu", english=ENGLISH, xx=XX):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"tatoeba.{code3}-eng.{code3}"), "w") as f:
        f.write("\n".join(xx) + "\n")
    with open(os.path.join(d, f"tatoeba.{code3}-eng.eng"), "w") as f:
        f.write("\n".join(english) + "\n")


def write_xtreme(d, code2="de", english=ENGLISH, xx=XX):
    """What XTREME's utils_preprocess.py tatoeba_preprocess writes."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{code2}-en.{code2}"), "w") as f:
        f.write("\n".join(xx) + "\n")
    with open(os.path.join(d, f"{code2}-en.en"), "w") as f:
        f.writelines(f"{t}\n" for t in sorted(e.strip() for e in english))


def test_gold_of_the_sort_and_the_line_aligned_trap():
    assert tatoeba.gold_from_originals(ENGLISH).tolist() == GOLD
    enc = LookupEncoder()
    sorted_en = sorted(ENGLISH)
    predictions, scores = tatoeba.score(enc.encode(XX), enc.encode(sorted_en), np.array(GOLD), methods=("cosine",))
    assert predictions["cosine"].tolist() == [5, 0, 4, 1, 1, 2]  # xx 3 -> sorted line of English 4
    assert scores["cosine"]["xx2en"] == pytest.approx(5 / 6) and scores["cosine"]["en2xx"] == 1.0
    # Reading the sorted copy as line-aligned scores the same vectors 0 / 6: the bug this avoids.
    naive = retrieval.retrieval_accuracy(enc.encode(XX), enc.encode(sorted_en), methods=("cosine",))
    assert naive["cosine"]["src2tgt"] == 0.0


def test_laser_originals_scored_line_aligned(tmp_path):
    write_laser(str(tmp_path), "cmn")
    sets = tatoeba.find_sets(str(tmp_path))
    assert list(sets) == ["zh"] and sets["zh"].layout == "laser"  # cmn -> zh, as XTREME maps it
    assert list(tatoeba.find_sets(str(tmp_path), langs=["cmn"])) == ["zh"]
    results = tatoeba.evaluate(LookupEncoder(), sets, methods=("cosine", "margin"))
    r = results["zh"]
    assert r["n"] == 6 and r["cosine"]["xx2en"] == pytest.approx(5 / 6) and r["cosine"]["en2xx"] == 1.0
    assert r["predictions"] is None
    table = tatoeba.format_table(results, ("cosine", "margin")).splitlines()
    assert (
        table[0]
        == "| lang | n | layout | cosine xx->en (XTREME) | cosine en->xx | margin xx->en (XTREME) | margin en->xx |"
    )
    assert table[2].startswith("| zh | 6 | laser | 83.3 | 100.0 |")


@pytest.mark.parametrize("gold_kind", ["laser_beside", "laser_gold_dir", "xtreme_labels"])
def test_xtreme_copy_scored_only_against_gold(tmp_path, gold_kind):
    copy, gold_dir, preds = str(tmp_path / "xtreme"), str(tmp_path / "gold"), str(tmp_path / "preds")
    write_xtreme(copy)
    if gold_kind == "laser_beside":
        write_laser(copy)
    elif gold_kind == "laser_gold_dir":
        write_laser(gold_dir)
    else:
        os.makedirs(gold_dir)
        with open(os.path.join(gold_dir, "test-de.tsv"), "w") as f:
            f.writelines(f"{g}\n" for g in GOLD)
    sets = tatoeba.find_sets(copy, None if gold_kind == "laser_beside" else gold_dir)
    assert sets["de"].layout == "xtreme"
    r = tatoeba.evaluate(LookupEncoder(), sets, methods=("cosine",), predictions_dir=preds)["de"]
    assert r["cosine"] == pytest.approx({"xx2en": 5 / 6, "en2xx": 1.0, "mean": 11 / 12})
    # XTREME's submission file: per xx line, the 0-based line of the retrieved sorted English.
    assert open(os.path.join(preds, "test-de.tsv")).read() == "5\n0\n4\n1\n1\n2\n"


def test_xtreme_copy_without_gold_predicts_only(tmp_path):
    write_xtreme(str(tmp_path / "x"))
    sets = tatoeba.find_sets(str(tmp_path / "x"))
    with pytest.raises(tatoeba.TatoebaError, match="no gold"):
        tatoeba.evaluate(LookupEncoder(), sets, methods=("cosine",))
    r = tatoeba.evaluate(LookupEncoder(), sets, methods=("cosine",), predictions_dir=str(tmp_path / "p"))["de"]
    assert "cosine" not in r and r["predictions"].endswith("test-de.tsv")
    assert tatoeba.format_table({"de": r}, ("cosine",)).splitlines()[2] == "| de | 6 | xtreme | - | - |"


def test_ambiguous_or_broken_layouts_are_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "en-de.en").write_text("a\n")  # our held-out layout is not Tatoeba
    with pytest.raises(tatoeba.TatoebaError, match="no Tatoeba files.*--heldout"):
        tatoeba.find_sets(str(empty))
    # XTREME names, but line-aligned (unsorted) English: not the processed copy.
    odd = tmp_path / "odd"
    write_xtreme(str(odd))
    (odd / "de-en.en").write_text("\n".join(ENGLISH) + "\n")
    with pytest.raises(tatoeba.TatoebaError, match="de-en.en: English side not sorted.*tatoeba.deu-eng"):
        tatoeba.find_sets(str(odd))
    # LASER names on a sorted English side of 8+ lines: a renamed processed copy.
    english = [f"{w} sentence" for w in "kiwi apple zebra mango banana cherry lime fig".split()]
    renamed = tmp_path / "renamed"
    write_laser(str(renamed), english=sorted(english), xx=[f"x {i}" for i in (5, 3, 1, 0, 2, 4, 7, 6)])
    with pytest.raises(tatoeba.TatoebaError, match="English side is sorted"):
        tatoeba.find_sets(str(renamed))
    half = tmp_path / "half"
    half.mkdir()
    (half / "tatoeba.fra-eng.fra").write_text("x\n")
    with pytest.raises(
        tatoeba.TatoebaError, match="tatoeba.fra-eng.fra: its English side tatoeba.fra-eng.eng is missing"
    ):
        tatoeba.find_sets(str(half))
    # A processed copy next to originals it was not made from.
    mixed = tmp_path / "mixed"
    write_xtreme(str(mixed))
    write_laser(str(mixed), english=ENGLISH[:5] + ["cherry seven"])
    with pytest.raises(tatoeba.TatoebaError, match="not the processed copy"):
        tatoeba.load_set(tatoeba.find_sets(str(mixed))["de"])
    with pytest.raises(tatoeba.TatoebaError, match="no Tatoeba pair for fr"):
        tatoeba.find_sets(str(mixed), langs=["fr"])


def test_gold_label_file_errors_name_the_line(tmp_path):
    p = tmp_path / "test-de.tsv"
    p.write_text("2\n0\nfour\n")
    with pytest.raises(tatoeba.TatoebaError, match=r"test-de.tsv:3: 'four' is not a sentence index"):
        tatoeba.read_gold_file(str(p), 3)
    p.write_text("1\n1\n0\n")
    with pytest.raises(tatoeba.TatoebaError, match="not a permutation"):
        tatoeba.read_gold_file(str(p), 3)
    p.write_text("1\n7\n0\n")
    with pytest.raises(tatoeba.TatoebaError, match=r":2: index 7 outside 0..2"):
        tatoeba.read_gold_file(str(p), 3)


def test_cli_tatoeba_both_layouts_on_a_tiny_checkpoint(tmp_path, capsys):
    """Real encoder: LASER originals give the line-aligned retrieval's numbers exactly, and the
    XTREME copy scored against them gives the same numbers."""
    from fairseq_weam.cli import retrieval as cli
    from fairseq_weam.evaluation.embeddings import SentenceEncoder

    data, heldout, corpora, ckpt = shared_pretrained()
    en = open(os.path.join(heldout, "en-aa.en")).read().splitlines()
    aa = open(os.path.join(heldout, "en-aa.aa")).read().splitlines()
    laser, copy = str(tmp_path / "laser"), str(tmp_path / "xtreme")
    write_laser(laser, "afr", en, aa)
    write_xtreme(copy, "af", en, aa)
    args = ["--checkpoint", ckpt, "--data", data, "--device", "cpu", "--k", "3"]
    cli.run(args + ["--tatoeba", laser, "--json", str(tmp_path / "laser.json")])
    assert capsys.readouterr().out.splitlines()[2].startswith("| af | 20 | laser |")
    cli.run(
        args
        + [
            "--tatoeba",
            copy,
            "--tatoeba-gold",
            laser,
            "--tatoeba-predictions",
            str(tmp_path / "p"),
            "--json",
            str(tmp_path / "xtreme.json"),
        ]
    )
    a = json.loads((tmp_path / "laser.json").read_text())
    b = json.loads((tmp_path / "xtreme.json").read_text())
    assert a["config"]["xtreme_direction"] == "xx2en" and a["config"]["device"] == "cpu"
    assert b["results"]["af"]["layout"] == "xtreme" and b["results"]["af"]["gold"].endswith("tatoeba.afr-eng.eng")
    direct = retrieval.retrieval_accuracy(
        *(SentenceEncoder.from_checkpoint(ckpt, data).encode(s) for s in (aa, en)), k=3
    )
    for method in retrieval.METHODS:
        assert a["results"]["af"][method]["xx2en"] == pytest.approx(direct[method]["src2tgt"])
        assert a["results"]["af"][method]["en2xx"] == pytest.approx(direct[method]["tgt2src"])
        assert b["results"]["af"][method] == pytest.approx(a["results"]["af"][method])
    predicted = [int(l) for l in open(tmp_path / "p" / "test-af.tsv")]
    gold = tatoeba.gold_from_originals(en)
    assert len(predicted) == 20 and np.mean(np.array(predicted) == gold) == pytest.approx(
        b["results"]["af"]["cosine"]["xx2en"]
    )
