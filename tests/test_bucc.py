"""BUCC 2018 mining: the threshold rule and P/R/F1 on hand-computed candidates, the mining
against a literal re-implementation of LASER's / XTREME's loops (torch blocks and faiss), the
pool and gold readers on files in BUCC's layout, and fairseq-weam-bucc on a tiny checkpoint."""

import json
import os

import numpy as np
import pytest
from eval_fixtures import shared_pretrained

from fairseq_weam.evaluation import bucc, retrieval


def test_threshold_and_scores_by_hand():
    # Candidates by descending score; gold has 4 pairs, one of them never mined (f, u).
    cands = {("a", "x"): 0.9, ("b", "y"): 0.8, ("c", "z"): 0.7, ("d", "w"): 0.6, ("e", "v"): 0.5}
    gold = {("a", "x"), ("c", "z"), ("d", "w"), ("f", "u")}
    # Prefix F1: 1 -> 0.4, 2 -> 1/3, 3 -> 4/7, 4 -> 0.75 (P = R = 3/4), 5 -> 2/3: best after the
    # 4th candidate; threshold = midpoint of its score and the next one's.
    assert bucc.optimize_threshold(cands, gold) == pytest.approx(0.55)
    predicted = bucc.extract(cands, 0.55)
    assert predicted == {("a", "x"), ("b", "y"), ("c", "z"), ("d", "w")}
    assert bucc.prf(predicted, gold) == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75})
    # The dev threshold applied to another (test) set: score >= threshold is predicted.
    test = {("p", "q"): 0.55, ("r", "s"): 0.549, ("t", "u"): 0.9}
    assert bucc.extract(test, 0.55) == {("p", "q"), ("t", "u")}
    assert bucc.prf({("p", "q"), ("t", "u")}, {("p", "q"), ("r", "s"), ("z", "z")}) == pytest.approx(
        {"precision": 0.5, "recall": 1 / 3, "f1": 0.4}
    )
    assert bucc.prf({("t", "u")}, {("p", "q")}) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # Best F1 at the last candidate: its own score (there is no next one).
    assert bucc.optimize_threshold({("a", "x"): 0.9, ("b", "y"): 0.8}, {("a", "x"), ("b", "y")}) == 0.8


def laser_mine(x, y, k):
    """LASER mine_bitexts.py --mode mine --retrieval max --margin ratio, written out literally."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    cos = x @ y.T
    x_ind = np.argsort(-cos, axis=1)[:, : min(k, len(y))]
    y_ind = np.argsort(-cos.T, axis=1)[:, : min(k, len(x))]
    x_mean = np.take_along_axis(cos, x_ind, 1).mean(1)
    y_mean = np.take_along_axis(cos.T, y_ind, 1).mean(1)
    fwd = np.array([[cos[i, j] / ((x_mean[i] + y_mean[j]) / 2) for j in x_ind[i]] for i in range(len(x))])
    bwd = np.array([[cos[i, j] / ((y_mean[j] + x_mean[i]) / 2) for i in y_ind[j]] for j in range(len(y))])
    fwd_best = x_ind[np.arange(len(x)), fwd.argmax(1)]
    bwd_best = y_ind[np.arange(len(y)), bwd.argmax(1)]
    pairs = [(i, int(fwd_best[i])) for i in range(len(x))] + [(int(bwd_best[j]), j) for j in range(len(y))]
    scores = np.concatenate([fwd.max(1), bwd.max(1)])
    out, seen_src, seen_tgt = [], set(), set()
    for c in np.argsort(-scores, kind="stable"):
        i, j = pairs[c]
        if i not in seen_src and j not in seen_tgt:
            seen_src.add(i)
            seen_tgt.add(j)
            if scores[c] > 0:
                out.append((i, j, scores[c]))
    return out


@pytest.mark.parametrize("use_faiss", [False, True])
@pytest.mark.parametrize("k", [2, 4])  # k = 1 makes every mutual neighbour score exactly 1: ties
def test_mining_matches_laser_loops(use_faiss, k):
    if use_faiss:
        pytest.importorskip("faiss")  # the [test] extra installs faiss-cpu; this checks its path
    rng = np.random.default_rng(k)
    # 30 source sentences, 40 targets; the first 20 of each are noisy translations of each other.
    x = rng.normal(size=(30, 16)) + 0.5
    y = np.concatenate([x[:20] + 0.6 * rng.normal(size=(20, 16)), rng.normal(size=(20, 16)) + 0.5])
    expected = laser_mine(x, y, k)
    for block in (7, 1024):
        got = bucc.mine(x, y, k, batch_size=block, use_faiss=use_faiss)
        assert [(i, j) for i, j, _ in got] == [(i, j) for i, j, _ in expected]
        np.testing.assert_allclose([s for *_, s in got], [s for *_, s in expected], rtol=1e-5)
    # Greedy one-to-one: no sentence twice, and more candidates than either side alone gives.
    assert len({i for i, _, _ in expected}) == len(expected) == len({j for _, j, _ in expected})


def test_faiss_and_torch_knn_agree():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    q, keys = retrieval.normalize(rng.normal(size=(50, 8))), retrieval.normalize(rng.normal(size=(70, 8)))
    s1, i1 = retrieval.knn(q, keys, 5, batch_size=9)
    s2, i2 = retrieval.knn(q, keys, 5, use_faiss=True)
    assert i1.tolist() == i2.tolist()
    np.testing.assert_allclose(s1.numpy(), s2.numpy(), rtol=1e-5)


def write_pool(path, ids, sentences):
    with open(path, "w") as f:
        f.writelines(f"{i}\t{s}\n" for i, s in zip(ids, sentences))


def test_readers_and_duplicate_sentences(tmp_path):
    src = tmp_path / "de-en.dev.de"
    write_pool(src, ["de-000001", "de-000002", "de-000003", "de-000004"], ["a", "b", "a", "c"])
    pool = bucc.read_pool(str(src))
    # "a" has two IDs: embedded once, but no candidate on it can be mapped back to an ID.
    assert pool.unique() == (["a", "b", "c"], [None, "de-000002", "de-000004"])
    cands = bucc.candidates_by_id([(0, 0, 1.2), (1, 1, 1.1), (2, 0, 1.05)], pool.unique()[1], ["en-1", "en-2"])
    assert cands == {("de-000002", "en-2"): 1.1, ("de-000004", "en-1"): 1.05}
    tgt = tmp_path / "de-en.dev.en"
    write_pool(tgt, ["en-1", "en-2"], ["A", "B"])
    gold = tmp_path / "de-en.dev.gold"
    gold.write_text("de-000002\ten-2\nen-1\tde-000004\n")
    with pytest.raises(bucc.BuccFormatError, match=r"de-en.dev.gold:2: en-1 / de-000004 not in .*swapped"):
        bucc.read_gold(str(gold), pool, bucc.read_pool(str(tgt)))
    bad = tmp_path / "bad.de"
    bad.write_text("de-1\tfine\nde-2 no tab here\n")
    with pytest.raises(bucc.BuccFormatError, match=r"bad.de:2: expected ID<TAB>sentence"):
        bucc.read_pool(str(bad))
    bad.write_text("de-1\tfine\nde-1\tagain\n")
    with pytest.raises(bucc.BuccFormatError, match=r"bad.de:2: ID de-1 occurs twice"):
        bucc.read_pool(str(bad))


def make_split(d, name, src_sents, en_sents, n_gold, rng):
    """A BUCC-like split: every source sentence in the pool, only n_gold of their translations
    (shuffled among English distractors) in the English pool."""
    src_ids = [f"aa-{name}-{i:06d}" for i in range(len(src_sents))]
    en_pool = [(f"en-{name}-{i:06d}", en_sents[i]) for i in range(n_gold)]
    en_pool += [(f"en-{name}-{i:06d}", en_sents[i]) for i in range(len(src_sents), len(en_sents))]
    en_pool = [en_pool[i] for i in rng.permutation(len(en_pool))]
    paths = [os.path.join(d, f"aa-en.{name}.{suffix}") for suffix in ("aa", "en", "gold")]
    write_pool(paths[0], src_ids, src_sents)
    write_pool(paths[1], [i for i, _ in en_pool], [s for _, s in en_pool])
    with open(paths[2], "w") as f:
        f.writelines(f"{src_ids[i]}\ten-{name}-{i:06d}\n" for i in range(n_gold))
    return paths


def test_cli_dev_threshold_applied_to_test(tmp_path, capsys):
    from fairseq_weam.cli import bucc as cli
    from fairseq_weam.evaluation.embeddings import SentenceEncoder

    data, _, corpora, ckpt = shared_pretrained()
    en, aa = corpora["aa"][0], corpora["aa"][1]
    rng = np.random.default_rng(0)
    dev = make_split(str(tmp_path), "dev", aa[:30], en[:40], 12, rng)
    test = make_split(str(tmp_path), "test", aa[40:70], en[40:80], 15, rng)
    args = [
        "--checkpoint",
        ckpt,
        "--data",
        data,
        "--device",
        "cpu",
        "--src",
        test[0],
        "--tgt",
        test[1],
        "--gold",
        test[2],
        "--threshold-from",
        *dev,
    ]
    results = cli.run(args + ["--json", str(tmp_path / "b.json"), "--predictions", str(tmp_path / "test-aa.tsv")])
    assert capsys.readouterr().out.splitlines()[0].startswith("| split | threshold |")
    saved = json.loads((tmp_path / "b.json").read_text())
    assert saved["results"] == json.loads(json.dumps(results)) and saved["results"]["test"]["threshold_from"] == "dev"
    # The same steps by hand through the library: the dev threshold, applied to test.
    encoder = SentenceEncoder.from_checkpoint(ckpt, data)
    pools = [bucc.read_pool(p) for p in (dev[0], dev[1], test[0], test[1])]
    dev_cands = bucc.mine_pools(encoder, pools[0], pools[1])
    threshold = bucc.optimize_threshold(dev_cands, bucc.read_gold(dev[2], pools[0], pools[1]))
    assert saved["results"]["dev"]["threshold"] == pytest.approx(threshold)
    predicted = bucc.extract(bucc.mine_pools(encoder, pools[2], pools[3]), threshold)
    gold = bucc.read_gold(test[2], pools[2], pools[3])
    assert saved["results"]["test"]["predicted"] == len(predicted) > 0 and saved["results"]["test"]["gold"] == 15
    for key, value in bucc.prf(predicted, gold).items():
        assert saved["results"]["test"][key] == pytest.approx(value)
    lines = open(tmp_path / "test-aa.tsv").read().splitlines()
    assert {tuple(l.split("\t")) for l in lines} == predicted and len(lines) == len(predicted)
    if retrieval._faiss() is not None:  # the faiss path gives the same result
        with_faiss = cli.run(args + ["--faiss"])
        for split, r in results.items():
            assert {k: v for k, v in with_faiss[split].items() if isinstance(v, str)} == {
                k: v for k, v in r.items() if isinstance(v, str)
            }
            assert {k: v for k, v in with_faiss[split].items() if not isinstance(v, str)} == pytest.approx(
                {k: v for k, v in r.items() if not isinstance(v, str)}
            )
    # A swapped gold file is a one-line error naming file and line.
    swapped = tmp_path / "swapped.gold"
    swapped.write_text("".join("\t".join(l.split("\t")[::-1]) + "\n" for l in open(test[2]).read().splitlines()))
    assert cli.main(args[:-4] + ["--gold", str(swapped)]) == 2
    assert "swapped.gold:1:" in capsys.readouterr().err
