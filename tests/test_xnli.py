"""XNLI conversion on tiny GLUE-MNLI / XNLI-1.0 fixtures written here, and a real (short)
fine-tuning run with fairseq-train --task sentence_prediction, evaluated per language."""

import csv
import json
import os
import shlex
import sys

import numpy as np
import pytest
import torch
from eval_fixtures import shared_pretrained

from fairseq_weam.evaluation import xnli

MNLI_TRAIN_HEADER = [
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "label1",
    "gold_label",
]
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]
XNLI_HEADER = [
    "language",
    "gold_label",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "promptID",
    "pairID",
    "genre",
    "label1",
    "label2",
    "label3",
    "label4",
    "label5",
]


def nli_examples(sentences, rng):
    """entailment: the premise repeated; neutral: its first half; contradiction: another sentence."""
    out = []
    for k, s in enumerate(sentences):
        label = xnli.LABELS[k % 3]
        words = s.split()
        hyp = {
            "entailment": s,
            "neutral": " ".join(words[: max(1, len(words) // 2)]),
            "contradiction": sentences[(k + 1 + int(rng.integers(len(sentences) - 1))) % len(sentences)],
        }[label]
        out.append((s, hyp, label))
    return out


def write_mnli(path, examples, header):
    with open(path, "w") as f:
        f.write("\t".join(header) + "\n")
        for k, (s1, s2, label) in enumerate(examples):
            labels = [label] * (len(header) - 10)
            # The binary-parse columns hold parentheses and quotes, as in GLUE's files.
            f.write(
                "\t".join(
                    [str(k), str(k), f"{k}e", "fiction", f"( {s1} )", f'( "{s2} )', "(ROOT)", "(ROOT)", s1, s2, *labels]
                )
                + "\n"
            )


def write_xnli(path, by_lang):
    with open(path, "w") as f:
        f.write("\t".join(XNLI_HEADER) + "\n")
        for lang, examples in by_lang.items():
            for k, (s1, s2, label) in enumerate(examples):
                f.write(
                    "\t".join(
                        [
                            lang,
                            label,
                            "(",
                            "(",
                            "(",
                            "(",
                            s1,
                            s2,
                            str(k),
                            str(k),
                            "fiction",
                            label,
                            label,
                            label,
                            label,
                            label,
                        ]
                    )
                    + "\n"
                )


def write_xtreme(path, examples, with_label=True):
    """As XTREME's utils_preprocess.py writes them: csv.writer, tab-separated, no header."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        for _, s1, s2, label in examples:
            writer.writerow([s1, s2, label] if with_label else [s1, s2])


def test_xtreme_headerless_files_and_refusals(tmp_path):
    rows = [(None, 'he said "hi"', "he spoke", "entailment"), (None, "a b", "c", "contradiction")]
    write_xtreme(tmp_path / "dev-de.tsv", rows)
    assert '"he said ""hi"""' in (tmp_path / "dev-de.tsv").read_text()  # csv quoting, read back
    assert xnli.read_nli_tsv(str(tmp_path / "dev-de.tsv")) == [("de",) + r[1:] for r in rows]
    write_xtreme(tmp_path / "test-de.tsv", rows, with_label=False)
    assert xnli.read_nli_tsv(str(tmp_path / "test-de.tsv")) == [("de", r[1], r[2], None) for r in rows]
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "test-de.tsv").write_text("neutral\ncontradictory\n")
    assert [ex[3] for ex in xnli.read_sources([str(tmp_path)], "test", str(tmp_path / "labels"))] == [
        "neutral",
        "contradiction",
    ]
    (tmp_path / "labels" / "test-de.tsv").write_text("neutral\nmaybe\n")
    with pytest.raises(xnli.NliFormatError, match=r"labels/test-de.tsv:2: unknown label 'maybe'"):
        xnli.read_sources(str(tmp_path / "test-de.tsv"), "test", str(tmp_path / "labels"))
    (tmp_path / "dev-fr.tsv").write_text("a\tb\tneutral\nc\td\tmaybe\n")
    with pytest.raises(xnli.NliFormatError, match=r"dev-fr.tsv:2: unknown label 'maybe'"):
        xnli.read_nli_tsv(str(tmp_path / "dev-fr.tsv"))
    (tmp_path / "dev-fr.tsv").write_text("a\tb\tneutral\nc\td\tneutral\textra\n")
    with pytest.raises(xnli.NliFormatError, match=r"dev-fr.tsv:2: 4 columns"):
        xnli.read_nli_tsv(str(tmp_path / "dev-fr.tsv"))
    (tmp_path / "mine.tsv").write_text("a\tb\tneutral\n")  # headerless, but not named as XTREME's
    with pytest.raises(xnli.NliFormatError, match=r"mine.tsv: header .* not named as XTREME's"):
        xnli.read_nli_tsv(str(tmp_path / "mine.tsv"))
    (tmp_path / "mnli.tsv").write_text("sentence1\tsentence2\tgold_label\na\tb\t-\nc\td\tentailmnt\n")
    with pytest.raises(xnli.NliFormatError, match=r"mnli.tsv:3: unknown label 'entailmnt'"):
        xnli.read_nli_tsv(str(tmp_path / "mnli.tsv"))
    with pytest.raises(xnli.NliFormatError, match="no XTREME dev-XX.tsv"):
        xnli.read_sources([str(tmp_path / "labels")], "dev")
    # XNLI-MT's translate-train files carry their language in the name (so prepare refuses them
    # as a zero-shot training set).
    (tmp_path / "multinli.train.fr.tsv").write_text("premise\thypo\tlabel\na\tb\tcontradictory\n")
    assert xnli.read_nli_tsv(str(tmp_path / "multinli.train.fr.tsv")) == [("fr", "a", "b", "contradiction")]


def test_finetune_progress_is_streamed_and_logged(tmp_path):
    import io

    from fairseq_weam.train_runner import run_train

    out = io.StringIO()
    code = "print('2026 | INFO | train_inner | epoch 001: 10 / 90 loss=1.1'); print('noise'); raise SystemExit(3)"
    run = run_train([sys.executable, "-c", code], str(tmp_path / "log"), stream=out, check=False)
    assert run.returncode == 3
    assert out.getvalue() == "2026 | INFO | train_inner | epoch 001: 10 / 90 loss=1.1\n"
    log = (tmp_path / "log").read_text().splitlines()
    assert log[0] == f"# {sys.executable} -c {shlex.quote(code)}" and log[2] == "noise"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("xnli"))
    data, _, corpora, ckpt = shared_pretrained()
    rng = np.random.default_rng(0)
    en = corpora["aa"][0]
    files = {k: os.path.join(root, f"{k}.tsv") for k in ("train", "dev", "xdev", "xtest")}
    write_mnli(files["train"], nli_examples(en[:120], rng), MNLI_TRAIN_HEADER)
    write_mnli(files["dev"], nli_examples(en[120:150], rng), MNLI_DEV_HEADER)
    xdev = {"en": nli_examples(en[150:165], rng), "aa": nli_examples(corpora["aa"][1][:15], rng)}
    xtest = {
        "en": nli_examples(en[165:183], rng),
        "aa": nli_examples(corpora["aa"][1][15:33], rng),
        "bb": nli_examples(corpora["bb"][1][:12], rng),
    }
    write_xnli(files["xdev"], xdev)
    write_xnli(files["xtest"], xtest)
    return root, data, ckpt, files


def test_readers_parse_both_formats(setup):
    _, _, _, files = setup
    train = xnli.read_nli_tsv(files["train"])
    dev = xnli.read_nli_tsv(files["dev"])
    test = xnli.read_nli_tsv(files["xtest"])
    assert len(train) == 120 and len(dev) == 30
    assert train[0][0] is None and train[0][3] == "entailment" and train[1][3] == "neutral"
    # sentence1 (column 9), not the binary parse (column 5) that holds the stray quote.
    assert '"' not in train[1][2] and not train[0][1].startswith("(")
    groups = xnli.by_language(test)
    assert list(groups) == ["en", "aa", "bb"] and [len(v) for v in groups.values()] == [18, 18, 12]


def test_reader_skips_unlabelled_and_maps_xnli_mt(tmp_path):
    p = tmp_path / "mt.tsv"
    p.write_text("premise\thypo\tlabel\na b\tc\tcontradictory\nd\te\tneutral\nf\tg\t-\n")
    assert xnli.read_nli_tsv(str(p)) == [(None, "a b", "c", "contradiction"), (None, "d", "e", "neutral")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(xnli.NliFormatError, match="bad.tsv"):
        xnli.read_nli_tsv(str(bad))


def test_prepare_finetune_evaluate_end_to_end(setup):
    root, data, ckpt, files = setup
    out = os.path.join(root, "nli")
    table = xnli.prepare_data(
        out,
        os.path.join(data, "spm.model"),
        os.path.join(data, "dict.txt"),
        files["train"],
        files["dev"],
        files["xdev"],
        files["xtest"],
    )
    assert table["train"]["n"] == 120
    assert table["valid"]["n"] == 15 and table["valid"]["source"].endswith("xdev.tsv")  # XNLI en dev
    assert {s: t["n"] for s, t in table.items() if s.startswith("xnli_test")} == {
        "xnli_test_en": 18,
        "xnli_test_aa": 18,
        "xnli_test_bb": 12,
    }
    assert open(os.path.join(out, "label", "dict.txt")).read().split()[::2] == list(xnli.LABELS)
    # input0 uses the pre-training dictionary unchanged, so embedding rows line up.
    assert open(os.path.join(out, "input0", "dict.txt")).read() == open(os.path.join(data, "dict.txt")).read()

    save = os.path.join(root, "ft")
    best = xnli.finetune(
        ckpt,
        out,
        save,
        max_update=6,
        lr=1e-4,
        batch_size=16,
        extra_args=["--num-workers", "0", "--log-format", "simple"],
    )
    assert os.path.exists(best)
    # The encoder was restored from pre-training, not trained from scratch.
    pre = torch.load(ckpt, weights_only=False)["model"]
    ft = torch.load(best, weights_only=False)["model"]
    key = "encoder.sentence_encoder.embed_tokens.weight"
    assert (ft[key] - pre[key]).abs().max() < 0.05
    assert any(k.startswith(f"classification_heads.{xnli.HEAD}.") for k in ft)

    results = xnli.evaluate(best, out)
    assert {s: r["n"] for s, r in results.items()} == {
        "xnli_dev_en": 15,
        "xnli_dev_aa": 15,
        "xnli_test_en": 18,
        "xnli_test_aa": 18,
        "xnli_test_bb": 12,
    }
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results.values())
    text = xnli.format_table(results)
    assert text.splitlines()[0] == "| split | en | aa | bb | avg |"
    row = [c.strip() for c in text.splitlines()[3].split("|")[1:-1]]
    accs = [results[f"xnli_test_{l}"]["accuracy"] for l in ("en", "aa", "bb")]
    assert row[0] == "xnli_test" and float(row[-1]) == pytest.approx(100 * np.mean(accs), abs=0.051)

    # bfloat16 on CPU runs the same evaluation (a few of 18 answers may flip); on a GPU, float32
    # gives the CPU's answers.
    r = xnli.evaluate(best, out, splits=["xnli_test_aa"], device="cpu", dtype=torch.bfloat16)
    assert r["xnli_test_aa"]["n"] == 18
    assert abs(r["xnli_test_aa"]["accuracy"] - results["xnli_test_aa"]["accuracy"]) <= 3 / 18
    if torch.cuda.is_available():
        r = xnli.evaluate(best, out, device="cuda")
        assert {s: v["accuracy"] for s, v in r.items()} == {s: v["accuracy"] for s, v in results.items()}

    # The same examples in XTREME's layout (headerless dev-XX.tsv, test-XX.tsv without labels,
    # the labels apart) give the same accuracies; unlabelled test sets are predicted, not scored.
    xt, labels_dir = os.path.join(root, "xtreme_xnli"), os.path.join(root, "xtreme_labels")
    for d in (xt, labels_dir):
        os.makedirs(d, exist_ok=True)
    for kind in ("dev", "test"):
        for lang, examples in xnli.by_language(xnli.read_nli_tsv(files["x" + kind])).items():
            write_xtreme(os.path.join(xt, f"{kind}-{lang}.tsv"), examples, with_label=kind == "dev")
            if kind == "test":
                with open(os.path.join(labels_dir, f"test-{lang}.tsv"), "w") as f:
                    f.writelines(ex[3] + "\n" for ex in examples)
    spm_model, dict_path = os.path.join(data, "spm.model"), os.path.join(data, "dict.txt")
    unlabelled = xnli.prepare_data(
        os.path.join(root, "nli_xt"), spm_model, dict_path, files["train"], xnli_dev=[xt], xnli_test=[xt]
    )
    assert unlabelled["valid"]["n"] == 15 and not unlabelled["xnli_test_aa"]["labelled"]
    preds = os.path.join(root, "preds")
    r = xnli.evaluate(best, os.path.join(root, "nli_xt"), predictions_dir=preds)
    assert r["xnli_test_aa"]["accuracy"] is None and r["xnli_test_aa"]["n"] == 18
    assert r["xnli_dev_aa"]["accuracy"] == results["xnli_dev_aa"]["accuracy"]
    assert xnli.format_table(r).splitlines()[3].startswith("| xnli_test | - | - | - | - |")
    predicted = open(os.path.join(preds, "test-aa.tsv")).read().splitlines()
    gold = [ex[3] for ex in xnli.by_language(xnli.read_nli_tsv(files["xtest"]))["aa"]]
    # Predictions are in file order: their agreement with the gold is the accuracy.
    assert len(predicted) == 18 and np.mean([p == g for p, g in zip(predicted, gold)]) == pytest.approx(
        results["xnli_test_aa"]["accuracy"]
    )
    xnli.prepare_data(
        os.path.join(root, "nli_xt2"),
        spm_model,
        dict_path,
        files["train"],
        xnli_dev=[xt],
        xnli_test=[os.path.join(xt, "test-aa.tsv"), os.path.join(xt, "test-bb.tsv")],
        xnli_test_labels=labels_dir,
    )
    r = xnli.evaluate(best, os.path.join(root, "nli_xt2"), splits=["xnli_test_aa", "xnli_test_bb"])
    assert {s: v["accuracy"] for s, v in r.items()} == {s: results[s]["accuracy"] for s in r}


def test_cli_run_writes_json_and_table(setup, tmp_path):
    from fairseq_weam.cli import xnli as cli

    root, data, ckpt, files = setup
    out = tmp_path / "run"
    cli.run(
        [
            "run",
            "--checkpoint",
            ckpt,
            "--pretrain-data",
            data,
            "--mnli-train",
            files["train"],
            "--xnli-test",
            files["xtest"],
            "--mnli-dev",
            files["dev"],
            "--out",
            str(out),
            "--max-update",
            "3",
            "--batch-size",
            "16",
            "--",
            "--num-workers",
            "0",
        ]
    )
    result = json.loads((out / "xnli.json").read_text())
    assert set(result["results"]) == {"xnli_test_en", "xnli_test_aa", "xnli_test_bb"}
    assert (out / "xnli.md").read_text().startswith("| split | en | aa | bb | avg |")
