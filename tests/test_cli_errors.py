"""Every command that loads a checkpoint answers the two mistakes a new user makes with one
``PROG: error:`` line and exit status 2: a checkpoint trained on another data directory (another
vocabulary) and a checkpoint file cut short (a few KB, or 100 KB). Anything unexpected keeps its
traceback (run_cli)."""

import json
import os
import shutil

import pytest
from eval_fixtures import shared_pretrained

from fairseq_weam.cli import align_eval, bli, bucc, export_hf, qa, retrieval, run_cli, xnli
from fairseq_weam.core.errors import WeamError


def _nli_dir(root, dict_path):
    """Just enough of an XNLI data directory for `xnli evaluate` to reach the checkpoint."""
    os.makedirs(os.path.join(root, "input0"), exist_ok=True)
    shutil.copyfile(dict_path, os.path.join(root, "input0", "dict.txt"))
    with open(os.path.join(root, "splits.json"), "w") as f:
        json.dump({"xnli_test_aa": {"source": "x", "lang": "aa", "n": 1, "labelled": True}}, f)
    return root


def _lexicon(path):
    with open(path, "w") as f:
        f.write("some words\nother words\n")
    return path


def _write_json(path):
    with open(path, "w") as f:
        f.write('{"data": []}\n')
    return path


def _gold(path):
    with open(path, "w") as f:
        f.write("0-0\n")
    return path


def _pool(path):
    with open(path, "w") as f:
        f.write("x-1\tsome words\nx-2\tother words\n")
    return path


# command -> (prog, main, argv builder(checkpoint, data, heldout, tmp))
COMMANDS = {
    "retrieval": (
        "fairseq-weam-retrieval",
        retrieval.main,
        lambda ck, data, heldout, tmp: ["--checkpoint", ck, "--data", data, "--heldout", heldout],
    ),
    "bucc": (
        "fairseq-weam-bucc",
        bucc.main,
        lambda ck, data, heldout, tmp: [
            "--checkpoint",
            ck,
            "--data",
            data,
            "--src",
            _pool(f"{tmp}/s.tsv"),
            "--tgt",
            _pool(f"{tmp}/t.tsv"),
            "--threshold",
            "1.0",
        ],
    ),
    "align-eval": (
        "fairseq-weam-align-eval",
        align_eval.main,
        lambda ck, data, heldout, tmp: [
            "--checkpoint",
            ck,
            "--data",
            data,
            "--src",
            f"{heldout}/en-aa.en",
            "--tgt",
            f"{heldout}/en-aa.aa",
            "--gold",
            _gold(f"{tmp}/gold"),
        ],
    ),
    "xnli evaluate": (
        "fairseq-weam-xnli",
        xnli.main,
        lambda ck, data, heldout, tmp: [
            "evaluate",
            "--checkpoint",
            ck,
            "--device",
            "cpu",
            "--data",
            _nli_dir(f"{tmp}/nli", f"{data}/dict.txt"),
        ],
    ),
    "bli": (
        "fairseq-weam-bli",
        bli.main,
        lambda ck, data, heldout, tmp: [
            "--checkpoint",
            ck,
            "--data",
            data,
            "--device",
            "cpu",
            "--lexicon",
            _lexicon(f"{tmp}/aa-bb.txt"),
        ],
    ),
    "export-hf": (
        "fairseq-weam-export-hf",
        export_hf.main,
        lambda ck, data, heldout, tmp: [ck, f"{tmp}/hf", "--data", data],
    ),
    "qa --checkpoint": (
        "fairseq-weam-qa",
        qa.main,
        lambda ck, data, heldout, tmp: [
            "run",
            "--checkpoint",
            ck,
            "--data",
            data,
            "--eval",
            _write_json(f"{tmp}/mlqa.json"),
            "--out",
            f"{tmp}/qa",
        ],
    ),
}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    data, heldout, _, ckpt = shared_pretrained()
    root = tmp_path_factory.mktemp("cli-errors")
    # Another data directory: the same files, 20 more dictionary types.
    other = str(root / "other-data")
    shutil.copytree(data, other)
    with open(os.path.join(other, "dict.txt"), "a") as f:
        f.writelines(f"extra{i} 1\n" for i in range(20))
    return {"data": data, "heldout": heldout, "ckpt": ckpt, "other": other}


def _error_line(capsys, prog):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    lines = [l for l in err.splitlines() if l.startswith(f"{prog}: error: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_checkpoint_of_another_vocabulary(pretrained, command, tmp_path, capsys):
    prog, main, argv = COMMANDS[command]
    data = pretrained["other"]
    # (xnli evaluate: the NLI directory's input0/dict.txt is the other one)
    status = main(argv(pretrained["ckpt"], data, pretrained["heldout"], str(tmp_path)))
    line = _error_line(capsys, prog)
    assert status == 2
    dict_path = f"{tmp_path}/nli/input0/dict.txt" if command == "xnli evaluate" else f"{data}/dict.txt"
    # 150 sentencepiece pieces - <unk> + 4 fairseq specials + <mask> = 154 rows; 20 more in the other dict.
    assert line.endswith(
        f"{pretrained['ckpt']}: the checkpoint's vocabulary (154 types) does not match "
        f"{dict_path} (174 types): give the data directory the checkpoint was trained on"
    ), line


@pytest.mark.parametrize("size", [4_000, 100_000])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_truncated_checkpoint(pretrained, command, size, tmp_path, capsys):
    prog, main, argv = COMMANDS[command]
    cut = str(tmp_path / "cut.pt")
    with open(pretrained["ckpt"], "rb") as f, open(cut, "wb") as g:
        g.write(f.read(size))
    status = main(argv(cut, pretrained["data"], pretrained["heldout"], str(tmp_path)))
    line = _error_line(capsys, prog)
    assert status == 2
    assert line.startswith(f"{prog}: error: {cut}: truncated or corrupted checkpoint ("), line


def test_run_cli_expected_error_is_one_line(capsys):
    def run(argv):
        raise WeamError(f"bad input {argv[0]}")

    assert run_cli("prog", run, ["x.txt"]) == 2
    assert capsys.readouterr().err == "prog: error: bad input x.txt\n"


def test_run_cli_keeps_the_traceback_of_a_crash():
    def run(argv):
        raise RuntimeError("CUDA error: an illegal memory access")

    with pytest.raises(RuntimeError, match="illegal memory access"):
        run_cli("prog", run, [])


def test_run_cli_status():
    assert run_cli("prog", lambda argv: None, []) == 0
    assert run_cli("prog", lambda argv: {"results": 1}, []) == 0
    assert run_cli("prog", lambda argv: 3, []) == 3


def test_every_console_script_goes_through_run_cli(monkeypatch):
    """Each setup.py console script is main(argv=None) returning run_cli(PROG, run, argv)."""
    import importlib
    import inspect
    import re

    setup = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")).read()
    scripts = re.findall(r'"(fairseq-weam-[a-z-]+) = (fairseq_weam\.cli\.\w+):main"', setup)
    assert len(scripts) >= 13
    for prog, module in scripts:
        mod = importlib.import_module(module)
        assert inspect.signature(mod.main).parameters["argv"].default is None, module
        calls = []
        monkeypatch.setattr(mod, "run_cli", lambda p, run, argv: calls.append((p, argv)) or 7, raising=False)
        assert mod.main(["x"]) == 7 and calls and calls[0][0].startswith(prog), (module, calls)


def _console(script, *argv):
    """Run ``script`` (Python source) as a console script would, in a fresh interpreter."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env, timeout=300)


def test_a_bug_in_a_command_keeps_its_traceback(tmp_path):
    """A plain ValueError is a bug, not a user mistake: exit 1 and the whole traceback."""
    script = (
        "import sys\n"
        "from fairseq_weam.cli import qa\n"
        "def describe_file(path):\n"
        "    raise ValueError('an index off by one in ' + path)\n"
        "qa.data.describe_file = describe_file\n"
        "sys.exit(qa.main())\n"
    )
    (tmp_path / "e.json").write_text("{}")
    (tmp_path / "p.json").write_text("{}")
    done = _console(script, "score", "--eval", str(tmp_path / "e.json"), "--predictions", str(tmp_path / "p.json"))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback (most recent call last)" in done.stderr
    assert "in describe_file" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1] == f"ValueError: an index off by one in {tmp_path}/e.json"
    assert "fairseq-weam-qa: error:" not in done.stderr


def test_a_bad_flag_is_one_line(tmp_path):
    """A user's mistake (here --epochs 0) is one ``PROG: error:`` line and exit 2, no traceback."""
    script = "import sys\nfrom fairseq_weam.cli import qa\nsys.exit(qa.main())\n"
    (tmp_path / "e.json").write_text("{}")
    argv = ["run", "--hf-model", str(tmp_path), "--eval", str(tmp_path / "e.json"), "--out", str(tmp_path / "o")]
    done = _console(script, *argv, "--epochs", "0")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [l for l in done.stderr.splitlines() if "error" in l.lower()]  # (fairseq logs INFO lines on import)
    assert errors == ["fairseq-weam-qa: error: argument --epochs: must be an integer >= 1, got 0"], done.stderr[-3000:]
