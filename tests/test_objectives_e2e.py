"""End to end: WEAM + monolingual MLM + translation-pair contrastive in one fairseq-train run,
over two unequal language pairs with temperature sampling and a cap."""

import pytest
from e2e import fairseq_train, train_inner
from synthetic_corpus import build_multi


@pytest.fixture(scope="module")
def multi_data(tmp_path_factory):
    _, data = build_multi(tmp_path_factory.mktemp("multi"))
    return data


def test_combined_objectives_all_decrease(multi_data, tmp_path):
    proc, records = fairseq_train(
        multi_data,
        tmp_path,
        "--mono-langs",
        "yy",
        "--sampling-alpha",
        "0.3",
        "--lang-caps",
        "xx-zz:40",
        "--contrastive-weight",
        "1",
        "--contrastive-temperature",
        "0.1",
        "--word-contrastive-weight",
        "0.5",
        "--tokens-per-sample",
        "128",
        "--no-save",
        max_update=60,
    )
    log = proc.output
    # The language-mix table: data share against sampling share per stream.
    assert "training streams (sampling alpha 0.3)" in log
    assert "xx-zz: capped to 40 of 60 examples" in log
    inner = train_inner(records)
    assert len(inner) >= 10
    first, last = inner[0], inner[-1]
    for key in ("loss", "ml_loss", "xl_loss", "mlm_loss", "ctr_loss", "wctr_loss"):
        assert float(last[key]) < float(first[key]), (key, first[key], last[key])
    for key in ("ml_loss_xx-yy", "ml_loss_xx-zz", "xl_acc_xx-zz", "mlm_loss_yy", "ctr_acc_xx-yy", "wctr_acc_xx-zz"):
        assert key in last, key
    assert float(last["ctr_acc"]) > float(first["ctr_acc"])
    # The logged loss is the documented weighted sum of the logged terms (each rounded to 3).
    total = sum(
        w * float(last[k])
        for k, w in (("ml_loss", 1), ("xl_loss", 1), ("mlm_loss", 1), ("ctr_loss", 1), ("wctr_loss", 0.5))
    )
    assert abs(float(last["loss"]) - total) < 0.005, (last["loss"], total)


@pytest.mark.parametrize("objective", ["tlm", "mlm"])
def test_baseline_bitext_objectives(multi_data, tmp_path, objective):
    proc, records = fairseq_train(
        multi_data,
        tmp_path,
        "--bitext-objective",
        objective,
        "--xl-lambda",
        "0",
        "--tokens-per-sample",
        "128",
        "--no-save",
        "--disable-validation",
        max_update=10,
    )
    inner = train_inner(records)
    assert inner and "ml_loss" in inner[-1]
    assert "xl_loss" not in inner[-1]  # no exchanged targets without alignments
    if objective == "mlm":
        # Each side of a pair is its own <s> x </s> example: shorter inputs than TLM's pairs.
        assert float(inner[-1]["wpb"]) / float(inner[-1]["bsz"]) < 15
