"""What each objective trains, measured on real prepared data (gettext fr and zh_CN) through
fairseq's own batch iterator: masking rates equal --mask-prob for WEAM, TLM and MLM alike, no
exchange target on a bare word-start piece, fresh masks in every epoch with a data-loader worker,
and copies of a pair inside a batch excluded from the contrastive negatives.

docs/objective.md gives the same figures measured on the whole demo corpus."""

import pytest
import torch
from gettext_sample import prepared_gettext_sample

from fairseq_weam.cli.objective_stats import build_task, format_table
from fairseq_weam.evaluation.objective_stats import measure
from fairseq_weam.objectives.losses.contrastive_loss import duplicate_pairs

N_PAIRS = 1200


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepared_gettext_sample(tmp_path_factory.mktemp("gettext"), N_PAIRS, vocab_size=2000, valid_size=20)


def stats(data, *task_args, num_workers=0, epochs=1):
    task = build_task(data, ["--tokens-per-sample", "128", *task_args])
    return task, measure(task, batch_size=32, num_workers=num_workers, epochs=epochs, progress=False)


@pytest.mark.parametrize("objective", ["weam", "tlm", "mlm"])
def test_word_masking_rate_is_mask_prob_for_every_objective(data, objective):
    _, result = stats(data, "--bitext-objective", objective, "--mask-prob", "0.3")
    print(format_table(result))
    for name, s in result["streams"].items():
        # ~1200 pairs of ~10 words per side: the standard error is well under 0.01.
        assert abs(s["word_rate"] - 0.3) < 0.02, (objective, name, s["word_rate"])
    if objective == "weam":
        assert result["all"]["xl_words_per_token"] > 0.1
    else:
        assert result["all"]["xl_words_per_token"] == 0.0


@pytest.mark.parametrize("xl_target", ["first-content", "all-pieces"])
def test_no_exchange_target_is_a_bare_word_start_piece(data, xl_target):
    task, result = stats(data, "--xl-target", xl_target)
    # zh_CN is where sentencepiece splits the most words as "▁" + piece.
    assert "\u2581" in task.source_dictionary.symbols
    for name, s in result["streams"].items():
        assert s["xl_marker_share"] == 0.0, name
        assert s["xl_words_per_token"] > 0.1, name


def test_masks_are_fresh_every_epoch_with_a_worker_process(data):
    _, result = stats(data, "--lang-pairs", "en-fr", num_workers=1, epochs=2)
    assert result["fresh_compared"] > 0.9 * N_PAIRS
    assert result["fresh_share"] > 0.9, result["fresh_share"]


def test_copies_of_upsampled_pairs_are_not_contrastive_negatives(data):
    # en-fr capped to 40 pairs and upsampled with alpha 0: most batches repeat some of them.
    task = build_task(data, ["--tokens-per-sample", "128", "--sampling-alpha", "0", "--lang-caps", "en-fr:40"])
    itr = task.get_batch_iterator(dataset=task.dataset("train"), max_sentences=32, seed=1, epoch=1).next_epoch_itr(
        shuffle=True
    )
    with_copies = 0
    for sample in itr:
        views = sample["views"]
        dup = duplicate_pairs(views["src_key"], views["tgt_key"])
        src, tgt = views["src_tokens"], views["tgt_tokens"]
        n = src.shape[0]
        for i in range(n):
            for j in range(n):
                same = torch.equal(src[i], src[j]) or torch.equal(tgt[i], tgt[j])
                assert bool(dup[i, j]) == (same and i != j), (i, j)
        with_copies += bool(dup.any())
    assert with_copies > 5
