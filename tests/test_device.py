"""--device / --fp16 / --bf16: the choice rule with CUDA mocked, bfloat16 encoding on CPU against
float32, the commands' one-line errors, and (where a GPU is present) the CUDA paths for real."""

import os
import shutil

import numpy as np
import pytest
import torch
from eval_fixtures import shared_pretrained

from fairseq_weam.cli.checks import UsageError
from fairseq_weam.core import device
from fairseq_weam.evaluation import bucc, retrieval, xnli
from fairseq_weam.evaluation.embeddings import SentenceEncoder

SENTS = ["gz bnmugu ac", "fnrik aitma bmize kt bjgrr ac gz", "ac", ""]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("gpu", [False, True])
def test_resolve_with_cuda_mocked(monkeypatch, gpu):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    default = "cuda" if gpu else "cpu"
    assert device.resolve() == (torch.device(default), torch.float32)
    assert device.resolve("cpu", bf16=True) == (torch.device("cpu"), torch.bfloat16)
    assert device.fairseq_train_flags(*device.resolve("cpu")) == ["--cpu"]
    if gpu:
        assert device.resolve(fp16=True) == (torch.device("cuda"), torch.float16)
        assert device.fairseq_train_flags(*device.resolve(fp16=True)) == ["--fp16"]
        assert device.fairseq_train_flags(*device.resolve()) == []
    else:
        with pytest.raises(ValueError, match="--device cuda: no CUDA device"):
            device.resolve("cuda")
        with pytest.raises(ValueError, match="--fp16 needs --device cuda"):
            device.resolve(fp16=True)
    with pytest.raises(ValueError, match="exclude"):
        device.resolve("cpu", fp16=True, bf16=True)
    with pytest.raises(ValueError, match="TPU"):
        device.fairseq_train_flags(torch.device("cpu"), torch.bfloat16)


def test_finetune_command_carries_the_device_flags(monkeypatch, tmp_path):
    data, _, _, ckpt = shared_pretrained()
    (tmp_path / "input0").mkdir()
    shutil.copyfile(os.path.join(data, "dict.txt"), tmp_path / "input0" / "dict.txt")
    d = str(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cmd = xnli.finetune_command(ckpt, d, "/tmp/x", device_flags=device.fairseq_train_flags(*device.resolve(fp16=True)))
    assert "--fp16" in cmd and "--cpu" not in cmd
    assert "--cpu" in xnli.finetune_command(ckpt, d, "/tmp/x", device_flags=["--cpu"])


def test_bf16_encoding_on_cpu_is_close_to_float32():
    data, _, _, ckpt = shared_pretrained()
    fp32 = SentenceEncoder.from_checkpoint(ckpt, data).encode(SENTS, "mean", "last")
    enc = SentenceEncoder.from_checkpoint(ckpt, data, device="cpu", dtype=torch.bfloat16)
    assert next(enc.model.parameters()).dtype == torch.bfloat16
    bf16 = enc.encode(SENTS, "mean", "last")
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, fp32)  # it did run in bfloat16
    cos = (bf16 * fp32).sum(1) / np.linalg.norm(bf16, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cos.min() > 0.99


def test_cli_device_errors_are_one_line(monkeypatch, capsys):
    from fairseq_weam.cli import bucc as bucc_cli
    from fairseq_weam.cli import retrieval as cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data, heldout, _, ckpt = shared_pretrained()
    assert cli.main(["--checkpoint", ckpt, "--data", data, "--heldout", heldout, "--device", "cuda"]) == 2
    assert capsys.readouterr().err.strip() == (
        "fairseq-weam-retrieval: error: --device cuda: no CUDA device is visible "
        "(torch.cuda.is_available() is False); use --device cpu"
    )
    assert cli.main(["--checkpoint", ckpt, "--data", data, "--heldout", heldout, "--fp16"]) == 2
    assert "--fp16 needs --device cuda" in capsys.readouterr().err
    text = os.path.join(heldout, "en-aa.en")
    with pytest.raises(UsageError, match="not allowed with"):  # argparse: mutually exclusive
        bucc_cli.get_parser().parse_args(["--checkpoint", ckpt, "--src", text, "--tgt", text, "--fp16", "--bf16"])


@needs_cuda
@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-4), (torch.float16, 2e-2)])
def test_cuda_encoding_matches_cpu(dtype, atol):
    data, _, _, ckpt = shared_pretrained()
    cpu = SentenceEncoder.from_checkpoint(ckpt, data).encode(SENTS, "mean", "last")
    gpu = SentenceEncoder.from_checkpoint(ckpt, data, device="cuda", dtype=dtype).encode(SENTS, "mean", "last")
    np.testing.assert_allclose(gpu, cpu, atol=atol * np.abs(cpu).max())


@needs_cuda
def test_cuda_scoring_and_mining_match_cpu():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 32)) + 0.3
    y = np.concatenate([x[:200] + 0.5 * rng.normal(size=(200, 32)), rng.normal(size=(150, 32)) + 0.3])
    on_gpu, on_cpu = retrieval.retrieval_accuracy(x, y[:300], device="cuda"), retrieval.retrieval_accuracy(x, y[:300])
    for method in retrieval.METHODS:
        assert on_gpu[method] == pytest.approx(on_cpu[method])
    cpu = bucc.mine(x, y, 4, batch_size=64)
    gpu = bucc.mine(x, y, 4, batch_size=64, device="cuda")
    assert [(i, j) for i, j, _ in gpu] == [(i, j) for i, j, _ in cpu]
