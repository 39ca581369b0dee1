"""Preparation at corpus scale: ``fit`` once, ``apply`` per slice.

The one-shot path and fit + apply give the same bytes; three shards applied separately hold
exactly the examples of the whole corpus; fairseq-train rotates over them; apply refuses fitted
files that do not match their manifest, resumes an interrupted run, and the streaming pieces
(line index, dataset writer) match the whole-file code they replace.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import sentencepiece as spm
from e2e import fairseq_train
from fairseq.data import indexed_dataset
from prepare_fixtures import load_split, quick_prepare, synthetic_raw, write_pair

from fairseq_weam.cli.prepare import main as prepare_main
from fairseq_weam.prepare import binarize, stages, textio
from fairseq_weam.prepare.errors import BadLines, PrepareError
from fairseq_weam.prepare.shard import ApplyOptions, Slice, apply

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# fast_align's fit sums over OpenMP threads in varying order; one thread makes it reproducible,
# which is what lets two independent fits be compared byte for byte.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
COMMON = ["--vocab-size", "120", "--valid-size", "15", "--max-positions", "96", "--workers", "1", "--skip-bad-lines"]
PAIRS = (("xx", "yy"), ("xx", "zz"))


def cli(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "fairseq_weam.cli.prepare", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def data_files(out):
    return sorted(n for n in os.listdir(out) if n.endswith((".bin", ".idx")) or n == "dict.txt")


def examples(out, split, pair):
    return [(ps, pt, links.tolist()) for ps, pt, links in load_split(out, split, *pair)]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    prefix, data = synthetic_raw(str(root), pairs=PAIRS, n=240)
    src, tgt, _ = data["xx-yy"]
    write_pair(prefix, "xx", "yy", src, tgt[:9] + ["   "] + tgt[10:])  # one bad line, dropped in shard 0
    cli("--trainpref", prefix, "--destdir", root / "oneshot", *COMMON)
    cli("fit", "--trainpref", prefix, "--destdir", root / "model", "--sample-size", "0", *COMMON)
    cli(
        "apply",
        "--model",
        root / "model",
        "--trainpref",
        prefix,
        "--destdir",
        root / "whole",
        "--workers",
        "2",
        "--chunk-lines",
        "37",
    )
    for k in range(3):  # in-process: applying fits nothing, so it needs no single-thread guard
        apply(
            ApplyOptions(
                model=str(root / "model"),
                trainpref=prefix,
                slice=Slice(k, 3),
                out=str(root / "out" / f"shard{k}"),
                chunk_lines=50,
            )
        )
    return root, prefix


def test_one_shot_equals_fit_then_apply(prepared):
    """Same corpus, same settings: the one-shot output and fit + apply (2 workers, chunks of 37
    lines) are the same bytes, dictionary included; the sentencepiece models have the same pieces
    and scores (the file also records the temporary path it was trained in)."""
    root, _ = prepared
    one, whole = root / "oneshot", root / "whole"
    names = data_files(one)
    assert names == data_files(whole) and len(names) == 1 + 2 * 2 * 3 * 2
    for name in names:
        assert (one / name).read_bytes() == (whole / name).read_bytes(), name
    a, b = (spm.SentencePieceProcessor(model_file=str(d / "spm.model")) for d in (one, whole))
    assert [(a.id_to_piece(i), a.get_score(i)) for i in range(a.get_piece_size())] == [
        (b.id_to_piece(i), b.get_score(i)) for i in range(b.get_piece_size())
    ]
    s_one, s_whole = (json.load(open(d / "summary.json")) for d in (one, whole))
    assert s_one["pairs"] == s_whole["pairs"]
    assert s_one["pairs"]["xx-yy"]["dropped"] == {"empty or whitespace-only line": 1}
    assert s_whole["slice"] == "0/1"


def test_three_shards_hold_exactly_the_whole_corpus(prepared):
    root, _ = prepared
    whole = root / "whole"
    shards = [root / "out" / f"shard{k}" for k in range(3)]
    for pair in PAIRS:
        union = [e for d in shards for e in examples(d, "train", pair)]
        assert union == examples(whole, "train", pair)  # same pairs, tokens and links, in order
        assert len(union) == 240 - 15 - (pair == ("xx", "yy"))
        for d in shards:  # every shard carries the one valid split fit drew
            for name in (f"valid.{pair[0]}-{pair[1]}.{pair[0]}", f"valid.align.{pair[0]}-{pair[1]}"):
                for ext in (".bin", ".idx"):
                    assert (d / (name + ext)).read_bytes() == (whole / (name + ext)).read_bytes()
    summaries = [json.load(open(d / "summary.json")) for d in shards]
    assert [s["pairs"]["xx-yy"]["lines_read"]["train"] for s in summaries] == [80, 80, 80]
    assert [s["pairs"]["xx-yy"]["dropped"] for s in summaries] == [{"empty or whitespace-only line": 1}, {}, {}]
    assert len({s["manifest_sha256"] for s in summaries}) == 1


def test_fairseq_train_rotates_over_the_shards(prepared, tmp_path):
    root, _ = prepared
    shards = [str(root / "out" / f"shard{k}") for k in range(3)]
    run, _ = fairseq_train(
        ":".join(shards),
        tmp_path / "ckpt",
        "--max-epoch",
        "3",
        "--tokens-per-sample",
        "96",
        "--lang-pairs",
        "xx-yy",
        "--no-save",
        max_update=1000,
    )
    log = run.output
    loaded = [
        line.split("from: ")[1] for line in log.splitlines() if "examples from:" in line and "train.xx-yy.xx" in line
    ]
    # one shard per epoch, in order (fairseq loads epoch 4's data before it stops at --max-epoch 3)
    assert loaded[:3] == [os.path.join(s, "train.xx-yy.xx") for s in shards], loaded
    assert loaded[3:] in ([], [loaded[0]]), loaded
    assert "done training" in log


def test_apply_refuses_files_that_do_not_match_the_manifest(prepared, tmp_path, capsys):
    root, prefix = prepared
    model = tmp_path / "model"
    shutil.copytree(root / "model", model)
    with open(model / "dict.txt", "a") as f:
        f.write("extra 1\n")
    rc = prepare_main(
        ["apply", "--model", str(model), "--trainpref", prefix, "--destdir", str(tmp_path / "s"), "--workers", "1"]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("fairseq-weam-prepare apply: error: ") and "dict.txt: does not match manifest.json" in err
    # another corpus than the one fitted
    other, _ = synthetic_raw(str(tmp_path / "other"), pairs=PAIRS, n=100)
    with pytest.raises(PrepareError, match=r"xx-yy: .*train\.xx-yy\.xx .* are not the files fitted"):
        apply(ApplyOptions(model=str(root / "model"), trainpref=other, out=str(tmp_path / "s")))
    assert not os.path.exists(tmp_path / "s")


def test_interrupted_apply_resumes_at_the_first_unfinished_chunk(prepared, tmp_path, monkeypatch):
    root, prefix = prepared
    out = tmp_path / "shard"
    real = stages.binarize
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(stages, "binarize", interrupted)
    opts = ApplyOptions(model=str(root / "model"), trainpref=prefix, out=str(out), chunk_lines=37)
    with pytest.raises(KeyboardInterrupt):
        apply(opts)
    assert not out.exists()  # nothing that looks finished
    assert len(os.listdir(tmp_path / ".shard.partial" / "chunks")) == 2
    calls.clear()
    monkeypatch.setattr(stages, "binarize", lambda *a: calls.append(1) or real(*a))
    apply(opts)
    # 240 lines in chunks of 37 -> 7 per pair, plus one valid chunk per pair
    assert len(calls) == 2 * (7 + 1) - 2
    assert not (tmp_path / ".shard.partial").exists()
    for name in data_files(root / "whole"):
        assert (out / name).read_bytes() == (root / "whole" / name).read_bytes(), name


def test_empty_corpus_and_overlong_lines_end_in_a_one_line_error(tmp_path, capsys):
    empty = str(tmp_path / "empty" / "train")
    write_pair(empty, "en", "fr", [], [])
    rc = prepare_main(
        ["--trainpref", empty, "--destdir", str(tmp_path / "out"), "--vocab-size", "50", "--workers", "1"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "RuntimeError" not in err
    (err,) = [line for line in err.splitlines() if "error" in line]  # one line (besides progress bars)
    assert "no text to train sentencepiece on: every line of " in err and "empty/train.en-fr.en" in err
    long_prefix = str(tmp_path / "long" / "train")
    words = " ".join(f"w{i:05d}" for i in range(800))  # 5,599 bytes: over sentencepiece's 4,192
    write_pair(long_prefix, "en", "fr", [words] * 4, [words] * 4)
    with pytest.raises(
        PrepareError,
        match=r"every line of .*long/train\.en-fr\.en .* is longer than sentencepiece's limit of 4192 bytes",
    ):
        quick_prepare(long_prefix, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_chunked_reading_matches_whole_file_reading(tmp_path, chunk):
    """BOM, CRLF, empty lines, invalid UTF-8 and a missing last newline, read in spans of
    ``chunk`` lines: the same lines, line numbers and bad-line reports as the whole file."""
    stem = str(tmp_path / "train.en-fr")
    with open(stem + ".en", "wb") as f:
        f.write(b"\xef\xbb\xbfone two\r\nthree\n\nfour\xff five\nsix seven\n")
    with open(stem + ".fr", "wb") as f:
        f.write(b"un deux\ntrois\nvide\nquatre cinq\nsix sept")
    files = textio.locate(str(tmp_path / "train"), "en", "fr")
    whole_bad, span_bad = BadLines(True), BadLines(True)
    whole = textio.read_split(files, whole_bad)
    n, spans = textio.split_spans(files, 0, None, chunk)
    parts = [textio.read_split(files, span_bad, s) for s in spans]
    assert n == whole.lines_read == 5 and len(spans) == -(-5 // chunk)
    assert [x for p in parts for x in p.src] == whole.src == ["one two", "three", "six seven"]
    assert [x for p in parts for x in p.tgt] == whole.tgt == ["un deux", "trois", "six sept"]
    assert np.concatenate([p.lineno for p in parts]).tolist() == whole.lineno.tolist() == [1, 2, 5]
    assert (
        span_bad.dropped("en-fr")
        == whole_bad.dropped("en-fr")
        == {"empty or whitespace-only line": 1, "invalid UTF-8": 1}
    )
    assert textio.index_lines(stem + ".en")[0] == len(textio.read_lines(stem + ".en")[0])
    for data, lines in ((b"", 0), (b"\n", 0), (b"\n\n", 2), (b"a", 1), (b"a\n", 1), (b"\xef\xbb\xbf\n", 0)):
        write_lines_raw = tmp_path / "x.txt"
        write_lines_raw.write_bytes(data)
        assert textio.index_lines(str(write_lines_raw))[0] == len(textio.read_lines(str(write_lines_raw))[0]) == lines


def test_streamed_dataset_is_what_fairseqs_builder_writes(tmp_path):
    rng = np.random.default_rng(0)
    items = [rng.integers(0, 70000, size=rng.integers(0, 6)) for _ in range(23)]
    ref = str(tmp_path / "ref")
    builder = indexed_dataset.MMapIndexedDatasetBuilder(
        indexed_dataset.data_file_path(ref), dtype=indexed_dataset.best_fitting_int_dtype(70000)
    )
    import torch

    for item in items:
        builder.add_item(torch.tensor(item))
    builder.finalize(indexed_dataset.index_file_path(ref))
    cuts = [0, 5, 5, 17, 23]  # an empty chunk in the middle

    def chunks():
        for a, b in zip(cuts[:-1], cuts[1:]):
            part = items[a:b]
            yield (
                (np.concatenate(part) if part else np.zeros(0, dtype=np.int64)),
                np.array([len(x) for x in part], dtype=np.int64),
            )

    out = str(tmp_path / "out")
    assert binarize.write_stream(out, chunks, 70000) == 23
    for path in (indexed_dataset.data_file_path, indexed_dataset.index_file_path):
        assert open(path(out), "rb").read() == open(path(ref), "rb").read()


def test_slices_cover_every_line_once():
    assert [Slice(k, 3).lines(10) for k in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert Slice.parse("2/5") == Slice(2, 5) and str(Slice(2, 5)) == "2/5"
    for bad in ("3/3", "1", "-1/2", "a/b"):
        with pytest.raises(PrepareError, match="--slice must be K/N"):
            Slice.parse(bad)


def test_fit_on_a_sample_then_apply(tmp_path):
    """--sample-size bounds what sentencepiece and the aligner are fitted on; the dictionary still
    counts, and apply still prepares, every pair."""
    from fairseq_weam.prepare.fit import fit
    from fairseq_weam.prepare.options import PrepareOptions

    prefix, _ = synthetic_raw(str(tmp_path), pairs=PAIRS, n=240)
    model = tmp_path / "model"
    model.mkdir()
    manifest = fit(
        PrepareOptions(out=str(model), trainpref=prefix, sample_size=50, vocab_size=100, valid_size=10, workers=1),
        str(model),
    )
    assert {p: e["sample"] for p, e in manifest["fit"].items()} == {"xx-yy": 50, "xx-zz": 50}
    # xx is sampled in both pairs: at most 100 + 50 + 50 distinct sentences (the whole corpus: 960)
    assert 0 < manifest["sentencepiece"]["sentences"] <= 200
    assert sorted(n for n in os.listdir(model) if n.startswith("align.")) == [
        "align.xx-yy.bwd",
        "align.xx-yy.fwd",
        "align.xx-zz.bwd",
        "align.xx-zz.fwd",
    ]
    summary = apply(ApplyOptions(model=str(model), trainpref=prefix, out=str(tmp_path / "shard")))
    assert {p: e["kept"] for p, e in summary["pairs"].items()} == {
        p: {"train": 230, "valid": 10} for p in ("xx-yy", "xx-zz")
    }
    assert summary["pairs"]["xx-yy"]["coverage"]["src"] > 0.5  # the fitted tables align unseen pairs too
