"""End to end: real fairseq-preprocess --align-suffix, real fairseq-train --user-dir fairseq_weam."""

import os

import pytest
from e2e import USER_DIR, fairseq_train, train_inner
from synthetic_corpus import build_raw, preprocess


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("weam_e2e")
    build_raw(root / "raw", n_train=400, n_valid=40)
    preprocess(root / "raw", root / "bin")
    return root / "bin"


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    save = tmp_path_factory.mktemp("ckpt")
    proc, records = fairseq_train(data_dir, save, max_update=60)
    return save, proc, records


def test_loss_goes_down_and_both_losses_are_logged(trained):
    save, proc, records = trained
    inner = train_inner(records)
    assert len(inner) >= 10
    for rec in inner:
        for key in ("loss", "ml_loss", "xl_loss", "ml_acc", "xl_acc"):
            assert key in rec, key
    first, last = float(inner[0]["loss"]), float(inner[-1]["loss"])
    assert last < first - 1.0, (first, last)
    assert float(inner[-1]["xl_loss"]) < float(inner[0]["xl_loss"])
    valid = [r for r in records if r["_tag"] == "valid"]
    assert valid and "valid_xl_loss" in valid[-1]
    assert os.path.exists(save / "checkpoint_last.pt") and os.path.exists(save / "checkpoint_best.pt")


def test_resume_from_checkpoint_last(trained, data_dir):
    save, _, _ = trained
    proc, records = fairseq_train(data_dir, save, max_update=80)
    log = proc.output
    assert "Loaded checkpoint" in log and "@ 60 updates" in log
    updates = [int(r["num_updates"]) for r in train_inner(records)]
    assert updates and min(updates) > 60 and max(updates) == 80


def test_from_pretrained_feature_extraction(trained, data_dir):
    from fairseq.models.roberta import RobertaModel

    save, _, _ = trained
    roberta = RobertaModel.from_pretrained(
        str(save),
        checkpoint_file="checkpoint_best.pt",
        data_name_or_path=str(data_dir),
        user_dir=USER_DIR,
        bpe="sentencepiece",
        sentencepiece_model=str(data_dir.parent / "raw" / "spm.model"),
    )
    roberta.eval()
    assert roberta.task.__class__.__name__ == "WeamTask"
    sentence = open(data_dir.parent / "raw" / "valid.xx").readline().replace(" ", "").replace("\u2581", " ").strip()
    tokens = roberta.encode(sentence)
    d = roberta.task.source_dictionary
    assert tokens[0] == d.bos() and tokens[-1] == d.eos() and d.unk() not in tokens.tolist()
    feats = roberta.extract_features(tokens)
    assert feats.shape == (1, len(tokens), 64)


def test_tlm_with_lambda_zero_and_no_alignments(data_dir, tmp_path):
    os_align = [p for p in os.listdir(data_dir) if ".align." in p]
    assert os_align  # the same data, alignments simply not read
    proc, records = fairseq_train(data_dir, tmp_path, "--bitext-objective", "tlm", "--xl-lambda", "0", max_update=10)
    inner = train_inner(records)
    assert inner and all(float(r["xl_share"]) == 0.0 for r in inner)
    assert "align" not in "".join(line for line in proc.output.splitlines() if "loaded" in line and "examples" in line)


def test_restore_from_a_fairseq_masked_lm_checkpoint(data_dir, tmp_path):
    """Continue pre-training a fairseq RoBERTa (masked_lm) checkpoint with WEAM."""
    import subprocess
    import sys

    mono = tmp_path / "mono"
    raw = data_dir.parent / "raw"
    subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "fairseq-preprocess"),
            "--only-source",
            "--source-lang",
            "xx",
            "--trainpref",
            str(raw / "train"),
            "--validpref",
            str(raw / "valid"),
            "--srcdict",
            str(data_dir / "dict.txt"),
            "--destdir",
            str(mono),
            "--workers",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    os.replace(mono / "dict.xx.txt", mono / "dict.txt")
    for split in ("train", "valid"):
        for ext in ("bin", "idx"):
            os.replace(mono / f"{split}.xx-None.xx.{ext}", mono / f"{split}.{ext}")
    mlm_dir = tmp_path / "mlm"
    fairseq_train(mono, mlm_dir, "--disable-validation", task="masked_lm", criterion="masked_lm", max_update=5)

    weam_dir = tmp_path / "weam"
    proc, records = fairseq_train(
        data_dir,
        weam_dir,
        "--restore-file",
        str(mlm_dir / "checkpoint_last.pt"),
        "--reset-optimizer",
        "--reset-dataloader",
        "--reset-meters",
        "--reset-lr-scheduler",
        max_update=10,
    )
    log = proc.output
    assert f"Loaded checkpoint {mlm_dir / 'checkpoint_last.pt'}" in log
    assert train_inner(records)
