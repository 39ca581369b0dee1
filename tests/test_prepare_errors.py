"""Bad input: a clear error naming file, line (and link), or with --skip-bad-lines a count in the
summary; and the guarantee that an interrupted run leaves nothing that looks finished."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from prepare_fixtures import quick_prepare, synthetic_raw, write_pair

from fairseq_weam.core.errors import OutputDirError
from fairseq_weam.prepare import binarize
from fairseq_weam.prepare.errors import PrepareError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = [
    "the cat sat down",
    "a dog ran off",
    "the bird sang well",
    "one fish swam by",
    "the cow ate grass",
    "a bee flew away",
    "the fox hid here",
    "an owl woke up",
]
TGT = [
    "le chat assis bas",
    "un chien court loin",
    "le oiseau chante bien",
    "un poisson nage la",
    "la vache mange herbe",
    "une abeille vole loin",
    "le renard cache ici",
    "un hibou reveille haut",
]
ALIGN = ["0-0 1-1 2-2 3-3"] * len(SRC)


def raw(tmp_path, src=SRC, tgt=TGT, align=None, joint=False):
    prefix = str(tmp_path / "raw" / "train")
    write_pair(prefix, "en", "fr", src, tgt, align, joint=joint)
    return prefix


def run(prefix, tmp_path, **kw):
    kw.setdefault("valid_size", 1)
    kw.setdefault("vocab_size", 60)
    return quick_prepare(prefix, str(tmp_path / "out"), **kw)


def replace(lines, k, value):
    lines = list(lines)
    lines[k] = value
    return lines


def test_mismatched_line_counts_name_both_files(tmp_path):
    prefix = raw(tmp_path, tgt=TGT[:-1])
    with pytest.raises(
        PrepareError, match=r"line counts differ: .*train\.en-fr\.en has 8 lines but .*train\.en-fr\.fr has 7 lines"
    ):
        run(prefix, tmp_path)
    # not skippable: no line of either file can be trusted
    with pytest.raises(PrepareError, match="line counts differ"):
        run(prefix, tmp_path, skip_bad_lines=True)
    assert not os.path.exists(tmp_path / "out")


def test_alignment_file_line_count(tmp_path):
    prefix = raw(tmp_path, align=ALIGN[:5])
    with pytest.raises(PrepareError, match=r"train\.en-fr\.align has 5 lines"):
        run(prefix, tmp_path, aligner="pharaoh")


@pytest.mark.parametrize(
    "tgt,message",
    [
        (replace(TGT, 2, "   "), r"train\.en-fr\.fr:3: empty or whitespace-only line: fr side"),
        (replace(TGT, 4, ""), r"train\.en-fr\.fr:5: empty or whitespace-only line"),
    ],
)
def test_empty_lines(tmp_path, tgt, message):
    with pytest.raises(PrepareError, match=message):
        run(raw(tmp_path, tgt=tgt), tmp_path)


def test_invalid_utf8_names_file_and_line(tmp_path):
    prefix = raw(tmp_path)
    path = prefix + ".en-fr.en"
    data = open(path, "rb").read().split(b"\n")
    data[5] = b"the caf\xe9 is closed"  # latin-1, not UTF-8
    open(path, "wb").write(b"\n".join(data))
    with pytest.raises(PrepareError, match=r"train\.en-fr\.en:6: invalid UTF-8: invalid UTF-8 at byte 7"):
        run(prefix, tmp_path)


def test_joint_file_without_separator(tmp_path):
    prefix = str(tmp_path / "raw" / "train")
    write_pair(prefix, "en", "fr", SRC, TGT, joint=True)
    lines = open(prefix + ".en-fr", encoding="utf-8").read().split("\n")
    lines[3] = "no separator on this line"
    open(prefix + ".en-fr", "w", encoding="utf-8").write("\n".join(lines))
    with pytest.raises(PrepareError, match=r"train\.en-fr:4: malformed line: expected one '\|\|\|'"):
        run(prefix, tmp_path)


def test_too_long_for_the_model(tmp_path):
    long_src = replace(SRC, 6, " ".join(f"w{i}x" for i in range(70)))
    with pytest.raises(PrepareError, match=r"train\.en-fr\.en:7: too long for the model: .*> --max-positions 64"):
        run(raw(tmp_path, src=long_src), tmp_path, max_positions=64)


@pytest.mark.parametrize(
    "align,message",
    [
        (replace(ALIGN, 1, "0-0 1x2"), r"train\.en-fr\.align:2: malformed alignment: malformed alignment link '1x2'"),
        (
            replace(ALIGN, 3, "0-0 9-1"),
            r"train\.en-fr\.align:4: alignment link out of range: alignment link 9-1 out of range for a pair of 4 "
            r"source and 4 target",
        ),
        (replace(ALIGN, 0, "0-7"), r"train\.en-fr\.align:1: alignment link out of range: alignment link 0-7"),
    ],
)
def test_bad_alignment_links_name_file_line_and_link(tmp_path, align, message):
    with pytest.raises(PrepareError, match=message):
        run(raw(tmp_path, align=align), tmp_path, aligner="pharaoh")


def test_word_count_changed_by_pretokenization_with_imported_links(tmp_path):
    prefix = raw(tmp_path, tgt=replace(TGT, 2, "le鸟 chante bien"), align=replace(ALIGN, 2, "0-0 1-1 2-2"))
    assert run(prefix, tmp_path, aligner="pharaoh")["pairs"]["en-fr"]["kept"]["train"] == 7  # split_cjk off: fine
    with pytest.raises(
        PrepareError, match=r"train\.en-fr\.fr:3: word count changed by tokenization: 3 words in the input, 4 after"
    ):
        run(prefix, tmp_path, aligner="pharaoh", split_cjk=True, overwrite=True)


def test_skip_bad_lines_counts_every_reason(tmp_path):
    src = replace(SRC, 6, " ".join(f"w{i}x" for i in range(70)))
    tgt = replace(TGT, 2, " ")
    align = replace(replace(ALIGN, 1, "0-0 1x2"), 3, "5-0")
    prefix = raw(tmp_path, src=src, tgt=tgt, align=align)
    path = prefix + ".en-fr.en"
    data = open(path, "rb").read().split(b"\n")
    data[5] = b"the caf\xe9 is closed"
    open(path, "wb").write(b"\n".join(data))
    summary = run(prefix, tmp_path, aligner="pharaoh", skip_bad_lines=True, max_positions=64)
    e = summary["pairs"]["en-fr"]
    assert e["dropped"] == {
        "alignment link out of range": 1,
        "empty or whitespace-only line": 1,
        "invalid UTF-8": 1,
        "malformed alignment": 1,
        "too long for the model": 1,
    }
    assert e["kept"] == {"train": 2, "valid": 1} and e["lines_read"]["train"] == 8
    assert json.load(open(tmp_path / "out" / "summary.json"))["pairs"]["en-fr"]["dropped"] == e["dropped"]


def test_existing_output_refused_then_overwritten(tmp_path):
    prefix = raw(tmp_path)
    run(prefix, tmp_path)
    with pytest.raises(OutputDirError, match=r"out already exists; pass --overwrite"):
        run(prefix, tmp_path)
    with pytest.raises(OutputDirError, match="inside the output directory"):
        quick_prepare(prefix, str(tmp_path / "raw"), overwrite=True)
    assert os.path.exists(prefix + ".en-fr.en")
    summary = run(prefix, tmp_path, overwrite=True, valid_size=2, valid_max_share=0.5)
    assert summary["pairs"]["en-fr"]["kept"]["valid"] == 2


def test_interrupted_run_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    prefix = raw(tmp_path)
    first = run(prefix, tmp_path)
    before = open(tmp_path / "out" / "summary.json").read()

    calls = []

    def interrupted(*args, **kw):
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(binarize, "write_stream", interrupted)
    for overwrite, out in ((False, "fresh"), (True, "out")):
        with pytest.raises(KeyboardInterrupt):
            quick_prepare(prefix, str(tmp_path / out), overwrite=overwrite, valid_size=1, vocab_size=60)
    assert len(calls) == 2
    assert not os.path.exists(tmp_path / "fresh")
    assert open(tmp_path / "out" / "summary.json").read() == before  # the finished output is intact
    assert first["pairs"]["en-fr"]["kept"]["train"] == 7
    assert sorted(os.listdir(tmp_path)) == ["out", "raw"]  # no partial directory left behind


def test_killed_process_leaves_only_a_hidden_partial_directory(tmp_path):
    prefix, _ = synthetic_raw(str(tmp_path), n=3000)
    out = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fairseq_weam.cli.prepare",
            "--trainpref",
            prefix,
            "--destdir",
            str(out),
            "--vocab-size",
            "100",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while not [p for p in os.listdir(tmp_path) if p.startswith(".data.partial-")]:
            assert proc.poll() is None, "prepare finished before it could be interrupted"
            assert time.time() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".data.partial-")]
