"""scripts/gpu_check.sh on a machine without CUDA: one clear line, exit status 2, nothing run."""

import os
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "gpu_check.sh")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: run scripts/gpu_check.sh itself")
def test_without_cuda_one_line_and_exit_2(tmp_path):
    out = tmp_path / "gpu_check"
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(["bash", SCRIPT, str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("gpu_check: no CUDA GPU") and "nothing was run" in lines[0]
    assert not out.exists()  # no step ran, nothing was written


def test_a_missing_interpreter_is_named(tmp_path):
    env = dict(os.environ, PYTHON=str(tmp_path / "no-python"))
    proc = subprocess.run(["bash", SCRIPT, str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).splitlines()
    assert lines == [
        f"gpu_check: {tmp_path / 'no-python'} cannot import torch; set PYTHON to the project's interpreter"
    ]
