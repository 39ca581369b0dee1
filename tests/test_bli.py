"""Bilingual lexicon induction: lexicon parsing, cosine / CSLS retrieval and P@k against hand
computations, word vectors, and fairseq-weam-bli on a tiny checkpoint."""

import json
import math
import os

import numpy as np
import pytest
import torch
from eval_fixtures import shared_pretrained

from fairseq_weam.cli.checks import UsageError
from fairseq_weam.evaluation import bli, evaluate, silver_lexicon
from fairseq_weam.evaluation.word_vectors import find_occurrences, text_vocabulary, texts_by_language

# Source x0 = (1,0,0), x1 = (0,1,0), x2 = (1,1,0); targets t0 = (1,0,2), t1 = (0,1,2), t2 = (1,1,1);
# x_i translates to t_i. The hub t2 is the cosine-nearest target of every source.
HUB_SRC = [[1, 0, 0], [0, 1, 0], [1, 1, 0]]
HUB_TGT = [[1, 0, 2], [0, 1, 2], [1, 1, 1]]
S3, S5, S6, S10 = math.sqrt(3), math.sqrt(5), math.sqrt(6), math.sqrt(10)


def test_csls_by_hand():
    # cos(x0,t0) = 1/sqrt5 = .447, cos(x0,t2) = 1/sqrt3 = .577, cos(x2,t0) = 1/sqrt10, cos(x2,t2) = 2/sqrt6.
    # k = 2: r_T(x0) = (1/sqrt3 + 1/sqrt5)/2; r_S(t0) = (1/sqrt5 + 1/sqrt10)/2 (column 0: .447, 0, .316);
    # r_S(t2) = (2/sqrt6 + 1/sqrt3)/2 (column 2: .577, .577, .816).
    r_t_x0 = (1 / S3 + 1 / S5) / 2
    csls_x0_t0 = 2 / S5 - r_t_x0 - (1 / S5 + 1 / S10) / 2  # = +0.0004
    csls_x0_t2 = 2 / S3 - r_t_x0 - (2 / S6 + 1 / S3) / 2  # = -0.0545
    assert csls_x0_t0 == pytest.approx(0.00042, abs=1e-5) and csls_x0_t2 == pytest.approx(-0.05451, abs=1e-5)
    m = bli.csls_scores(HUB_SRC, HUB_TGT, k=2)
    assert m[0, 0].item() == pytest.approx(csls_x0_t0, abs=1e-6)
    assert m[0, 2].item() == pytest.approx(csls_x0_t2, abs=1e-6)
    # x2 row: r_T(x2) = (2/sqrt6 + 1/sqrt10)/2 (t1 ties t0); CSLS(x2, t2) = 4/sqrt6 - r_T(x2) - r_S(t2).
    assert m[2, 2].item() == pytest.approx(4 / S6 - (2 / S6 + 1 / S10) / 2 - (2 / S6 + 1 / S3) / 2, abs=1e-6)
    gold = [{0}, {1}, {2}]
    r = bli.evaluate_task(HUB_SRC, HUB_TGT, gold, k=2)
    # Cosine: x0 and x1 both go to the hub; CSLS finds all three. With 3 candidates P@5 = 100.
    assert r["cosine"] == pytest.approx({"p@1": 100 / 3, "p@5": 100.0})
    assert r["csls"] == pytest.approx({"p@1": 100.0, "p@5": 100.0})
    top = bli.top_candidates(HUB_SRC, HUB_TGT, "cosine", topn=3)
    assert top[0].tolist() == [2, 0, 1]  # .577 > .447 > 0


def test_csls_source_vocabulary_changes_the_hub_penalty():
    # r_S(y) is measured over the source vocabulary, which may hold more words than the queries:
    # adding the source word (1,1,1) raises the hub's r_S from (.816+.577)/2 to (1+.816)/2.
    vocab = HUB_SRC + [[1, 1, 1]]
    m = bli.csls_scores(HUB_SRC, HUB_TGT, source_vocab=vocab, k=2)
    assert m[2, 2].item() == pytest.approx(4 / S6 - (2 / S6 + 1 / S10) / 2 - (1 + 2 / S6) / 2, abs=1e-6)
    top = bli.top_candidates(HUB_SRC, HUB_TGT, "csls", k=2, source_vocab=vocab, topn=3)
    np.testing.assert_array_equal(top.numpy(), m.argsort(dim=1, descending=True, stable=True).numpy())


@pytest.mark.parametrize("k", [1, 3, 10])
def test_batched_csls_matches_full_matrix(k):
    rng = np.random.default_rng(k)
    src = rng.normal(size=(23, 6)) + 0.5
    tgt = src[rng.permutation(23)][:19] + 0.7 * rng.normal(size=(19, 6))
    vocab = np.concatenate([src, rng.normal(size=(9, 6))])
    full = bli.csls_scores(src, tgt, vocab, k).argsort(dim=1, descending=True, stable=True)[:, :5]
    for bs in (1, 4, 100):
        got = bli.top_candidates(src, tgt, "csls", k, vocab, topn=5, batch_size=bs)
        np.testing.assert_array_equal(got.numpy(), full.numpy())


def test_precision_with_several_gold_translations():
    top = torch.tensor([[3, 1, 0, 2, 4, 5], [5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5], [2, 3, 4, 5, 0, 1]])
    # query 0: gold 1 at rank 2; query 1: gold {0, 3}, 3 at rank 3; query 2: gold {0, 5} at rank 1;
    # query 3: its only gold (1) at rank 6.
    gold = [{1}, {0, 3}, {5, 0}, {1}]
    assert bli.precision_at(top, gold, ks=(1, 2, 3, 5, 6)) == {
        "p@1": 25.0,
        "p@2": 50.0,
        "p@3": 75.0,
        "p@5": 75.0,
        "p@6": 100.0,
    }
    with pytest.raises(ValueError, match="gold"):
        bli.precision_at(top, gold[:3])
    with pytest.raises(ValueError, match="method"):
        bli.top_candidates(HUB_SRC, HUB_TGT, "margin")


def test_ties_go_to_the_lower_index():
    cands = [[1, 0], [0, 1], [2, 0], [1, 0]]  # 0, 2 and 3 are the same direction
    assert bli.top_candidates([[1, 0]], cands, topn=4)[0].tolist() == [0, 2, 3, 1]


def test_make_task_dedups_candidates_and_drops_unknown_words():
    pairs = [("a", "X"), ("a", "Y"), ("b", "X"), ("c", "Z"), ("d", "W")]
    task = bli.make_task(pairs, ["X", "Y", "X", "Z"], sources={"a", "b", "d"})
    assert task.candidates == ["X", "Y", "Z"] and task.queries == ["a", "b"]
    assert task.gold == [{0, 1}, {0}]
    assert task.dropped_pairs == 2  # c is not a known source word, W not a candidate
    inv = bli.make_task(bli.invert(pairs), ["a", "b", "c", "d"])
    assert inv.queries == ["X", "Y", "Z", "W"] and inv.gold == [{0, 1}, {0}, {2}, {3}]


def test_read_lexicon(tmp_path):
    path = tmp_path / "en-fr.txt"
    path.write_text("the le\nthe la\ncat\tchat\n\nthe le\nHouse Maison\n", encoding="utf-8")
    assert bli.read_lexicon(str(path)) == [("the", "le"), ("the", "la"), ("cat", "chat"), ("House", "Maison")]
    assert bli.read_lexicon(str(path), lowercase=True)[-1] == ("house", "maison")


@pytest.mark.parametrize(
    "content, message",
    [
        ("a b\nlonely\n", ":2: expected 2 fields 'src_word tgt_word', found 1: 'lonely'"),
        ("a b\nc d\nx y z\n", ":3: expected 2 fields 'src_word tgt_word', found 3"),
        ("", ": no word pairs (empty lexicon)"),
        ("\n  \n", ": no word pairs (empty lexicon)"),
    ],
)
def test_lexicon_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "de-en.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(bli.LexiconError) as e:
        bli.read_lexicon(str(path))
    assert str(e.value).startswith(f"{path}{message}")
    assert "\n" not in str(e.value)


def test_lexicon_not_utf8_and_missing(tmp_path):
    path = tmp_path / "x-y.txt"
    path.write_bytes(b"a b\nc \xff\xfe\n")
    with pytest.raises(bli.LexiconError, match=r"x-y\.txt:2: not UTF-8"):
        bli.read_lexicon(str(path))
    with pytest.raises(bli.LexiconError, match="lexicon not found"):
        bli.read_lexicon(str(tmp_path / "nope.txt"))


def test_find_lexicons_and_lexicon_set(tmp_path):
    for name in ("en-fr.txt", "en-zh_CN.txt", "de-en.5000-6500.txt", "notes.txt", "en-fr.tsv"):
        (tmp_path / name).write_text("a b\n")
    found = bli.find_lexicons(str(tmp_path))
    assert list(found) == ["de-en.5000-6500", "en-fr", "en-zh_CN"]
    assert found["de-en.5000-6500"][:2] == ("de", "en") and found["en-zh_CN"][:2] == ("en", "zh_CN")
    assert evaluate.lexicon_set(str(tmp_path / "en-fr.txt"))["en-fr"][:2] == ("en", "fr")
    assert evaluate.lexicon_set(str(tmp_path / "notes.txt"), ("xx", "yy"))["notes"][:2] == ("xx", "yy")
    with pytest.raises(ValueError, match="--pair"):
        evaluate.lexicon_set(str(tmp_path / "notes.txt"))
    with pytest.raises(bli.LexiconError, match="missing: not a directory"):
        bli.find_lexicons(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(bli.LexiconError, match="empty: no lexicon named SRC-TGT.txt"):
        bli.find_lexicons(str(tmp_path / "empty"))


def test_occurrences_are_token_runs_after_pretokenization():
    def split_cjk(s):  # stands in for the data dir's pretokenizer
        return " ".join("".join(f" {c} " if "\u4e00" <= c <= "\u9fff" else c for c in s).split())

    lines = [split_cjk(l).split() for l in ["the cat sat", "日本 is 日本人", "The cat and the cat", "本日"]]
    occ = find_occurrences(lines, ["cat", "日本", "the", "dog"], split_cjk)
    assert occ == {
        "cat": [(0, 1, 1), (2, 1, 1), (2, 4, 1)],
        "日本": [(1, 0, 2), (1, 3, 2)],
        "the": [(0, 0, 1), (2, 3, 1)],
    }
    assert find_occurrences(lines, ["the"], split_cjk, lowercase=True)["the"] == [(0, 0, 1), (2, 0, 1), (2, 3, 1)]
    assert find_occurrences(lines, ["cat"], split_cjk, max_occurrences=2)["cat"] == [(0, 1, 1), (2, 1, 1)]
    assert text_vocabulary([["b", "a", "b"], ["c", "a", "b"]]) == ["b", "a", "c"]


def test_texts_by_language(tmp_path):
    for name in ("en-fr.en", "en-fr.fr", "wiki.txt"):
        (tmp_path / name).write_text("x\n")
    got = texts_by_language([str(tmp_path / "en-fr.en"), str(tmp_path / "en-fr.fr"), f"de:{tmp_path / 'wiki.txt'}"])
    assert got == {
        "en": [str(tmp_path / "en-fr.en")],
        "fr": [str(tmp_path / "en-fr.fr")],
        "de": [str(tmp_path / "wiki.txt")],
    }
    with pytest.raises(FileNotFoundError, match="text file not found"):
        texts_by_language(["fr:" + str(tmp_path / "none")])


# --- on a tiny pre-trained checkpoint -------------------------------------------------------


def corpus_lexicon(corpora, lang, n=25):
    """True word translations of the synthetic corpus (from its generator's links)."""
    src, tgt, links = corpora[lang]
    pairs = {}
    for s, t, ls in zip(src, tgt, links):
        sw, tw = s.split(), t.split()
        for i, j in ls:
            pairs.setdefault(sw[i], tw[j])
    return list(pairs.items())[:n]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data, heldout, corpora, ckpt = shared_pretrained()
    lexdir = tmp_path_factory.mktemp("lexicons")
    for lang in ("aa", "bb"):
        pairs = corpus_lexicon(corpora, lang)
        # A second translation for the first word: any of them counts.
        pairs.append((pairs[0][0], pairs[1][1]))
        (lexdir / f"en-{lang}.txt").write_text("".join(f"{s} {t}\n" for s, t in pairs))
    return data, heldout, corpora, ckpt, lexdir


def test_cli_lexicon_dir_with_text_json_structure(setup, tmp_path, capsys):
    from fairseq_weam.cli import bli as cli

    data, heldout, corpora, ckpt, lexdir = setup
    out = tmp_path / "bli.json"
    texts = [os.path.join(heldout, name) for name in ("en-aa.en", "en-aa.aa", "en-bb.en", "en-bb.bb")]
    cli.run(
        [
            "--checkpoint",
            ckpt,
            "--data",
            data,
            "--lexicon-dir",
            str(lexdir),
            "--text",
            *texts,
            "--json",
            str(out),
            "--layer",
            "last",
        ]
    )
    table = capsys.readouterr().out.splitlines()
    assert (
        table[0] == "| lexicon | vectors | direction | n | candidates | cosine P@1 | cosine P@5 | csls P@1 | csls P@5 |"
    )
    assert [row.split(" | ")[1:3] for row in table[2:]] == [
        [kind, arrow]
        for lang in ("aa", "bb")
        for kind in ("isolated", "context")
        for arrow in (f"en->{lang}", f"{lang}->en")
    ]
    saved = json.loads(out.read_text())
    assert saved["config"]["layer"] == 2 and saved["config"]["candidates"] == "lexicon"
    assert saved["config"]["texts"] == {"en": [texts[0], texts[2]], "aa": [texts[1]], "bb": [texts[3]]}
    assert list(saved["results"]) == ["en-aa", "en-bb"]
    for name, r in saved["results"].items():
        assert r["langs"] == ["en", name[3:]] and r["pairs"] == 26
        assert list(r["vectors"]) == ["isolated", "context"]
        iso = r["vectors"]["isolated"]
        # Isolated vectors exist for every word: 25 distinct source words, 25 target words.
        assert iso["src2tgt"]["n"] == 25 and iso["src2tgt"]["candidates"] == 25 and iso["src2tgt"]["dropped_pairs"] == 0
        assert iso["tgt2src"]["n"] == 25 and iso["tgt2src"]["candidates"] == 25
        for kind in r["vectors"].values():
            for d in kind.values():
                assert 0 < d["n"] <= 25 and d["n"] + d["dropped_pairs"] >= d["n"]
                for m in ("cosine", "csls"):
                    assert 0 <= d[m]["p@1"] <= d[m]["p@5"] <= 100
                    # P@k is a share of d["n"] queries.
                    assert round(d[m]["p@1"] * d["n"] / 100, 6) == round(d[m]["p@1"] * d["n"] / 100)


def test_identical_words_are_found_with_cosine(setup, tmp_path):
    data, heldout, corpora, ckpt, lexdir = setup
    from fairseq_weam.evaluation.embeddings import SentenceEncoder

    words = [s for s, _ in corpus_lexicon(corpora, "aa", 30)]
    # Every word with itself, and with a duplicate line: candidates must be deduplicated.
    path = tmp_path / "aa-aa.txt"
    path.write_text("".join(f"{w} {w}\n" for w in words) + f"{words[0]} {words[0]}\n")
    encoder = SentenceEncoder.from_checkpoint(ckpt, data)
    # Distinct words must have distinct vectors for the test to mean something.
    vecs = encoder.encode(words, "mean", "middle")
    assert len({v.tobytes() for v in vecs}) == len(words)
    r = evaluate.evaluate_bli(encoder, str(path))["aa-aa"]["vectors"]["isolated"]
    for d in ("src2tgt", "tgt2src"):
        assert r[d]["n"] == r[d]["candidates"] == 30
        assert r[d]["cosine"] == {"p@1": 100.0, "p@5": 100.0}


def test_text_candidates_and_missing_text(setup, tmp_path):
    data, heldout, corpora, ckpt, lexdir = setup
    from fairseq_weam.evaluation.embeddings import SentenceEncoder

    encoder = SentenceEncoder.from_checkpoint(ckpt, data)
    texts = {"en": [os.path.join(heldout, "en-aa.en")], "aa": [os.path.join(heldout, "en-aa.aa")]}
    r = evaluate.evaluate_bli(encoder, str(lexdir / "en-aa.txt"), texts, ("isolated",), candidates="text")
    d = r["en-aa"]["vectors"]["isolated"]["src2tgt"]
    with open(texts["aa"][0]) as f:
        n_words = len({w for line in f for w in line.split()})
    assert d["candidates"] == n_words
    # Pairs whose target word is not in the held-out text are dropped, the rest are queries.
    assert d["n"] + d["dropped_pairs"] >= d["n"] > 0
    with pytest.raises(ValueError, match="no text for language 'bb'"):
        evaluate.evaluate_bli(encoder, str(lexdir / "en-bb.txt"), texts, ("context",))


def test_cli_errors_are_one_line(setup, tmp_path, capsys):
    from fairseq_weam.cli import bli as cli

    data, heldout, corpora, ckpt, lexdir = setup
    bad = tmp_path / "en-aa.txt"
    bad.write_text("good pair\nbad\n")
    assert cli.main(["--checkpoint", ckpt, "--data", data, "--lexicon", str(bad)]) == 2
    assert (
        capsys.readouterr().err
        == f"fairseq-weam-bli: error: {bad}:2: expected 2 fields 'src_word tgt_word', found 1: 'bad'\n"
    )
    assert cli.main(["--checkpoint", "/nonexistent/ck.pt", "--data", data, "--lexicon", str(lexdir / "en-aa.txt")]) == 2
    expected = "fairseq-weam-bli: error: argument --checkpoint: /nonexistent/ck.pt: no such file\n"
    assert capsys.readouterr().err == expected
    with pytest.raises(UsageError, match="need --text"):
        cli.run(["--checkpoint", ckpt, "--lexicon", str(bad), "--candidates", "text"])


# --- silver lexicons from word alignments -------------------------------------------------


def test_induce_lexicon_rules():
    src = [["the", "house", "is", "red"], ["the", "house", "!"], ["a", "house"], ["Linux", "the", "red"]]
    tgt = [["la", "maison", "est", "rouge"], ["la", "maison", "!"], ["une", "maison"], ["Linux", "le", "rouge"]]
    links = [
        [(0, 0), (1, 1), (2, 2), (3, 3)],
        [(0, 0), (1, 1), (1, 0), (2, 2)],
        [(0, 0), (1, 1)],
        [(0, 0), (1, 1), (2, 2)],
    ]
    got = silver_lexicon.induce_lexicon(src, tgt, links, min_count=2, min_share=0.5)
    # house: maison 3 of its 4 links; the: la 2 of 3; red: rouge 2 of 2. "!" has no letter,
    # Linux is identical on both sides, is / a are linked once.
    assert got == [("house", "maison", 3, 0.75), ("the", "la", 2, 2 / 3), ("red", "rouge", 2, 1.0)]
    assert silver_lexicon.induce_lexicon(src, tgt, links, min_count=2, min_share=0.7) == [got[0], got[2]]
    assert silver_lexicon.induce_lexicon(src, tgt, links, min_count=3, min_share=0.5, max_pairs=5) == [got[0]]
    assert silver_lexicon.induce_lexicon(src, tgt, links, min_count=2, min_share=0.5, max_pairs=1) == [got[0]]
    with pytest.raises(ValueError, match="must match"):
        silver_lexicon.induce_lexicon(src, tgt[:3], links)


def test_lexicon_cli_recovers_the_synthetic_dictionary(tmp_path, capsys):
    from synthetic_corpus import make_pairs

    from fairseq_weam.cli import silver_lexicon as cli

    src, tgt, links = make_pairs(600, seed=3, n_words=40)
    truth = {}
    for s, t, ls in zip(src, tgt, links):
        for i, j in ls:
            truth[s.split()[i]] = t.split()[j]
    corpus = tmp_path / "corpus"
    (corpus / "heldout").mkdir(parents=True)
    for path, lines in (
        (corpus / "heldout" / "en-aa.en", src[:200]),
        (corpus / "heldout" / "en-aa.aa", tgt[:200]),
        (corpus / "train.en-aa.en", src[200:]),
        (corpus / "train.en-aa.aa", tgt[200:]),
    ):
        path.write_text("\n".join(lines) + "\n")
    assert cli.main(["--corpus", str(corpus), "--out", str(tmp_path / "lex"), "--max-pairs", "20"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| en-aa | 200 | 600 | 20 |")
    pairs = bli.read_lexicon(str(tmp_path / "lex" / "en-aa.txt"))
    assert len(pairs) == 20 and len({s for s, _ in pairs}) == 20
    assert sum(truth[s] == t for s, t in pairs) >= 18  # fast_align on 600 pairs: nearly all right


def test_silver_words_are_letters():
    for w in ("house", "l'homme", "peut-être", "की", "Datei", "文", "ungültige"):
        assert silver_lexicon.is_word(w), w
    for w in ("%s", "%s:", "»%s«", "'%s'", "3", "-x", "x-", "a.b", "", "ी"):
        assert not silver_lexicon.is_word(w), w


def test_context_vectors_are_means_over_occurrences(setup):
    from fairseq_weam.evaluation.embeddings import SentenceEncoder
    from fairseq_weam.evaluation.word_vectors import context_vectors, read_text

    data, heldout, corpora, ckpt, lexdir = setup
    encoder = SentenceEncoder.from_checkpoint(ckpt, data)
    lines = read_text([os.path.join(heldout, "en-aa.en")], encoder.pretokenize)
    counts = {}
    for i, tokens in enumerate(lines):
        for j, t in enumerate(tokens):
            counts.setdefault(t, []).append((i, j))
    word = max(counts, key=lambda w: len(counts[w]))
    occ = counts[word]
    assert len(occ) >= 3
    # Each occurrence's vector from its own sentence, encoded alone.
    each = [encoder.encode_words([" ".join(lines[i])], layer=1)[0][j] for i, j in occ]
    got = context_vectors(
        encoder, lines, [word, "absentword"], layer=1, max_occurrences=None, batch_size=4, chunk_lines=3
    )
    assert list(got) == [word]  # a word that never occurs has no vector
    np.testing.assert_allclose(got[word], np.mean(each, axis=0), atol=1e-5)
    first_two = context_vectors(encoder, lines, [word], layer=1, max_occurrences=2)
    np.testing.assert_allclose(first_two[word], np.mean(each[:2], axis=0), atol=1e-5)
