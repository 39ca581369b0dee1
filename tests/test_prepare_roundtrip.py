"""Raw text -> fairseq-weam-prepare -> files fairseq-preprocess would write -> fairseq-train --task weam."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from e2e import TEST_MODEL, flags, never, run_train, train_command
from prepare_fixtures import load_split, quick_prepare, synthetic_raw, write_pair

from fairseq_weam.data.alignment import format_pharaoh, pieces_per_word, project_alignments

BIN = os.path.dirname(sys.executable)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
W = "\u2581"


def text(pieces):
    return "".join(pieces).replace(W, " ").strip()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Two pairs sharing a language, prepared by the console script (fast_align backend)."""
    root = tmp_path_factory.mktemp("rt")
    prefix, data = synthetic_raw(str(root), pairs=(("xx", "yy"), ("xx", "zz")), n=300)
    out = str(root / "data")
    # ``python -m`` runs the same main() as the fairseq-weam-prepare console script, without
    # depending on the package being pip-installed.
    cmd = [
        sys.executable,
        "-m",
        "fairseq_weam.cli.prepare",
        "--trainpref",
        prefix,
        "--destdir",
        out,
        "--vocab-size",
        "120",
        "--valid-size",
        "20",
        "--workers",
        "1",
        "--max-positions",
        "96",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, data, proc.stdout


def test_layout_and_summary(prepared):
    out, data, stdout = prepared
    names = set(os.listdir(out))
    for split in ("train", "valid"):
        for s, t in (("xx", "yy"), ("xx", "zz")):
            for stem in (f"{split}.{s}-{t}.{s}", f"{split}.{s}-{t}.{t}", f"{split}.align.{s}-{t}"):
                assert {stem + ".bin", stem + ".idx"} <= names
    assert {"dict.txt", "spm.model", "summary.json"} <= names
    summary = json.load(open(os.path.join(out, "summary.json")))
    e = summary["pairs"]["xx-yy"]
    assert e["kept"] == {"train": 280, "valid": 20} and e["dropped"] == {}
    assert summary["tokens_per_language"]["xx"] > summary["tokens_per_language"]["yy"] > 0
    assert "xx-zz" in stdout and "coverage" in stdout  # the printed summary


def test_text_round_trips_and_links_are_right(prepared):
    out, data, _ = prepared
    for pair in ("xx-yy", "xx-zz"):
        src_lines, tgt_lines, gold = data[pair]
        gold_of = {(s, t): set(map(tuple, g)) for s, t, g in zip(src_lines, tgt_lines, gold)}
        seen, hits, n_pred, n_gold = [], 0, 0, 0
        for split in ("train", "valid"):
            for ps, pt, sub in load_split(out, split, *pair.split("-")):
                key = (text(ps), text(pt))
                seen.append(key)
                # subword links sit on first pieces of words; map back to word indices
                ws, wt = np.cumsum([p.startswith(W) for p in ps]) - 1, np.cumsum([p.startswith(W) for p in pt]) - 1
                assert all(ps[i].startswith(W) and pt[j].startswith(W) for i, j in sub)
                pred = {(int(ws[i]), int(wt[j])) for i, j in sub}
                hits += len(pred & gold_of[key])
                n_pred += len(pred)
                n_gold += len(gold_of[key])
        assert sorted(seen) == sorted(zip(src_lines, tgt_lines))  # nothing lost, nothing altered
        # fast_align on this word-for-word synthetic bitext should find most gold links
        assert hits / n_pred > 0.8 and hits / n_gold > 0.8, (pair, hits / n_pred, hits / n_gold)


def test_files_identical_to_fairseq_preprocess(prepared, tmp_path):
    """Write our data back as text and binarize it with fairseq-preprocess: same bytes."""
    out, _, _ = prepared
    raw = tmp_path / "txt"
    raw.mkdir()
    for split in ("train", "valid"):
        rows = list(load_split(out, split, "xx", "yy"))
        write_pair(str(raw / split), "xx", "yy", [" ".join(r[0]) for r in rows], [" ".join(r[1]) for r in rows])
        for lang in ("xx", "yy"):
            os.rename(raw / f"{split}.xx-yy.{lang}", raw / f"{split}.{lang}")
        os.rename(raw / f"{split}.xx-yy.align", raw / f"{split}.align") if os.path.exists(
            raw / f"{split}.xx-yy.align"
        ) else None
        with open(raw / f"{split}.align", "w") as f:
            f.writelines(format_pharaoh(r[2]) + "\n" for r in rows)
    ref = tmp_path / "ref"
    cmd = [
        os.path.join(BIN, "fairseq-preprocess"),
        "--source-lang",
        "xx",
        "--target-lang",
        "yy",
        "--trainpref",
        str(raw / "train"),
        "--validpref",
        str(raw / "valid"),
        "--align-suffix",
        "align",
        "--joined-dictionary",
        "--srcdict",
        os.path.join(out, "dict.txt"),
        "--destdir",
        str(ref),
        "--workers",
        "1",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    compared = 0
    for name in os.listdir(ref):
        if name.endswith((".bin", ".idx")):
            with open(ref / name, "rb") as a, open(os.path.join(out, name), "rb") as b:
                assert a.read() == b.read(), name
            compared += 1
    assert compared == 12


def test_fairseq_train_weam_on_prepared_data(prepared, tmp_path):
    out, _, _ = prepared
    cmd = train_command(
        out,
        *flags({**TEST_MODEL, "tokens_per_sample": 96}),
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--lr-scheduler",
        "inverse_sqrt",
        "--warmup-updates",
        "2",
        "--batch-size",
        "16",
        "--max-update",
        "4",
        "--save-dir",
        str(tmp_path / "ckpt"),
        "--no-save",
        "--cpu",
        "--num-workers",
        "0",
        "--log-format",
        "simple",
        "--log-interval",
        "1",
    )
    proc = run_train(cmd, show=never, cwd=ROOT, timeout=300, check=False)
    log = proc.output
    assert proc.returncode == 0, log[-3000:]
    assert "language pairs: xx-yy,xx-zz" in log
    assert "num_updates=4" in log and "done training" in log
    # cross-lingual targets exist only where the prepared alignments link masked words
    xl_share = re.search(r"valid on 'valid' subset .*\| xl_share ([0-9.]+)", log)
    assert xl_share and float(xl_share.group(1)) > 0, log[-2000:]


def test_imported_pharaoh_links_are_projected_exactly(tmp_path):
    prefix, data = synthetic_raw(str(tmp_path), n=60)
    src_lines, tgt_lines, gold = data["xx-yy"]
    write_pair(prefix, "xx", "yy", src_lines, tgt_lines, [format_pharaoh(np.array(g)) for g in gold])
    out = str(tmp_path / "out")
    summary = quick_prepare(prefix, out, aligner="pharaoh", valid_size=5)
    gold_of = {(s, t): np.array(g) for s, t, g in zip(src_lines, tgt_lines, gold)}
    n = 0
    for split in ("train", "valid"):
        for ps, pt, sub in load_split(out, split, "xx", "yy"):
            expected = project_alignments(gold_of[(text(ps), text(pt))], pieces_per_word(ps), pieces_per_word(pt))
            assert sub.tolist() == expected.tolist()
            n += 1
    assert n == 60 and summary["pairs"]["xx-yy"]["coverage"]["src"] == 1.0
    assert summary["pretokenize"]["split_cjk"] is False  # imported links index the input's own words


def test_joint_file_validpref_and_cjk_words(tmp_path):
    src = ["open the file now", "close the window", "save the file", "print the page"] * 5
    tgt = ["现在打开文件", "关闭窗口", "保存文件", "打印页面"] * 5
    write_pair(str(tmp_path / "raw" / "train"), "en", "zh_CN", src, tgt, joint=True)
    write_pair(str(tmp_path / "raw" / "valid"), "en", "zh_CN", src[:3], tgt[:3], joint=True)
    out = str(tmp_path / "out")
    summary = quick_prepare(
        str(tmp_path / "raw" / "train"), out, validpref=str(tmp_path / "raw" / "valid"), vocab_size=60
    )
    assert summary["pairs"]["en-zh_CN"]["kept"] == {"train": 20, "valid": 3}
    rows = list(load_split(out, "valid", "en", "zh_CN"))
    # each CJK character is a word of its own (opens with U+2581), so WEAM can mask it alone
    assert sum(p.startswith(W) for p in rows[1][1]) == 4 and text(rows[1][1]) == "关 闭 窗 口"


def test_eflomal_backend(tmp_path):
    pytest.importorskip("eflomal")
    prefix, data = synthetic_raw(str(tmp_path), n=150)
    out = str(tmp_path / "out")
    summary = quick_prepare(prefix, out, aligner="eflomal")
    src_lines, tgt_lines, gold = data["xx-yy"]
    gold_of = {(s, t): set(map(tuple, g)) for s, t, g in zip(src_lines, tgt_lines, gold)}
    hits = n_pred = 0
    for split in ("train", "valid"):
        for ps, pt, sub in load_split(out, split, "xx", "yy"):
            ws, wt = np.cumsum([p.startswith(W) for p in ps]) - 1, np.cumsum([p.startswith(W) for p in pt]) - 1
            pred = {(int(ws[i]), int(wt[j])) for i, j in sub}
            hits += len(pred & gold_of[(text(ps), text(pt))])
            n_pred += len(pred)
    assert n_pred and hits / n_pred > 0.8
    assert summary["options"]["aligner"] == "eflomal" and summary["pairs"]["xx-yy"]["coverage"]["src"] > 0.8


def test_existing_model_and_dictionary_are_reused(prepared, tmp_path):
    """--spm-model + --dictionary (as with XLM-R's): same ids, dictionary copied verbatim."""
    first, data, _ = prepared
    prefix, _ = synthetic_raw(str(tmp_path), pairs=(("xx", "yy"),), n=40, seed=7)
    out = str(tmp_path / "out")
    summary = quick_prepare(
        prefix, out, spm_model=os.path.join(first, "spm.model"), dictionary=os.path.join(first, "dict.txt")
    )
    assert open(os.path.join(out, "dict.txt"), "rb").read() == open(os.path.join(first, "dict.txt"), "rb").read()
    assert summary["sentencepiece"]["trained"] is False and summary["dictionary"]["source"].endswith("dict.txt")
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=os.path.join(first, "spm.model"))
    src_lines = set(open(prefix + ".xx-yy.xx").read().splitlines())
    for ps, _, _ in load_split(out, "train", "xx", "yy"):
        assert text(ps) in src_lines and ps == sp.encode(text(ps), out_type=str)


def test_words_normalized_away_by_sentencepiece_keep_links_in_range(tmp_path):
    """'\\u200b' is a word for str.split() but vanishes in sentencepiece: the aligner must see the
    dataset's words, or links would point past the sentence or at the wrong word."""
    prefix, data = synthetic_raw(str(tmp_path), n=80)
    src_lines, tgt_lines, _ = data["xx-yy"]
    src_lines = [s.replace(" ", " \u200b ", 1) if k % 2 else s for k, s in enumerate(src_lines)]
    write_pair(prefix, "xx", "yy", src_lines, tgt_lines)
    out = str(tmp_path / "out")
    quick_prepare(prefix, out)
    n = 0
    for split in ("train", "valid"):
        for ps, pt, sub in load_split(out, split, "xx", "yy"):
            assert "\u200b" not in "".join(ps)
            assert len(sub) and sub[:, 0].max() < len(ps) and sub[:, 1].max() < len(pt)
            assert all(ps[i].startswith(W) for i in sub[:, 0])
            n += 1
    assert n == 80
