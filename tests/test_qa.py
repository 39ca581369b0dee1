"""Zero-shot QA on tiny offline stand-ins: SQuAD/MLQA/XQuAD files checked and named, windows and
answer spans mapped exactly, the device / precision choice, and fairseq-weam-qa end to end
(a real fine-tune of a random 2-layer encoder, qa.json, reuse and resume)."""

import json
import os
from unittest import mock

import pytest
import torch
from qa_fixtures import FACTS, ZH_FACTS, make_model_dir, make_tokenizer, squad_doc, write_json

from fairseq_weam.cli import qa as qa_cli
from fairseq_weam.core.device import choose_precision
from fairseq_weam.core.optional import load_transformers
from fairseq_weam.evaluation.qa import data as qa_data
from fairseq_weam.evaluation.qa import features, runner
from fairseq_weam.evaluation.qa import finetune as ft
from fairseq_weam.evaluation.qa.data import QAExample

SMALL = ["--max-seq-length", "64", "--doc-stride", "16", "--max-query-length", "16"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa_models")
    return {"mlm": make_model_dir(str(root / "mlm"), head="mlm"), "qa": make_model_dir(str(root / "qa"), head="qa")}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(str(tmp_path_factory.mktemp("qa_tok")))


# ---- files and names


@pytest.mark.parametrize(
    "name,bench,c,q,setting,scheme",
    [
        ("test-context-de-question-en.json", "mlqa", "de", "en", "G-XLT", "mlqa"),
        ("dev-context-zh-question-zh.json", "mlqa", "zh", "zh", "XLT", "mlqa"),
        ("xquad.th.json", "xquad", "th", "th", "XLT", "squad"),
        ("dev-v1.1.json", "squad", None, None, "-", "squad"),
    ],
)
def test_describe_file(name, bench, c, q, setting, scheme):
    info = qa_data.describe_file(os.path.join("some", "dir", name))
    assert (info.benchmark, info.context_lang, info.question_lang, info.setting, info.scheme) == (
        bench,
        c,
        q,
        setting,
        scheme,
    )


def test_read_squad_keeps_every_gold(tmp_path):
    doc = squad_doc(FACTS[:2])
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"].append({"text": "in paris", "answer_start": 12})
    exs = qa_data.read_squad(write_json(str(tmp_path / "xquad.en.json"), doc))
    assert [e.id for e in exs] == ["q0", "q1"]
    assert exs[0].answers == ["paris", "in paris"] and exs[0].answer_starts == [15, 12]
    assert exs[1].context == FACTS[1][0] and exs[1].question == FACTS[1][1]


@pytest.mark.parametrize(
    "mutate,training,message",
    [
        (lambda d: d.pop("data"), False, r"top level: expected \{\"data\""),
        (
            lambda d: d["data"][0]["paragraphs"][1]["qas"][0].pop("answers"),
            False,
            r"data\[0\]\.paragraphs\[1\]\.qas\[0\] \(id q1\): \"answers\" must be a non-empty list",
        ),
        (lambda d: d["data"][0]["paragraphs"][1]["qas"][0].update(id="q0"), False, r"\(id q0\): duplicate id"),
        (
            lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start=3),
            True,
            r"\(id q0\): answer 'paris' is not the context's text at answer_start 3",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"].append({"text": "x", "answer_start": 0}),
            True,
            r"\(id q0\): a training question needs exactly one answer, got 2",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][0].update(context=7),
            False,
            r"data\[0\]\.paragraphs\[0\]: expected \{\"context\": str",
        ),
    ],
)
def test_read_squad_refuses_bad_entries(tmp_path, mutate, training, message):
    doc = squad_doc(FACTS[:2])
    mutate(doc)
    path = write_json(str(tmp_path / "f.json"), doc)
    with pytest.raises(qa_data.QADataError, match=message) as e:
        qa_data.read_squad(path, training=training)
    assert str(e.value).startswith(path + ": ")


def test_read_squad_bad_json_names_line(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{"data": [\n  {"paragraphs": [}\n]}')
    with pytest.raises(qa_data.QADataError, match=r"f\.json: not valid JSON \(line 2 column"):
        qa_data.read_squad(str(path))


# ---- windows and spans


def _long_example(answer_at_end: bool):
    filler = " ".join(FACTS[k][0] for k in (0, 1, 3, 4))  # FACTS[2] would repeat the answer
    context = (filler + " carol has a red car .") if answer_at_end else ("carol has a red car . " + filler)
    start = context.index("red car")
    return QAExample("x", "what colour is the car of carol ?", context, ["red car"], [start])


@pytest.mark.parametrize("answer_at_end", [False, True])
def test_train_windows_label_the_answer_tokens_exactly(tokenizer, answer_at_end):
    ex = _long_example(answer_at_end)
    feats = features.train_features(tokenizer, [ex], max_seq_length=40, doc_stride=8, max_query_length=16)
    enc = features._encode(tokenizer, [ex], 40, 8, 16)
    n = len(feats["input_ids"])
    assert n >= 3 and all(len(ids) <= 40 for ids in feats["input_ids"])
    labelled = [i for i in range(n) if feats["start_positions"][i] > 0]
    # The answer is wholly inside the first (last) window only, or also in its overlapping neighbour.
    assert (labelled[0] == 0) if not answer_at_end else (labelled[-1] == n - 1)
    for i in range(n):
        s, e = feats["start_positions"][i], feats["end_positions"][i]
        offsets, seq = enc["offset_mapping"][i], enc.sequence_ids(i)
        if i not in labelled:
            assert (s, e) == (0, 0)
            continue
        assert seq[s] == 1 and seq[e] == 1 and s <= e
        # the first token covers the answer's first character, the last one its last character
        assert offsets[s][0] <= ex.answer_starts[0] < offsets[s][1]
        assert offsets[e][0] < ex.answer_starts[0] + len("red car") <= offsets[e][1]
        assert ex.context[offsets[s][0] : offsets[e][1]].strip() == "red car"


def test_batches_pad_to_the_longest_window():
    feats = {"input_ids": [[5, 6, 7], [8]], "token_type_ids": [[0, 0, 1], [1]]}
    ((rows, inputs),) = ft._batches(feats, [1, 0], batch_size=2, pad_id=1)
    assert rows == [1, 0]
    assert inputs["input_ids"].tolist() == [[8, 1, 1], [5, 6, 7]]
    assert inputs["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert inputs["token_type_ids"].tolist() == [[1, 0, 0], [0, 0, 1]]


def test_linear_schedule():
    assert [ft.linear_schedule(s, 2, 10) for s in (0, 1, 2, 6, 10, 11)] == [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    assert [ft.linear_schedule(s, 0, 4) for s in (0, 1, 4)] == [1.0, 0.75, 0.0]


def test_lengths_leaving_no_room_are_refused(tokenizer):
    with pytest.raises(ValueError, match="--doc-stride 40 must be smaller"):
        features.check_lengths(tokenizer, max_seq_length=64, doc_stride=40, max_query_length=20)  # room 64-20-4 = 40


def test_best_answers_on_crafted_logits():
    context = "alpha be gamma"
    ex = [QAExample("a", "q?", context, ["x"], [0]), QAExample("b", "q?", context, ["x"], [0])]
    offs = [None, (0, 5), (6, 8), (9, 14), None]  # <s>, alpha, be, gamma, </s>
    feats = {"example_index": [0, 1, 1], "offset_mapping": [offs, offs, [None, None, (6, 8), (9, 14), None]]}
    starts = [
        [50, 1, -5, -5, 0],  # the best start is <s>: not in the context, skipped
        [0, 1, -5, -5, 0],  # example b, window 1: best valid (1, 2) = 1 + 0.5 = 1.5
        [0, 9, 3, 0, 0],
    ]  # example b, window 2: token 1 is outside; (2, 2) = 3 + 0.5 wins
    ends = [[40, 0, 0.5, 5, 0], [9, 0, 0.5, 5, 0], [0, 0, 0.5, -1, 0]]
    out = features.best_answers(ex, feats, starts, ends, n_best=5, max_answer_length=2)
    # a: (1, 3) = 6 is 3 tokens long (> 2); then (1, 2) "alpha be" = 1.5 beats (1, 1) = 1, (2, 3) = 0
    assert out == {"a": "alpha be", "b": "be"}
    assert features.best_answers(ex, feats, starts, ends, n_best=5, max_answer_length=3)["a"] == "alpha be gamma"
    # no valid pair at all -> empty answer
    none = {"example_index": [0], "offset_mapping": [[None, None]]}
    assert features.best_answers(ex[:1], none, [[1, 2]], [[1, 2]]) == {"a": ""}


# ---- device and precision


def test_choose_precision_without_cuda():
    with mock.patch("torch.cuda.is_available", return_value=False):
        p = choose_precision()
        assert (p.device, p.autocast_dtype, p.grad_scaling, p.name) == (torch.device("cpu"), None, False, "fp32")
        p = choose_precision(bf16=True)
        assert (p.device.type, p.autocast_dtype, p.grad_scaling) == ("cpu", torch.bfloat16, False)
        with pytest.raises(ValueError, match="no CUDA device is visible"):
            choose_precision("cuda")
        with pytest.raises(ValueError, match="--fp16 needs --device cuda"):
            choose_precision(fp16=True)
        with pytest.raises(ValueError, match="exclude each other"):
            choose_precision(fp16=True, bf16=True)
        with pytest.raises(ValueError, match="expected cpu, cuda or cuda:N"):
            choose_precision("tpu")


def test_choose_precision_with_cuda():
    with (
        mock.patch("torch.cuda.is_available", return_value=True),
        mock.patch("torch.cuda.device_count", return_value=1),
        mock.patch("torch.cuda.is_bf16_supported", return_value=False),
    ):
        p = choose_precision()
        assert (p.device, p.autocast_dtype) == (torch.device("cuda"), None)
        p = choose_precision(fp16=True)
        assert (p.device.type, p.autocast_dtype, p.grad_scaling, p.name) == ("cuda", torch.float16, True, "fp16")
        assert choose_precision("cpu").device == torch.device("cpu")
        with pytest.raises(ValueError, match="only 1 CUDA device"):
            choose_precision("cuda:1")
        with pytest.raises(ValueError, match="does not support bfloat16"):
            choose_precision(bf16=True)


def test_bf16_autocast_on_cpu_runs_the_model(models):
    tok, model = ft.load_model(models["qa"])
    p = choose_precision("cpu", bf16=True)
    ids = torch.tensor([tok("where ?", "in paris")["input_ids"]])
    with p.autocast():
        out = model(input_ids=ids)
    assert out.start_logits.dtype == torch.bfloat16 and out.start_logits.shape == ids.shape


# ---- end to end


def _files(root):
    files = {
        "train": write_json(os.path.join(root, "squad", "train-v1.1.json"), squad_doc(FACTS)),
        "xlt": write_json(os.path.join(root, "mlqa", "test-context-en-question-en.json"), squad_doc(FACTS)),
        "gxlt": write_json(
            os.path.join(root, "mlqa", "test-context-zh-question-en.json"),
            squad_doc([(ZH_FACTS[0][0], "what is the capital of china ?", "北京")], "z"),
        ),
        "xquad": write_json(os.path.join(root, "xquad", "xquad.zh.json"), squad_doc(ZH_FACTS, "x")),
    }
    return files


def _run_args(model, files, out, *extra):
    return [
        "run",
        "--hf-model",
        model,
        "--train",
        files["train"],
        "--eval",
        files["xlt"],
        "--eval",
        files["gxlt"],
        "--eval",
        files["xquad"],
        "--out",
        out,
        "--device",
        "cpu",
        *SMALL,
        "--batch-size",
        "6",
        "--warmup-steps",
        "0",
        *extra,
    ]


def test_finetune_learns_the_spans(models, tmp_path):
    """60 updates overfit the six training questions: predicting them gives them back exactly,
    which needs labels and read-back spans to be the same characters (no off-by-one)."""
    files = _files(str(tmp_path))
    report = qa_cli.run(
        [
            "run",
            "--hf-model",
            models["mlm"],
            "--train",
            files["train"],
            "--eval",
            files["xlt"],
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            *SMALL,
            "--batch-size",
            "6",
            "--warmup-steps",
            "0",
            "--epochs",
            "60",
            "--lr",
            "3e-3",
        ]
    )
    res = report["results"]["test-context-en-question-en"]
    assert (res["exact_match"], res["f1"], res["n"]) == (100.0, 100.0, 6)
    with open(tmp_path / "out" / "predictions" / "test-context-en-question-en.json") as f:
        assert json.load(f) == {f"q{k}": answer for k, (_, _, answer) in enumerate(FACTS)}
    log = [json.loads(line) for line in open(tmp_path / "out" / "finetune" / "train_log.jsonl")]
    assert len(log) == 60 and log[-1]["updates"] == 60 and log[-1]["loss"] < log[0]["loss"] / 5


def test_run_writes_qa_json_and_reuses_finished_steps(models, tmp_path, capsys):
    files = _files(str(tmp_path))
    out = str(tmp_path / "out")
    report = qa_cli.run(_run_args(models["mlm"], files, out, "--epochs", "2"))
    with open(os.path.join(out, "qa.json")) as f:
        saved = json.load(f)
    assert saved["results"] == report["results"]
    assert list(saved["results"]) == ["test-context-en-question-en", "test-context-zh-question-en", "xquad.zh"]
    r = saved["results"]
    assert (
        r["test-context-zh-question-en"]["benchmark"],
        r["test-context-zh-question-en"]["setting"],
        r["test-context-zh-question-en"]["context_lang"],
        r["test-context-zh-question-en"]["question_lang"],
        r["test-context-zh-question-en"]["normalization"],
    ) == ("mlqa", "G-XLT", "zh", "en", "mlqa")
    assert (r["xquad.zh"]["benchmark"], r["xquad.zh"]["normalization"], r["xquad.zh"]["n"]) == ("xquad", "squad", 1)
    assert set(saved["averages"]) == {"mlqa_test_xlt", "mlqa_test_gxlt", "xquad"}
    assert saved["averages"]["mlqa_test_xlt"]["f1"] == r["test-context-en-question-en"]["f1"]
    assert "| **average MLQA test G-XLT** (1 file) |" in open(os.path.join(out, "qa.md")).read()
    assert saved["config"]["epochs"] == 2 and saved["config"]["device"] == "cpu"
    # each prediction file scores exactly as reported, through `fairseq-weam-qa score`
    pred = os.path.join(out, "predictions", "test-context-en-question-en.json")
    scored = qa_cli.run(["score", "--eval", files["xlt"], "--predictions", pred])
    assert (scored["exact_match"], scored["f1"]) == (
        r["test-context-en-question-en"]["exact_match"],
        r["test-context-en-question-en"]["f1"],
    )
    table = open(os.path.join(out, "qa.md")).read()
    assert "| test-context-zh-question-en | mlqa | zh | en | G-XLT | 1 |" in table
    assert table in capsys.readouterr().out

    # A second run reuses the fine-tune and every prediction: nothing is trained or predicted.
    with (
        mock.patch.object(runner, "finetune", side_effect=AssertionError("fine-tuned again")),
        mock.patch.object(runner, "predict", side_effect=AssertionError("predicted again")),
    ):
        again = qa_cli.run(_run_args(models["mlm"], files, out, "--epochs", "2"))
    assert again["results"] == report["results"]
    # A changed eval file is predicted again, the others are reused.
    write_json(files["xquad"], squad_doc(ZH_FACTS + [("中国的首都是北京。", "首都是哪里？", "北京")], "x"))
    with (
        mock.patch.object(runner, "finetune", side_effect=AssertionError("fine-tuned again")),
        mock.patch.object(runner, "predict", wraps=runner.predict) as predict,
    ):
        third = qa_cli.run(_run_args(models["mlm"], files, out, "--epochs", "2"))
    assert predict.call_count == 1 and third["results"]["xquad.zh"]["n"] == 2
    # Other fine-tuning settings for the same OUT are refused, naming the difference.
    assert qa_cli.main(_run_args(models["mlm"], files, out, "--epochs", "2", "--lr", "1e-4")) == 2
    assert "lr: 3e-05 -> 0.0001" in capsys.readouterr().err


def test_interrupted_finetune_resumes_to_the_same_model(models, tmp_path):
    """Without dropout the fine-tune is deterministic: crash in epoch 3 of 3, run again, and the
    model equals an uninterrupted fine-tune's."""
    tf = load_transformers()
    model_dir = str(tmp_path / "nodrop")
    cfg = tf.AutoConfig.from_pretrained(models["mlm"])
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    tf.AutoModelForMaskedLM.from_pretrained(models["mlm"], config=cfg).save_pretrained(model_dir)
    tf.AutoTokenizer.from_pretrained(models["mlm"]).save_pretrained(model_dir)
    examples = qa_data.read_squad(write_json(str(tmp_path / "train.json"), squad_doc(FACTS)), training=True)
    conf = ft.FinetuneConfig(epochs=3, lr=1e-3, batch_size=4, warmup_steps=1)
    window = ft.WindowConfig(max_seq_length=64, doc_stride=16, max_query_length=16)
    cpu = choose_precision("cpu")
    whole = ft.finetune(model_dir, examples, str(tmp_path / "whole"), conf, window, cpu)

    real_batches, calls = ft._batches, []

    def crash_in_third_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_batches(*a, **k)

    with mock.patch.object(ft, "_batches", crash_in_third_epoch), pytest.raises(KeyboardInterrupt):
        ft.finetune(model_dir, examples, str(tmp_path / "resumed"), conf, window, cpu)
    assert not os.path.exists(tmp_path / "resumed" / "model")
    resumed = ft.finetune(model_dir, examples, str(tmp_path / "resumed"), conf, window, cpu)
    log = [json.loads(line) for line in open(tmp_path / "resumed" / "train_log.jsonl")]
    assert [r["epoch"] for r in log] == [1, 2, 3] and [r["updates"] for r in log] == [2, 4, 6]
    a = tf.AutoModelForQuestionAnswering.from_pretrained(whole).state_dict()
    b = tf.AutoModelForQuestionAnswering.from_pretrained(resumed).state_dict()
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    before = tf.AutoModelForMaskedLM.from_pretrained(model_dir).state_dict()
    assert not torch.equal(
        before["roberta.encoder.layer.0.output.dense.weight"], a["roberta.encoder.layer.0.output.dense.weight"]
    )


def test_evaluate_without_train(models, tmp_path, capsys):
    files = _files(str(tmp_path))
    report = qa_cli.run(
        [
            "run",
            "--hf-model",
            models["qa"],
            "--eval",
            files["xquad"],
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
            *SMALL,
        ]
    )
    assert report["finetuned"] == os.path.abspath(models["qa"]) and report["results"]["xquad.zh"]["n"] == 1
    assert not os.path.exists(tmp_path / "o" / "finetune")
    # an encoder without a trained QA head needs --train
    assert (
        qa_cli.main(["run", "--hf-model", models["mlm"], "--eval", files["xquad"], "--out", str(tmp_path / "p")]) == 2
    )
    assert "has no trained question-answering head" in capsys.readouterr().err


def test_bad_eval_file_is_refused_before_finetuning(models, tmp_path, capsys):
    files = _files(str(tmp_path))
    doc = squad_doc(FACTS)
    doc["data"][0]["paragraphs"][2]["qas"][0]["answers"] = []
    write_json(files["gxlt"], doc)
    with mock.patch.object(runner, "finetune", side_effect=AssertionError("fine-tuned")):
        assert qa_cli.main(_run_args(models["mlm"], files, str(tmp_path / "out"))) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("fairseq-weam-qa: error: ")
    assert f'{files["gxlt"]}: data[0].paragraphs[2].qas[0] (id q2): "answers" must be a non-empty list' in err
    assert not os.path.exists(tmp_path / "out" / "qa.json")


def test_xquad_language_without_mlqa_rules_is_refused_with_forced_mlqa(models, tmp_path, capsys):
    path = write_json(str(tmp_path / "xquad.th.json"), squad_doc(FACTS[:1]))
    assert (
        qa_cli.main(
            [
                "run",
                "--hf-model",
                models["qa"],
                "--eval",
                path,
                "--out",
                str(tmp_path / "o"),
                "--normalization",
                "mlqa",
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    assert "xquad.th.json: MLQA's answer normalization has no rules for language 'th'" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["--fp16", "--bf16"])
def test_cuda_run(models, tmp_path, precision):
    if precision == "--bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("GPU without bfloat16")
    files = _files(str(tmp_path))
    report = qa_cli.run(
        _run_args(models["mlm"], files, str(tmp_path / "out"), "--device", "cuda", precision, "--epochs", "2")
    )
    assert report["config"]["device"] == "cuda" and report["config"]["precision"] == precision[2:]
    assert set(report["results"]) == {"test-context-en-question-en", "test-context-zh-question-en", "xquad.zh"}
    log = [json.loads(line) for line in open(tmp_path / "out" / "finetune" / "train_log.jsonl")]
    assert [r["device"] for r in log] == ["cuda", "cuda"] and all(r["loss"] == r["loss"] for r in log)  # no NaN


def _blank(doc, qas=None):
    """XTREME's test copies: each question's answers replaced by one blank answer."""
    for k, para in enumerate(doc["data"][0]["paragraphs"]):
        if qas is None or k in qas:
            para["qas"][0]["answers"] = [{"answer_start": 0, "text": ""}]
    return doc


def test_xtreme_blanked_file_is_predicted_not_scored(models, tmp_path, capsys):
    blank = write_json(str(tmp_path / "test-context-en-question-en.json"), _blank(squad_doc(FACTS)))
    xquad = write_json(str(tmp_path / "xquad.en.json"), squad_doc(FACTS))
    report = qa_cli.run(
        [
            "run",
            "--hf-model",
            models["qa"],
            "--eval",
            blank,
            "--eval",
            xquad,
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cpu",
            *SMALL,
        ]
    )
    r = report["results"]["test-context-en-question-en"]
    assert (r["scored"], r["exact_match"], r["f1"], r["n"], r["answered"]) == (False, None, None, 6, 6)
    assert set(report["averages"]) == {"xquad"}  # the blank MLQA file is in no average
    with open(tmp_path / "o" / "predictions" / "test-context-en-question-en.json") as f:
        assert sorted(json.load(f)) == [f"q{k}" for k in range(6)]
    captured = capsys.readouterr()
    assert "| test-context-en-question-en | mlqa | en | en | XLT | 6 | no gold | no gold |" in captured.out
    assert "every answer is blank" in captured.err
    assert (
        qa_cli.main(["score", "--eval", blank, "--predictions", str(tmp_path / "o" / "predictions" / "xquad.en.json")])
        == 2
    )


def test_partly_blank_file_is_refused(tmp_path):
    path = write_json(str(tmp_path / "xquad.en.json"), _blank(squad_doc(FACTS), qas={3}))
    with pytest.raises(
        qa_data.QADataError,
        match=r"data\[0\]\.paragraphs\[3\]\.qas\[0\] \(id q3\): no answer text, "
        r"while other questions have one \(1 of 6",
    ):
        qa_data.read_squad(path)


def test_score_command_on_crafted_predictions(tmp_path, capsys):
    doc = squad_doc(
        [("der Hund lief nach Berlin .", "wohin ?", "nach Berlin"), ("das Haus ist rot .", "welche Farbe ?", "rot")]
    )
    path = write_json(str(tmp_path / "test-context-de-question-en.json"), doc)
    preds = write_json(str(tmp_path / "p.json"), {"q0": "Berlin", "q1": "das rot"})
    out = qa_cli.run(["score", "--eval", path, "--predictions", preds])
    # q0: [berlin] vs [nach, berlin]: F1 2/3, EM 0; q1: "das" is a German article -> [rot]: EM 1
    assert (out["lang"], out["normalization"]) == ("de", "mlqa")
    assert out["exact_match"] == pytest.approx(50.0) and out["f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    squad = qa_cli.run(["score", "--eval", path, "--predictions", preds, "--normalization", "squad"])
    # SQuAD's rules keep "das": q1 [das, rot] vs [rot] -> F1 2/3
    assert squad["exact_match"] == 0.0 and squad["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3) / 2)
    bad = write_json(str(tmp_path / "bad.json"), {"q0": ["Berlin"]})
    assert qa_cli.main(["score", "--eval", path, "--predictions", bad]) == 2
    assert "bad.json: the answer of id q0 is list, expected a string" in capsys.readouterr().err


def test_featurize_in_chunks_equals_one_pass(tokenizer):
    examples = [QAExample(f"e{k}", q, c, [a], [c.index(a)]) for k, (c, q, a) in enumerate(FACTS * 2)]
    window = ft.WindowConfig(max_seq_length=24, doc_stride=4, max_query_length=10)
    whole = features.eval_features(tokenizer, examples, 24, 4, 10)
    chunked = ft.featurize(features.eval_features, tokenizer, examples, window, "t", chunk=5)
    assert len(whole["input_ids"]) > len(examples)  # some contexts need two windows
    assert [r.tolist() for r in chunked["input_ids"]] == whole["input_ids"]
    assert chunked["example_index"] == whole["example_index"] and chunked["offset_mapping"] == whole["offset_mapping"]
    train = ft.featurize(features.train_features, tokenizer, examples, window, "t", chunk=5)
    assert train["start_positions"] == features.train_features(tokenizer, examples, 24, 4, 10)["start_positions"]


def test_averages_keep_splits_apart_and_skip_unscored():
    def row(bench, split, setting, f1, scored=True):
        return {
            "benchmark": bench,
            "split": split,
            "setting": setting,
            "scored": scored,
            "exact_match": f1 / 2 if scored else None,
            "f1": f1 if scored else None,
        }

    results = {
        "a": row("mlqa", "test", "XLT", 60.0),
        "b": row("mlqa", "test", "XLT", 70.0),
        "c": row("mlqa", "dev", "XLT", 10.0),
        "d": row("mlqa", "test", "G-XLT", 40.0),
        "e": row("xquad", None, "XLT", 50.0),
        "f": row("xquad", None, "XLT", 0.0, scored=False),
        "g": row("squad", None, "-", 90.0),
    }
    avgs = runner.averages(results)
    assert avgs == {
        "mlqa_dev_xlt": {"files": 1, "exact_match": 5.0, "f1": 10.0},
        "mlqa_test_gxlt": {"files": 1, "exact_match": 20.0, "f1": 40.0},
        "mlqa_test_xlt": {"files": 2, "exact_match": 32.5, "f1": 65.0},
        "xquad": {"files": 1, "exact_match": 25.0, "f1": 50.0},
    }


def test_model_identity_lets_a_fresh_export_reuse_the_finetune(models, tmp_path):
    """The fairseq-checkpoint wrapper exports to a new temporary directory on every run; with the
    same ``model_identity`` the second run reuses the fine-tune and the predictions."""
    import shutil

    files = _files(str(tmp_path))
    out = str(tmp_path / "out")
    kw = dict(
        precision=choose_precision("cpu"),
        cfg=ft.FinetuneConfig(epochs=1, batch_size=6, warmup_steps=0),
        window=ft.WindowConfig(64, 16, 16),
        model_identity={"checkpoint": "/ckpt/checkpoint_last.pt", "sha256": "ab"},
    )
    first = runner.run_qa(
        shutil.copytree(models["mlm"], str(tmp_path / "export1")), files["train"], [files["xlt"]], out, **kw
    )
    with (
        mock.patch.object(runner, "finetune", side_effect=AssertionError("fine-tuned again")),
        mock.patch.object(runner, "predict", side_effect=AssertionError("predicted again")),
    ):
        second = runner.run_qa(
            shutil.copytree(models["mlm"], str(tmp_path / "export2")), files["train"], [files["xlt"]], out, **kw
        )
    assert second["results"] == first["results"] and second["model_identity"]["sha256"] == "ab"
    kw["model_identity"] = {"checkpoint": "/ckpt/checkpoint_last.pt", "sha256": "cd"}
    with pytest.raises(ValueError, match="sha256: 'ab' -> 'cd'"):
        runner.run_qa(str(tmp_path / "export2"), files["train"], [files["xlt"]], out, **kw)


def test_broken_torchaudio_is_hidden_from_transformers():
    """fairseq pulls torchaudio; PyPI's newest (2.11) fails to load on torch 2.13 (OSError), and
    transformers imports it whenever it is installed. A broken one must look absent."""
    import importlib
    import sys

    from fairseq_weam.core import optional as hf

    real_import = importlib.import_module

    def broken(name, *a, **k):
        if name == "torchaudio":
            raise OSError("Could not load this library: _torchaudio.abi3.so")
        return real_import(name, *a, **k)

    with mock.patch.dict(sys.modules), mock.patch.object(importlib.util, "find_spec", return_value=object()):
        sys.modules.pop("torchaudio", None)
        sys.modules["torchaudio.lib"] = object()  # a half-imported submodule is dropped too
        with mock.patch.object(importlib, "import_module", broken):
            assert hf.hide_broken_torchaudio() is True
        assert sys.modules["torchaudio"] is None and "torchaudio.lib" not in sys.modules
    with mock.patch.dict(sys.modules):
        sys.modules["torchaudio"] = None
        assert importlib.util.find_spec("torchaudio") is None  # what transformers asks
    with (
        mock.patch.dict(sys.modules),
        mock.patch.object(importlib, "import_module", return_value=object()),
        mock.patch.object(importlib.util, "find_spec", return_value=object()),
    ):
        sys.modules.pop("torchaudio", None)
        assert hf.hide_broken_torchaudio() is False and "torchaudio" not in sys.modules  # a working one stays
