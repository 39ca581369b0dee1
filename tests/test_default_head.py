"""The default LM head (``--vocab-chunk-size -1``: chunked on CPU) against the unchunked one
(``--vocab-chunk-size 0``) on real prepared batches: gettext fr and zh_CN pairs prepared by the
package (sentencepiece, fast_align, binarization, as the demo corpus at /work/data/data) and
batched by fairseq's own iterator; a real RoBERTa built by the task, trained one step each way.
Loss, every logged value and the gradient of every parameter agree."""

import copy
import os

import pytest
import torch
from gettext_sample import prepared_gettext_sample

from fairseq_weam.objectives.losses.prediction_loss import CPU_CHUNK_ROWS, prediction_path

N_PAIRS = 300
MODEL_ARGS = [
    "--arch",
    "roberta",
    "--encoder-layers",
    "2",
    "--encoder-embed-dim",
    "64",
    "--encoder-ffn-embed-dim",
    "128",
    "--encoder-attention-heads",
    "2",
    "--tokens-per-sample",
    "128",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepared_gettext_sample(tmp_path_factory.mktemp("gettext_head"), N_PAIRS, vocab_size=1000, valid_size=10)


def setup(data, *extra):
    """``(task, model, default criterion, unchunked criterion)`` as fairseq-train builds them."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    user_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/fairseq_weam"

    def cfg_of(*args):
        parser = options.get_training_parser()
        argv = [data, "--user-dir", user_dir, "--task", "weam", "--criterion", "weam", "--seed", "1"]
        return convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, argv + MODEL_ARGS + list(args)))

    cfg = cfg_of(*extra)
    assert cfg.criterion.vocab_chunk_size == -1  # the default is the automatic choice
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train", epoch=1)
    torch.manual_seed(1)
    model = task.build_model(cfg.model)
    default = task.build_criterion(cfg.criterion)
    unchunked = task.build_criterion(cfg_of(*extra, "--vocab-chunk-size", "0").criterion)
    return task, model, default, unchunked


def step(model, criterion, sample, seed):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks on both paths
    loss, sample_size, log = criterion(model, sample)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), sample_size, log, grads


@pytest.mark.parametrize(
    "extra, dtype",
    [
        ((), torch.float32),
        ((), torch.float64),
        (("--xl-target", "all-pieces", "--xl-lambda", "0.5"), torch.float64),
    ],
)
def test_default_head_equals_unchunked_on_real_batches(data, extra, dtype):
    task, model, default, unchunked = setup(data, *extra)
    model = model.to(dtype).train()
    assert prediction_path(next(model.parameters()), default.cfg.vocab_chunk_size) == "chunked"
    assert prediction_path(next(model.parameters()), unchunked.cfg.vocab_chunk_size) == "plain"
    itr = task.get_batch_iterator(dataset=task.dataset("train"), max_sentences=48, seed=1, epoch=1)
    tight = dtype == torch.float64
    checked = 0
    for k, sample in enumerate(itr.next_epoch_itr(shuffle=True)):
        if k == 4:
            break
        masked = int(sample["target"].ne(task.source_dictionary.pad()).sum())
        if extra:  # several weighted exchange targets per masked word
            assert sample["xl_target"].dim() == 3 and sample["xl_target"].shape[-1] > 1
        assert masked > CPU_CHUNK_ROWS  # several chunks, the last one partial
        ref = step(copy.deepcopy(model), unchunked, sample, seed=k)
        out = step(copy.deepcopy(model), default, sample, seed=k)
        assert out[1] == ref[1] == masked
        torch.testing.assert_close(out[0], ref[0], rtol=1e-12 if tight else 1e-5, atol=0)
        assert out[2].keys() == ref[2].keys()
        for key, value in ref[2].items():
            if "correct" in key or "count" in key or key in ("ntokens", "nsentences", "sample_size"):
                assert float(out[2][key]) == float(value), key  # hits and counts: exactly
            else:
                assert float(out[2][key]) == pytest.approx(float(value), rel=1e-10 if tight else 1e-5), key
        assert out[3].keys() == ref[3].keys() and len(ref[3]) == len(list(model.parameters()))
        total = float(torch.stack([g.norm() for g in ref[3].values()]).norm())
        for name, grad in ref[3].items():
            # Normwise: fp32 sums in another order differ by ~1e-7 of the tensor's scale. The floor
            # is for gradients that are 0 in exact arithmetic (the attention's key bias: rounding).
            err = float((out[3][name] - grad).norm())
            assert err <= (1e-10 if tight else 2e-5) * float(grad.norm()) + (1e-13 if tight else 1e-8) * total, name
        checked += 1
    assert checked == 4
