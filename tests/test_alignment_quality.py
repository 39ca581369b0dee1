"""Alignment extraction and precision / recall / AER on hand-made cases with exact answers."""

import json

import numpy as np
import pytest
from eval_fixtures import shared_pretrained

from fairseq_weam.data.alignment import format_pharaoh
from fairseq_weam.evaluation import alignment_quality as aq


def test_parse_gold_sure_possible_and_indexing():
    sure, possible = aq.parse_gold_line("0-0 1?2 3p4")
    assert sure == {(0, 0)} and possible == {(0, 0), (1, 2), (3, 4)}
    assert aq.parse_gold_line("1-1 2-3", one_indexed=True)[0] == {(0, 0), (1, 2)}
    with pytest.raises(aq.GoldFormatError, match="gold.txt:7"):
        aq.parse_gold_line("0-0 x-1", where="gold.txt:7")
    with pytest.raises(aq.GoldFormatError, match="negative"):
        aq.parse_gold_line("0-1", one_indexed=True)


def test_extraction_directions():
    sim = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.7]])
    assert aq.extract_alignments(sim, "src2tgt") == {(0, 0), (1, 0), (2, 1)}
    assert aq.extract_alignments(sim, "tgt2src") == {(0, 0), (2, 1)}
    assert aq.extract_alignments(sim, "intersect") == {(0, 0), (2, 1)}
    sim2 = np.array([[0.9, 0.8], [0.1, 0.2]])  # target 1 prefers source 0, source 1 prefers target 1
    assert aq.extract_alignments(sim2, "intersect") == {(0, 0)}
    assert aq.extract_alignments(sim2, "union") == {(0, 0), (0, 1), (1, 1)}
    assert aq.extract_alignments(np.zeros((0, 3))) == set()


def test_aer_exact_values():
    gold1 = aq.parse_gold_line("0-0 1-1 1?2")
    pred1 = {(0, 0), (1, 2), (2, 2)}
    # |A|=3, |S|=2, |A&S|=1, |A&P|=2: P=2/3, R=1/2, AER=1-(1+2)/(3+2)=0.4
    s = aq.score_alignments([pred1], [gold1])
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(0.5)
    assert s["aer"] == pytest.approx(0.4)
    # Corpus level: a second sentence with one sure link and no prediction: AER=1-3/6.
    s = aq.score_alignments([pred1, set()], [gold1, aq.parse_gold_line("0-1")])
    assert s["aer"] == pytest.approx(0.5) and s["recall"] == pytest.approx(1 / 3) and s["sure"] == 3
    # Predicting exactly the sure links is perfect; possible-only hits cost no precision.
    assert aq.score_alignments([{(0, 0), (1, 1)}], [gold1])["aer"] == 0.0
    s = aq.score_alignments([{(0, 0), (1, 1), (1, 2)}], [gold1])
    assert s["precision"] == 1.0 and s["recall"] == 1.0 and s["aer"] == 0.0
    assert aq.score_alignments([{(5, 5)}], [gold1])["aer"] == 1.0
    with pytest.raises(ValueError):
        aq.score_alignments([set()], [gold1, gold1])


def test_read_gold_and_format(tmp_path):
    p = tmp_path / "g"
    p.write_text("0-0 1p1\n\n2-0\n")
    gold = aq.read_gold(str(p))
    assert [g[0] for g in gold] == [{(0, 0)}, set(), {(2, 0)}]
    assert format_pharaoh(sorted({(2, 0), (0, 1)})) == "0-1 2-0"


def test_cli_on_synthetic_gold(tmp_path, capsys):
    """The synthetic corpus has true word links; the command must read them, align every layer
    and score consistently with the pure scorer on its own output."""
    from fairseq_weam.cli import align_eval

    data, heldout, corpora, ckpt = shared_pretrained()
    src, tgt, links = corpora["aa"]
    src, tgt, links = src[:15], tgt[:15], links[:15]
    for name, lines in (("s", src), ("t", tgt), ("g", [" ".join(f"{i}-{j}" for i, j in l) for l in links])):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    scores = align_eval.run(
        [
            "--checkpoint",
            ckpt,
            "--data",
            data,
            "--src",
            str(tmp_path / "s"),
            "--tgt",
            str(tmp_path / "t"),
            "--gold",
            str(tmp_path / "g"),
            "--layer",
            "all",
            "--json",
            str(tmp_path / "a.json"),
            "--output-alignments",
            str(tmp_path / "pred"),
        ]
    )
    assert list(scores) == [0, 1, 2]
    assert "| layer | precision | recall | AER |" in capsys.readouterr().out
    pred = aq.read_gold(str(tmp_path / "pred"))
    assert len(pred) == 15
    # Intersected argmax links are one-to-one, and within each sentence's word range.
    for (p, _), s_line, t_line in zip(pred, src, tgt):
        assert len({i for i, _ in p}) == len(p) == len({j for _, j in p})
        assert all(i < len(s_line.split()) and j < len(t_line.split()) for i, j in p)
    gold = aq.read_gold(str(tmp_path / "g"))
    assert scores[0] == aq.score_alignments([p for p, _ in pred], gold)
    assert json.loads((tmp_path / "a.json").read_text())["scores"]["2"]["aer"] == pytest.approx(scores[2]["aer"])
