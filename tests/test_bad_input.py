"""Every class of bad input, on every console script that takes such an input (issue 22): exit
status 2, one ``PROG: error:`` line naming the flag or the file, no traceback, nothing written and
an existing output left byte-identical. The commands run in-process through their ``main(argv)``
(each check runs before a model is loaded: the checkpoints here are a few bytes of nothing), and
``fairseq-train --task weam`` in a subprocess, where each check must fail before the first update.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
from e2e import REPO, TEST_MODEL_ARGS, USER_DIR, train_command, train_env
from synthetic_corpus import build_raw, preprocess

from fairseq_weam.cli import (
    align_eval,
    bli,
    bucc,
    build_corpus,
    export_hf,
    import_hf,
    objective_stats,
    prepare,
    qa,
    retrieval,
    silver_lexicon,
    sweep,
    xnli,
)
from fairseq_weam.core import checks
from fairseq_weam.train_runner import run_train

# command -> (prog, main, argv with {placeholders}); placeholders are paths made by `workspace`.
COMMANDS = {
    "retrieval": (
        "fairseq-weam-retrieval",
        retrieval.main,
        ["--checkpoint", "{ck}", "--data", "{data}", "--src", "{txt}", "--tgt", "{txt2}"],
    ),
    "bucc": (
        "fairseq-weam-bucc",
        bucc.main,
        ["--checkpoint", "{ck}", "--data", "{data}", "--src", "{pool}", "--tgt", "{pool2}", "--threshold", "1"],
    ),
    "bli": ("fairseq-weam-bli", bli.main, ["--checkpoint", "{ck}", "--data", "{data}", "--lexicon", "{lexicon}"]),
    "align-eval": (
        "fairseq-weam-align-eval",
        align_eval.main,
        ["--checkpoint", "{ck}", "--data", "{data}", "--src", "{txt}", "--tgt", "{txt2}", "--gold", "{gold}"],
    ),
    "lexicon": ("fairseq-weam-lexicon", silver_lexicon.main, ["--corpus", "{corpus}", "--out", "{out}"]),
    "corpus": ("fairseq-weam-corpus", build_corpus.main, ["{out}", "--locale-dir", "{locale}", "--langs", "de"]),
    "prepare": ("fairseq-weam-prepare", prepare.main, ["--trainpref", "{trainpref}", "--destdir", "{out}"]),
    "prepare fit": (
        "fairseq-weam-prepare fit",
        prepare.main,
        ["fit", "--trainpref", "{trainpref}", "--destdir", "{out}"],
    ),
    "prepare apply": (
        "fairseq-weam-prepare apply",
        prepare.main,
        ["apply", "--model", "{data}", "--trainpref", "{trainpref}", "--destdir", "{out}"],
    ),
    "xnli prepare": (
        "fairseq-weam-xnli",
        xnli.main,
        ["prepare", "--pretrain-data", "{data}", "--mnli-train", "{tsv}", "--xnli-dev", "{tsv2}", "--out", "{out}"],
    ),
    "xnli finetune": (
        "fairseq-weam-xnli",
        xnli.main,
        ["finetune", "--checkpoint", "{ck}", "--data", "{data}", "--save-dir", "{out}"],
    ),
    "xnli evaluate": ("fairseq-weam-xnli", xnli.main, ["evaluate", "--checkpoint", "{ck}", "--data", "{data}"]),
    "sweep": (
        "fairseq-weam-sweep",
        sweep.main,
        ["--data", "{data}", "--heldout", "{heldout}", "--out", "{out}", "--dry-run"],
    ),
    "objective-stats": ("fairseq-weam-objective-stats", objective_stats.main, ["{data}"]),
    "qa run": (
        "fairseq-weam-qa",
        qa.main,
        ["run", "--hf-model", "{hf}", "--train", "{json}", "--eval", "{json2}", "--out", "{out}"],
    ),
    "qa score": ("fairseq-weam-qa", qa.main, ["score", "--eval", "{json}", "--predictions", "{json2}"]),
    "export-hf": ("fairseq-weam-export-hf", export_hf.main, ["{ck}", "{out}", "--data", "{data}"]),
    "import-hf": ("fairseq-weam-import-hf", import_hf.main, ["{hf}", "{out}"]),
}


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


@pytest.fixture
def ws(tmp_path):
    """Good inputs for every placeholder: ``ws[name]`` is a path."""
    t = str(tmp_path)
    paths = {
        "ck": _write(f"{t}/in/ck.pt", b"not really a checkpoint"),
        "data": t + "/in/data",
        "txt": _write(f"{t}/in/x.en", "a house\nthe sea\n"),
        "txt2": _write(f"{t}/in/x.de", "ein Haus\ndas Meer\n"),
        "pool": _write(f"{t}/in/pool.de", "de-1\tein Haus\n"),
        "pool2": _write(f"{t}/in/pool.en", "en-1\ta house\n"),
        "gold": _write(f"{t}/in/gold", "0-0 1-1\n0-0 1-1\n"),
        "lexicon": _write(f"{t}/in/en-de.txt", "house Haus\n"),
        "corpus": t + "/in/corpus",
        "heldout": t + "/in/corpus/heldout",
        "locale": t + "/in/locale",
        "trainpref": t + "/in/raw/train",
        "tsv": _write(f"{t}/in/mnli.tsv", "index\tsentence1\tsentence2\tgold_label\n"),
        "tsv2": _write(f"{t}/in/xnli.tsv", "language\tgold_label\tsentence1\tsentence2\n"),
        "json": _write(f"{t}/in/train.json", '{"data": []}\n'),
        "json2": _write(f"{t}/in/eval.json", '{"data": []}\n'),
        "hf": t + "/in/hf",
        "out": t + "/out",
    }
    _write(f"{paths['data']}/dict.txt", "a 1\n")
    _write(f"{paths['data']}/spm.model", b"spm")
    for side, text in (("en", "a house\nthe sea\n"), ("de", "ein Haus\ndas Meer\n")):
        _write(f"{paths['heldout']}/en-de.{side}", text)
        _write(f"{paths['corpus']}/train.en-de.{side}", text)
        _write(f"{paths['trainpref']}.en-de.{side}", text)
    os.makedirs(paths["locale"])
    _write(f"{paths['hf']}/config.json", "{}\n")
    paths["root"] = t
    return paths


def argv_of(command, ws, **override):
    values = {**ws, **override}
    return [a.format(**values) for a in COMMANDS[command][2]]


def snapshot(root):
    """Every file under ``root`` with its bytes (and every directory)."""
    out = {}
    for base, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.join(base, d)] = "dir"
        for f in files:
            with open(os.path.join(base, f), "rb") as fh:
                out[os.path.join(base, f)] = fh.read()
    return out


def run_bad(command, argv, capsys, root):
    """Run the command; return its one error line. Checks: exit status 2, no traceback, one line,
    nothing written or changed under ``root``."""
    prog, main, _ = COMMANDS[command]
    before = snapshot(root)
    capsys.readouterr()
    status = main(argv)
    err = capsys.readouterr().err
    # tqdm progress bars (stderr, while a command works) are not part of the error report.
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    assert status == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert snapshot(root) == before, "files were written or changed"
    return lines[0]


# --- numbers out of range ------------------------------------------------------------------------

NUMBERS = [
    ("retrieval", "--k", "0", "must be an integer >= 1"),
    ("retrieval", "--k", "-3", "must be an integer >= 1"),
    ("retrieval", "--score-batch-size", "0", ">= 1"),
    ("retrieval", "--batch-size", "-1", ">= 1"),
    ("retrieval", "--max-sentences", "0", ">= 1"),
    ("retrieval", "--min-heldout", "-1", ">= 0"),
    ("retrieval", "--layer", "deepest", "expected middle, last or an integer"),
    ("bucc", "--threshold", "nan", "must be a finite number"),
    ("bucc", "--threshold", "inf", "must be a finite number"),
    ("bucc", "--k", "-4", ">= 1"),
    ("bli", "--k", "0", ">= 1"),
    ("bli", "--max-occurrences", "0", ">= 1"),
    ("align-eval", "--batch-size", "0", ">= 1"),
    ("align-eval", "--layer", "1,x", "comma-separated list"),
    ("lexicon", "--min-count", "-3", ">= 1"),
    ("lexicon", "--min-share", "1.5", "in [0, 1]"),
    ("lexicon", "--max-pairs", "-1", ">= 0"),
    ("corpus", "--heldout-max-share", "2", "in [0, 1]"),
    ("corpus", "--max-words", "0", ">= 1"),
    ("corpus", "--heldout-size", "-5", ">= 0"),
    ("prepare", "--vocab-size", "0", ">= 2"),
    ("prepare", "--valid-max-share", "0", "in (0, 1]"),
    ("prepare", "--character-coverage", "1.5", "in (0, 1]"),
    ("prepare", "--spm-sampling-alpha", "-1", ">= 0"),
    ("prepare", "--max-positions", "3", ">= 6"),
    ("prepare", "--workers", "0", ">= 1"),
    ("prepare", "--align-iterations", "nan", "must be an integer"),
    ("prepare fit", "--sample-size", "-5", ">= 0"),
    ("prepare apply", "--workers", "-1", ">= 1"),
    ("prepare apply", "--chunk-lines", "0", ">= 1"),
    ("xnli prepare", "--max-train", "0", ">= 1"),
    ("xnli finetune", "--lr", "0", "> 0"),
    ("xnli finetune", "--warmup-ratio", "1", "in [0, 1)"),
    ("xnli finetune", "--max-update", "-1", ">= 1"),
    ("xnli evaluate", "--batch-size", "0", ">= 1"),
    ("sweep", "--alphas", "1,-1", ">= 0"),
    ("sweep", "--alphas", "nan", "finite"),
    ("sweep", "--k", "0", ">= 1"),
    ("objective-stats", "--batch-size", "0", ">= 1"),
    ("objective-stats", "--epochs", "0", ">= 1"),
    ("objective-stats", "--num-workers", "-2", ">= 0"),
    ("qa run", "--epochs", "0", ">= 1"),
    ("qa run", "--lr", "-0.00001", "> 0"),
    ("qa run", "--doc-stride", "0", ">= 1"),
    ("qa run", "--weight-decay", "nan", "finite"),
]


@pytest.mark.parametrize("command,flag,value,expected", NUMBERS, ids=[f"{c} {f} {v}" for c, f, v, _ in NUMBERS])
def test_a_number_out_of_range_is_refused(command, flag, value, expected, ws, capsys):
    line = run_bad(command, argv_of(command, ws) + [flag, value], capsys, ws["root"])
    assert f"argument {flag}: " in line and expected in line, line


# --- input files: missing, a directory, not UTF-8 --------------------------------------------------

# (command, placeholder or extra flag, how the file is read) for every text input of every command.
TEXT_INPUTS = [
    ("retrieval", "txt", "--src"),
    ("retrieval", "txt2", "--tgt"),
    ("retrieval", "heldout-file", "--heldout"),
    ("bucc", "pool", "--src"),
    ("bucc", "+--gold", "--gold"),
    ("bucc", "+--threshold-from", "--threshold-from"),
    ("bli", "lexicon", "--lexicon"),
    ("bli", "+--text", "--text"),
    ("align-eval", "txt", "--src"),
    ("align-eval", "gold", "--gold"),
    ("lexicon", "heldout-file", "--corpus"),
    ("lexicon", "train-file", "--corpus"),
    ("xnli prepare", "tsv", "--mnli-train"),
    ("xnli prepare", "tsv2", "--xnli-dev"),
    ("xnli prepare", "tsv2-dir", "--xnli-dev"),
    ("qa run", "json", "--train"),
    ("qa run", "json2", "--eval"),
    ("qa score", "json2", "--predictions"),
    ("export-hf", "+--check-text", "--check-text"),
    ("prepare", "+--dictionary", "--dictionary"),
]

ENCODINGS = {
    "latin-1": (b"a house\ncaf\xe9 au lait\n", ":2: not UTF-8 (byte 0xe9 at column 4; latin-1"),
    "utf-16": ("a house\ncafé\n".encode("utf-16"), ":1: UTF-16 text"),
    "utf-16-no-bom": ("a house\ncafé\n".encode("utf-16-le"), ":1: not UTF-8 text: NUL bytes (UTF-16 text?)"),
    "binary": (b"\x7fELF\x02\x01\x01\x00\x00\x00\n\x00\x00", ":1: not UTF-8 text: NUL bytes (binary data?)"),
}


def _place(command, slot, ws, path_content):
    """argv with the input at ``slot`` replaced by a file of ``path_content`` (bytes, or None: a
    missing file); returns (argv, path of the bad file)."""
    root = ws["root"]
    bad = f"{root}/in/bad/en-xx.xx"
    if slot in ("heldout-file", "train-file"):  # a file inside a directory the command lists
        name = "heldout/en-de.de" if slot == "heldout-file" else "train.en-de.de"
        bad = f"{ws['corpus']}/{name}"
        _write(bad, path_content)
        if command == "retrieval":
            return ["--checkpoint", ws["ck"], "--data", ws["data"], "--heldout", ws["heldout"]], bad
        return argv_of(command, ws), bad
    if slot == "tsv2-dir":
        bad = f"{root}/in/xtreme/dev-de.tsv"
        _write(bad, path_content)
        return argv_of(command, ws, tsv2=os.path.dirname(bad)), bad
    if path_content is not None:
        _write(bad, path_content)
    if slot.startswith("+"):
        flag = slot[1:]
        argv = argv_of(command, ws)
        extra = [flag, bad]
        if flag == "--threshold-from":  # instead of --threshold
            argv, extra = argv[: argv.index("--threshold")], [flag, ws["pool"], ws["pool2"], bad]
        if flag == "--dictionary":
            extra += ["--spm-model", ws["ck"]]
        return argv + extra, bad
    return argv_of(command, ws, **{slot: bad}), bad


# Files a command finds by listing a directory cannot be missing: the directory cases are below.
GIVEN_INPUTS = [case for case in TEXT_INPUTS if case[1] not in ("heldout-file", "train-file", "tsv2-dir")]


@pytest.mark.parametrize("command,slot,flag", GIVEN_INPUTS, ids=[f"{c} {f} {s}" for c, s, f in GIVEN_INPUTS])
def test_a_missing_input_file_is_named(command, slot, flag, ws, capsys):
    argv, bad = _place(command, slot, ws, None)
    line = run_bad(command, argv, capsys, ws["root"])
    assert f"{bad}: no such file" in line and flag in line, line


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("command,slot,flag", TEXT_INPUTS, ids=[f"{c} {f} {s}" for c, s, f in TEXT_INPUTS])
def test_text_that_is_not_utf8_is_named_with_its_line(command, slot, flag, encoding, ws, capsys):
    content, expected = ENCODINGS[encoding]
    argv, bad = _place(command, slot, ws, content)
    line = run_bad(command, argv, capsys, ws["root"])
    assert f"{bad}{expected}" in line and flag in line, line


@pytest.mark.parametrize(
    "command,placeholder,flag",
    [("retrieval", "data", "--data"), ("sweep", "data", "--data"), ("sweep", "heldout", "--heldout")]
    + [("objective-stats", "data", "data"), ("lexicon", "corpus", "--corpus"), ("import-hf", "hf", "hf_dir")],
)
def test_a_missing_input_directory_is_named(command, placeholder, flag, ws, capsys):
    missing = ws["root"] + "/in/nowhere"
    line = run_bad(command, argv_of(command, ws, **{placeholder: missing}), capsys, ws["root"])
    assert f"argument {flag}: {missing}: no such directory" in line, line


def test_a_directory_given_for_a_file_is_named(ws, capsys):
    line = run_bad("bucc", argv_of("bucc", ws, pool=ws["data"]), capsys, ws["root"])
    assert f"argument --src: {ws['data']}: is a directory, expected a file" in line


def test_the_utf8_check_reads_in_chunks_and_finds_the_line(tmp_path, monkeypatch):
    """A bad byte far into a file, past many read chunks (some of which end inside a two-byte
    character), is reported at its own line and column."""
    monkeypatch.setattr(checks, "CHUNK", 7)
    path = _write(f"{tmp_path}/f", "é\n" * 9 + "abc\n" + "xyz")
    with open(path, "ab") as f:
        f.write(b"\xe9\n")
    with pytest.raises(checks.InputFileError, match=r"/f:11: not UTF-8 \(byte 0xe9 at column 4"):
        checks.check_utf8(path)
    _write(path, "é\n" * 20)
    checks.check_utf8(path)  # split characters are fine


# --- outputs -------------------------------------------------------------------------------------

# (command, placeholder or extra flag) of every output path.
OUTPUTS = [
    ("retrieval", "+--json"),
    ("retrieval", "+--tatoeba-predictions"),
    ("bucc", "+--json"),
    ("bucc", "+--predictions"),
    ("bli", "+--json"),
    ("align-eval", "+--json"),
    ("align-eval", "+--output-alignments"),
    ("lexicon", "out"),
    ("corpus", "out"),
    ("prepare", "out"),
    ("prepare fit", "out"),
    ("prepare apply", "out"),
    ("xnli prepare", "out"),
    ("xnli finetune", "out"),
    ("xnli evaluate", "+--json"),
    ("xnli evaluate", "+--predictions"),
    ("sweep", "out"),
    ("objective-stats", "+--json"),
    ("qa run", "out"),
    ("export-hf", "out"),
    ("import-hf", "out"),
]


@pytest.mark.parametrize("command,slot", OUTPUTS, ids=[f"{c} {s}" for c, s in OUTPUTS])
def test_an_output_under_a_regular_file_is_refused(command, slot, ws, capsys):
    blocker = _write(f"{ws['root']}/in/afile", "I am a file\n")
    target = blocker + "/sub/out"
    if slot.startswith("+"):
        argv = argv_of(command, ws) + [slot[1:], target]
    else:
        argv = argv_of(command, ws, **{slot: target})
    line = run_bad(command, argv, capsys, ws["root"])
    assert f"{target}: cannot be created, {blocker} is a file, not a directory" in line, line


DIRECTORY_OUTPUTS = ["lexicon", "corpus", "prepare", "prepare fit", "prepare apply", "xnli prepare"]
DIRECTORY_OUTPUTS += ["export-hf", "import-hf"]


@pytest.mark.parametrize("command", DIRECTORY_OUTPUTS)
def test_an_existing_output_directory_is_refused_without_overwrite(command, ws, capsys):
    _write(f"{ws['out']}/result.txt", "the previous run's result\n")
    line = run_bad(command, argv_of(command, ws), capsys, ws["root"])
    assert f"{ws['out']} already exists; pass --overwrite to replace it" in line, line


def test_lexicon_keeps_the_old_output_when_a_rewrite_fails(ws, capsys, monkeypatch):
    """The half-written directory of issue 22: lexicon --overwrite stopping after the first pair
    used to leave the old directory with some files of the new run. Now the new run is built
    aside: the old directory stays byte-identical and no partial directory is left."""
    from fairseq_weam.evaluation import silver_lexicon as induce

    for side, text in (("en", "a house\nthe sea\n"), ("fr", "une maison\nla mer\n")):
        _write(f"{ws['heldout']}/en-fr.{side}", text)
    argv = argv_of("lexicon", ws) + ["--overwrite", "--min-count", "1", "--min-share", "0"]
    assert silver_lexicon.main(argv) == 0  # a first, complete run
    first = snapshot(ws["out"])
    assert sorted(os.path.basename(p) for p in first) == ["en-de.txt", "en-fr.txt"]

    real, calls = induce.induce_lexicon, []

    def fails_on_the_second_pair(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise checks.InputFileError("stand-in for a bad line in the second pair's corpus")
        return [("new", "entry")]

    monkeypatch.setattr(induce, "induce_lexicon", fails_on_the_second_pair)
    capsys.readouterr()
    assert silver_lexicon.main(argv) == 2
    assert "stand-in" in capsys.readouterr().err
    assert snapshot(ws["out"]) == first  # en-de.txt not replaced by the new run's
    assert sorted(os.listdir(os.path.dirname(ws["out"]))) == ["in", "out"]  # no .out.partial-* left
    monkeypatch.setattr(induce, "induce_lexicon", real)


def test_lexicon_latin1_corpus_with_overwrite_leaves_the_old_output(ws, capsys):
    """The exact case of issue 22: a latin-1 byte in one pair's corpus with --overwrite."""
    for side, text in (("en", "a house\nthe sea\n"), ("fr", "une maison\nla mer\n")):
        _write(f"{ws['heldout']}/en-fr.{side}", text)
    argv = argv_of("lexicon", ws) + ["--overwrite", "--min-count", "1", "--min-share", "0"]
    assert silver_lexicon.main(argv) == 0
    _write(f"{ws['heldout']}/en-fr.fr", b"une maison\nla mer \xe9\n")
    line = run_bad("lexicon", argv, capsys, ws["root"])
    assert f"{ws['heldout']}/en-fr.fr:2: not UTF-8" in line


def test_xnli_prepare_keeps_the_old_output_when_a_rewrite_fails(ws, capsys, monkeypatch):
    """`xnli prepare --overwrite` that fails after writing part of the new directory (here: the
    second binarization) leaves the old directory byte-identical and no partial directory."""
    from synthetic_corpus import train_spm

    from fairseq_weam.evaluation import xnli as nli
    from fairseq_weam.evaluation.xnli import data as nli_data

    train_spm(["a house", "the sea", "a red car", "the quiet library"] * 20, f"{ws['data']}/spm", vocab_size=20)
    _write(ws["tsv"], "sentence1\tsentence2\tgold_label\na house\tthe sea\tneutral\n")
    _write(ws["tsv2"], "language\tgold_label\tsentence1\tsentence2\nen\tneutral\ta house\tthe sea\n")
    _write(f"{ws['out']}/splits.json", "the previous run's result\n")

    def binarize_then_fail(raw_dir, splits, key, srcdict, dest):
        _write(f"{dest}/train.bin", b"half of a new output")
        raise nli.NliFormatError("stand-in for a failure while binarizing")

    monkeypatch.setattr(nli_data, "_binarize", binarize_then_fail)
    line = run_bad("xnli prepare", argv_of("xnli prepare", ws) + ["--overwrite"], capsys, ws["root"])
    assert "stand-in" in line
    assert sorted(os.listdir(os.path.dirname(ws["out"]))) == ["in", "out"]


def test_corpus_without_a_usable_catalog_fails_and_keeps_the_old_corpus(ws, capsys):
    """A catalog is found but none of its messages makes a pair: refused, instead of an empty
    corpus and exit status 0."""
    from test_gettext_corpus import write_catalog

    write_catalog(ws["locale"], "de", "app", {"OK": "OK", "File": "Datei"})  # too short to keep
    line = run_bad("corpus", argv_of("corpus", ws), capsys, ws["root"])
    assert f"{ws['locale']}: no usable catalog: 1 catalogs under LANG/LC_MESSAGES/*.mo for de" in line, line
    _write(f"{ws['out']}/summary.json", "{}\n")
    line = run_bad("corpus", argv_of("corpus", ws) + ["--overwrite"], capsys, ws["root"])
    assert "no usable catalog" in line


def test_sweep_with_no_heldout_pairs_fails_before_training(ws, capsys):
    empty = ws["root"] + "/in/empty"
    os.makedirs(empty)
    argv = [a for a in argv_of("sweep", ws, heldout=empty) if a != "--dry-run"]
    line = run_bad("sweep", argv, capsys, ws["root"])
    assert f"{empty}: no held-out pair" in line, line


# --- model directories and data files --------------------------------------------------------------


@pytest.fixture(scope="module")
def qa_model(tmp_path_factory):
    from qa_fixtures import make_model_dir

    path = str(tmp_path_factory.mktemp("qa") / "model")
    make_model_dir(path)
    return path


def _qa_copy(src, dst, edit):
    import shutil

    shutil.copytree(src, dst)
    edit(dst)
    return dst


def _bigger_config(path):
    with open(f"{path}/config.json") as f:
        cfg = json.load(f)
    cfg["hidden_size"] *= 2
    cfg["intermediate_size"] *= 2
    with open(f"{path}/config.json", "w") as f:
        json.dump(cfg, f)


def _pickled_only(path):
    os.replace(f"{path}/model.safetensors", f"{path}/pytorch_model.bin")


@pytest.mark.parametrize(
    "edit,expected",
    [
        (_bigger_config, "the weights do not match config.json: "),
        (_pickled_only, "pytorch_model.bin: weights stored as a pickle"),
    ],
    ids=["config-of-another-size", "pickle-only"],
)
def test_qa_refuses_a_model_directory_before_fine_tuning(qa_model, edit, expected, ws, capsys):
    model = _qa_copy(qa_model, ws["root"] + "/in/model", edit)
    line = run_bad("qa run", argv_of("qa run", ws, hf=model), capsys, ws["root"])
    assert expected in line, line


@pytest.fixture(scope="module")
def weam_data(tmp_path_factory):
    """A small prepared data dir (synthetic pairs), with a summary.json saying --max-positions 128."""
    root = tmp_path_factory.mktemp("weam")
    build_raw(root / "raw", n_train=120, n_valid=12)
    preprocess(root / "raw", root / "bin")
    with open(root / "bin" / "summary.json", "w") as f:
        json.dump({"options": {"max_positions": 128}}, f)
    return str(root / "bin")


def _copy_data(weam_data, root):
    import shutil

    dst = f"{root}/in/weam"
    shutil.copytree(weam_data, dst)
    return dst


@pytest.mark.parametrize(
    "name,cut,expected",
    [
        ("train.xx-yy.yy.bin", 100, "train.xx-yy.yy.bin: truncated (100 bytes; "),
        ("train.xx-yy.yy.bin", 0, "train.xx-yy.yy.bin: truncated (0 bytes; "),
        ("train.xx-yy.xx.idx", 30, "train.xx-yy.xx.idx: truncated (30 bytes; its header describes"),
        ("train.align.xx-yy.idx", 20, "train.align.xx-yy.idx: truncated (20 bytes, shorter than the 26-byte header"),
    ],
)
def test_a_truncated_data_file_is_named(weam_data, name, cut, expected, ws, capsys):
    data = _copy_data(weam_data, ws["root"])
    with open(f"{data}/{name}", "rb") as f:
        head = f.read(cut)
    _write(f"{data}/{name}", head)
    line = run_bad("objective-stats", [data, "--no-progress"], capsys, ws["root"])
    assert f"{data}/{expected}" in line, line


# --- logs ----------------------------------------------------------------------------------------


def test_a_training_log_is_written_line_by_line(tmp_path):
    """run_train's log (sweep train.log, xnli finetune.log, demo) has each line as soon as the
    child prints it, not when a block buffer fills."""
    log = tmp_path / "train.log"
    code = "import time; print('first line', flush=True); time.sleep(4); print('second')"
    thread = threading.Thread(target=run_train, args=([sys.executable, "-c", code], str(log)), daemon=True)
    thread.start()
    deadline = time.time() + 3
    seen = ""
    while time.time() < deadline and "first line" not in seen.splitlines():
        time.sleep(0.1)
        seen = log.read_text() if log.exists() else ""
    assert "first line" in seen.splitlines() and "second" not in seen.splitlines()
    thread.join(10)
    assert log.read_text().splitlines()[-1] == "second"


# --- fairseq-train --task weam: flags checked before the first update -----------------------------

# The task's checks in-process, through objective-stats (which builds the task as fairseq-train does).
TASK_CASES = [
    (["--mask-prob", "1.5"], "--mask-prob must be in [0, 1], got 1.5"),
    (
        ["--random-token-prob", "0.6", "--leave-unmasked-prob", "0.6"],
        "--leave-unmasked-prob 0.6 + --random-token-prob 0.6 must be at most 1 (shares of the masked tokens)",
    ),
    (["--sampling-alpha", "-1"], "--sampling-alpha must be a number >= 0, got -1.0"),
    (["--lang-caps", "xx-yy:abc"], "--lang-caps: 'xx-yy:abc' is not NAME:N or NAME:Ntok"),
    (["--lang-caps", "xx-zz:10"], "--lang-caps names unknown streams xx-zz; streams are xx-yy"),
    (
        ["--lang-pairs", "xx-zz"],
        "--lang-pairs names xx-zz, but {data} has no train.xx-zz.*.idx; pairs in the data: xx-yy",
    ),
    (["--mono-langs", "zz"], "--mono-langs names zz, but {data} has no train.zz-None.zz.idx"),
    (["--tokens-per-sample", "3"], "--tokens-per-sample must be an integer >= 6, got 3"),
    (
        ["--tokens-per-sample", "16"],
        "--tokens-per-sample 16 is shorter than {data} was prepared for (--max-positions 128, summary.json): "
        "{longer} training pairs are longer and would be skipped; re-prepare with --max-positions 16, or pass "
        "--skip-invalid-size-inputs-valid-test to skip them",
    ),
]


@pytest.mark.parametrize("extra,expected", TASK_CASES, ids=[" ".join(e) for e, _ in TASK_CASES])
def test_the_task_refuses_a_bad_flag(weam_data, extra, expected, ws, capsys):
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    # The pairs fairseq would skip: laid out as <s> x </s></s> y </s>, read with fairseq's own reader.
    src, tgt = (MMapIndexedDataset(f"{weam_data}/train.xx-yy.{x}") for x in ("xx", "yy"))
    longer = sum(int(a) + int(b) + 2 > 16 for a, b in zip(src.sizes, tgt.sizes))
    assert 0 < longer < len(src)
    line = run_bad("objective-stats", [weam_data, "--no-progress", *extra], capsys, ws["root"])
    assert line == "fairseq-weam-objective-stats: error: " + expected.format(data=weam_data, longer=longer)


def test_skipping_long_pairs_is_allowed_when_asked(weam_data, capsys):
    """--skip-invalid-size-inputs-valid-test is the documented way to accept the skipping."""
    argv = [weam_data, "--no-progress", "--epochs", "1", "--tokens-per-sample", "16"]
    assert objective_stats.main(argv + ["--skip-invalid-size-inputs-valid-test"]) == 0


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("xl_lambda", float("nan"), "--xl-lambda must be a finite number, got nan"),
        ("mono_weight", -1.0, "--mono-weight must be a number >= 0, got -1.0"),
        ("contrastive_weight", float("inf"), "--contrastive-weight must be a finite number, got inf"),
        ("contrastive_temperature", 0.0, "--contrastive-temperature must be a number > 0, got 0.0"),
        ("word_contrastive_temperature", -0.1, "--word-contrastive-temperature must be a number > 0"),
        ("vocab_chunk_size", -8, "--vocab-chunk-size must be an integer >= -1, got -8"),
    ],
)
def test_the_criterion_refuses_a_bad_weight(name, value, expected):
    from fairseq_weam.criterions.weam import WeamCriterionConfig, check_flags

    cfg = WeamCriterionConfig()
    check_flags(cfg)  # the defaults pass
    setattr(cfg, name, value)
    with pytest.raises(checks.FlagError, match=re.escape(expected)):
        check_flags(cfg)


# A few real fairseq-train runs: the same checks end the run with one line, before any update.
TRAIN_CASES = [
    (["--mask-prob", "1.5"], "--mask-prob must be in [0, 1], got 1.5"),  # the task's
    (["--xl-lambda", "nan"], "--xl-lambda must be a finite number, got nan"),  # the criterion's
    (
        ["--restore-file", "{root}/no/checkpoint.pt"],
        "--restore-file {root}/no/checkpoint.pt: no such file (fairseq would train from scratch); "
        "fix the path, or leave --restore-file out to start fresh or resume from --save-dir",
    ),
]


@pytest.mark.parametrize("extra,expected", TRAIN_CASES, ids=[" ".join(e) for e, _ in TRAIN_CASES])
def test_fairseq_train_refuses_a_bad_flag_before_the_first_update(weam_data, extra, expected, tmp_path):
    values = {"data": weam_data, "root": str(tmp_path)}
    save_dir = tmp_path / "checkpoints"
    cmd = train_command(
        weam_data,
        *TEST_MODEL_ARGS,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--batch-size",
        "8",
        "--max-update",
        "3",
        "--save-dir",
        str(save_dir),
        "--cpu",
        "--num-workers",
        "0",
        "--no-progress-bar",
        *[e.format(**values) for e in extra],
        user_dir=USER_DIR,
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=train_env(), cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "fairseq-train: error: " + expected.format(**values)
    assert "begin training epoch" not in proc.stdout + proc.stderr  # failed before any update
    assert not list(save_dir.glob("*.pt")) and not list(save_dir.glob("crash*"))


@pytest.mark.parametrize(
    "given,expected", [("-99", "--layer -99: out of range for this 3-layer model"), ("4", "--layer 4:")]
)
def test_a_layer_out_of_range_is_reported_as_given(given, expected):
    """--layer -99 on a 3-layer model used to be reported as 'layer -95'; the check runs right
    after the checkpoint is loaded (encoder_from_args), before any text is encoded."""
    from types import SimpleNamespace

    from fairseq_weam.core.checkpoints import EmbeddingError
    from fairseq_weam.evaluation.embeddings import SentenceEncoder

    model = SimpleNamespace(num_layers=3)
    assert SentenceEncoder.resolve_layer(model, "-1") == 3 and SentenceEncoder.resolve_layer(model, "-4") == 0
    with pytest.raises(EmbeddingError, match=re.escape(expected) + r".*\(0\.\.3, or -4\.\.-1 from the last\)"):
        SentenceEncoder.resolve_layer(model, given)
