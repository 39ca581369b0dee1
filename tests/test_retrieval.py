"""Retrieval scoring on constructed embeddings with known answers, the sentence encoder, and
the fairseq-weam-retrieval command on a tiny checkpoint."""

import json

import numpy as np
import pytest
import torch
from eval_fixtures import shared_pretrained

from fairseq_weam.core.checkpoints import EmbeddingError
from fairseq_weam.evaluation import retrieval
from fairseq_weam.evaluation.embeddings import SentenceEncoder

# A hub: target 2 = (1,1,1) is every source's cosine-nearest target. Cosine: only source 2 finds
# its translation (1/3); the margin divides by the hub's high k-NN mean and recovers sources 0
# and 1 (cos 0.555 / 0.622 = 0.892 beats 0.577 / 0.677 = 0.852, see the worked numbers in
# docs/evaluation.md). Target -> source, source 2 is a hub too, and the margin does not save it.
HUB_SRC = [[1, 0, 0], [0, 1, 0], [1, 1, 1]]
HUB_TGT = [[1, 0, 1.5], [0, 1, 1.5], [1, 1, 1]]


def brute_force_margin(src, tgt, k):
    """The LASER ratio margin on the full matrix, written independently of the batched code."""
    src = np.asarray(src, float) / np.linalg.norm(src, axis=1, keepdims=True)
    tgt = np.asarray(tgt, float) / np.linalg.norm(tgt, axis=1, keepdims=True)
    cos = src @ tgt.T
    r_src = np.sort(cos, axis=1)[:, ::-1][:, :k].mean(1)
    r_tgt = np.sort(cos, axis=0)[::-1, :][:k].mean(0)
    return cos / ((r_src[:, None] + r_tgt[None, :]) / 2)


def test_hub_cosine_fails_margin_recovers():
    r = retrieval.retrieval_accuracy(HUB_SRC, HUB_TGT, k=2)
    assert r["cosine"]["src2tgt"] == pytest.approx(1 / 3) and r["cosine"]["tgt2src"] == pytest.approx(1 / 3)
    assert r["margin"]["src2tgt"] == pytest.approx(1.0) and r["margin"]["tgt2src"] == pytest.approx(1 / 3)
    assert r["margin"]["mean"] == pytest.approx(2 / 3)
    m = brute_force_margin(HUB_SRC, HUB_TGT, 2)
    assert m[0, 0] == pytest.approx(0.892, abs=1e-3) and m[0, 2] == pytest.approx(0.852, abs=1e-3)


def test_identity_and_permutation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 16))
    r = retrieval.retrieval_accuracy(x, x + 0.01 * rng.normal(size=x.shape))
    assert all(r[m][d] == 1.0 for m in retrieval.METHODS for d in ("src2tgt", "tgt2src"))
    # Shuffle 20 of the 50 targets among themselves (a derangement): exactly 30 stay right.
    perm = np.arange(50)
    perm[:20] = np.roll(perm[:20], 1)
    r = retrieval.retrieval_accuracy(x, x[perm], methods=("cosine",))
    assert r["cosine"]["src2tgt"] == pytest.approx(0.6) and r["cosine"]["tgt2src"] == pytest.approx(0.6)
    assert "margin" not in r


@pytest.mark.parametrize("k", [1, 3, 10])
def test_batched_scoring_matches_full_matrix(k):
    rng = np.random.default_rng(k)
    # Positive-mean vectors, like real encoder outputs (all cosines > 0), with a noisy pairing.
    src = rng.normal(size=(37, 8)) + 1.0
    tgt = src + 0.8 * rng.normal(size=src.shape)
    expected = brute_force_margin(src, tgt, k).argmax(1)
    s, t = retrieval.normalize(src), retrieval.normalize(tgt)
    knn_s = retrieval.knn_mean_similarity(s, t, k, batch_size=5)
    knn_t = retrieval.knn_mean_similarity(t, s, k, batch_size=7)
    for bs in (1, 4, 100):
        got = retrieval.best_candidates(s, t, "margin", knn_s, knn_t, batch_size=bs).numpy()
        np.testing.assert_array_equal(got, expected)
    full = retrieval.retrieval_accuracy(src, tgt, k=k, batch_size=1000)
    small = retrieval.retrieval_accuracy(src, tgt, k=k, batch_size=3)
    assert full == small
    assert full["margin"]["src2tgt"] == pytest.approx((expected == np.arange(37)).mean())


def test_input_errors():
    with pytest.raises(ValueError, match="line-aligned"):
        retrieval.retrieval_accuracy(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="method"):
        retrieval.best_candidates(torch.ones(2, 2), torch.ones(2, 2), "dot")


def test_read_parallel_drops_blank_pairs(tmp_path):
    (tmp_path / "a").write_text("x\n\ny\nz\n")
    (tmp_path / "b").write_text("X\nQ\n\nZ\n")
    assert retrieval.read_parallel(str(tmp_path / "a"), str(tmp_path / "b")) == (["x", "z"], ["X", "Z"])
    (tmp_path / "c").write_text("X\n")
    with pytest.raises(ValueError, match="lines"):
        retrieval.read_parallel(str(tmp_path / "a"), str(tmp_path / "c"))


@pytest.fixture(scope="module")
def encoder():
    data, heldout, corpora, ckpt = shared_pretrained()
    return SentenceEncoder.from_checkpoint(ckpt, data)


def test_encoder_pooling_layers_and_batch_invariance(encoder):
    sents = ["gz bnmugu ac", "fnrik aitma bmize kt bjgrr ac gz", "ac"]
    assert encoder.num_layers == 2 and encoder.resolve_layer("middle") == 1 and encoder.resolve_layer(-1) == 2
    with pytest.raises(EmbeddingError):
        encoder.resolve_layer(3)
    one_by_one = np.concatenate([encoder.encode([s], "mean", "last") for s in sents])
    batched = encoder.encode(sents, "mean", "last", batch_size=3)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)  # padding does not leak
    # Mean pooling = mean of the layer's states over the sentence's pieces, without <s> / </s>.
    ids = encoder.token_ids(encoder.pieces(sents[1]))
    states, _ = encoder.hidden_states([ids], 2)
    np.testing.assert_allclose(batched[1], states[0, 1:-1].mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(encoder.encode(sents[1:2], "cls", 2)[0], states[0, 0].numpy(), atol=1e-5)
    assert not np.allclose(encoder.encode(sents, "mean", 0), batched)  # layer choice matters
    words = encoder.encode_words(sents, layer=1)
    assert [w.shape[0] for w in words] == [3, 7, 1]


def test_cli_heldout_table_and_json(tmp_path, capsys):
    from fairseq_weam.cli import retrieval as cli

    data, heldout, corpora, ckpt = shared_pretrained()
    out = tmp_path / "r.json"
    results = cli.run(
        [
            "--checkpoint",
            ckpt,
            "--data",
            data,
            "--heldout",
            heldout,
            "--json",
            str(out),
            "--k",
            "3",
            "--score-batch-size",
            "7",
        ]
    )
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("| lang | n | cosine en->xx")
    # 20 held-out pairs each, under the default --min-heldout 100: reported, marked, not averaged.
    assert [l.split("|")[1].strip() for l in table.splitlines()[2:6]] == [
        "aa †",
        "bb †",
        "avg (0 langs)",
        "avg (pairs)",
    ]
    assert table.splitlines()[4] == "| avg (0 langs) | 0 | - | - | - | - |"
    assert "covers no language (>= 100 held-out pairs); leaves out aa, bb (marked †)." in table
    saved = json.loads(out.read_text())
    assert saved["config"]["layer"] == 1 and saved["config"]["k"] == 3 and saved["config"]["min_heldout"] == 100
    assert saved["results"]["aa"]["n"] == 20 and set(saved["results"]["bb"]) == {"n", "cosine", "margin", "correct"}
    assert len(saved["results"]["bb"]["correct"]["margin"]["tgt2src"]) == 20
    assert saved["results"] == json.loads(json.dumps(results))
    assert saved["averages"]["excluded"] == ["aa", "bb"] and saved["averages"]["margin"]["mean"]["macro"] is None

    cli.run(
        [
            "--checkpoint",
            ckpt,
            "--data",
            data,
            "--heldout",
            heldout,
            "--json",
            str(out),
            "--k",
            "3",
            "--min-heldout",
            "20",
        ]
    )
    assert [l.split("|")[1].strip() for l in capsys.readouterr().out.splitlines()[2:6]] == [
        "aa",
        "bb",
        "avg (2 langs)",
        "avg (pairs)",
    ]
    avg = json.loads(out.read_text())["averages"]
    for m in ("cosine", "margin"):
        for d in ("src2tgt", "tgt2src", "mean"):
            macro = (results["aa"][m][d] + results["bb"][m][d]) / 2
            assert avg[m][d]["macro"] == pytest.approx(macro) and avg[m][d]["pair_weighted"] == pytest.approx(macro)


def test_find_parallel_sets(tmp_path):
    from fairseq_weam.evaluation.evaluate import find_parallel_sets

    for name in ("en-de.en", "en-de.de", "en-zh_CN.en", "en-zh_CN.zh_CN", "en-fr.en"):  # fr lacks its side
        (tmp_path / name).write_text("x\n")
    sets = find_parallel_sets(str(tmp_path))
    assert list(sets) == ["de", "zh_CN"] and sets["zh_CN"][1].endswith("en-zh_CN.zh_CN")
    assert list(find_parallel_sets(str(tmp_path), langs=["de"])) == ["de"]
    with pytest.raises(FileNotFoundError, match="fr"):
        find_parallel_sets(str(tmp_path), langs=["de", "fr"])


def test_cli_missing_checkpoint_is_a_one_line_error(capsys):
    from fairseq_weam.cli import retrieval as cli

    data, heldout, _, _ = shared_pretrained()
    assert cli.main(["--checkpoint", "/nonexistent/ck.pt", "--data", data, "--heldout", heldout]) == 2
    assert capsys.readouterr().err == (
        "fairseq-weam-retrieval: error: argument --checkpoint: /nonexistent/ck.pt: no such file\n"
    )
