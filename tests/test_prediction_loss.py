"""The chunked and apex paths of the WEAM loss against the plain path (values and gradients)."""

import argparse

import pytest
import torch
import torch.nn.functional as F

from fairseq_weam.objectives.losses.prediction_loss import (
    AUTO_CHUNK,
    CPU_CHUNK_ROWS,
    apex_prediction_loss,
    apex_xentropy,
    chunked_prediction_loss,
    lm_head_parts,
    masked_lm_head_input,
    masked_prediction_loss,
    prediction_path,
    resolve_chunk_size,
    weam_prediction_loss,
)

PAD = 1


def make_case(n=37, d=8, v=50, dtype=torch.float64, seed=0, xl_share=0.6):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g, dtype=dtype)
    weight = torch.randn(v, d, generator=g, dtype=dtype)
    bias = torch.randn(v, generator=g, dtype=dtype)
    ml = torch.randint(4, v, (n,), generator=g)
    xl = torch.randint(4, v, (n,), generator=g)
    xl[torch.rand(n, generator=g) > xl_share] = PAD
    if n > 2:
        xl[0] = ml[0]  # an exchanged target equal to the own target
        ml[1] = PAD + 1
    return hidden, weight, bias, ml, xl


def leaves(*tensors):
    return [t.clone().requires_grad_(True) for t in tensors]


def plain(hidden, weight, bias, ml, xl, xl_lambda):
    logits = F.linear(hidden, weight) + bias
    return weam_prediction_loss(logits, ml, xl, PAD, xl_lambda)


def grads_of(loss_fn, hidden, weight, bias, ml, xl, scale=1.0):
    h, w, b = leaves(hidden, weight, bias)
    out = loss_fn(h, w, b, ml, xl)
    (out.loss * scale).backward()
    return out, (h.grad, w.grad, b.grad)


@pytest.mark.parametrize("xl_lambda", [1.0, 0.3])
def test_plain_path_equals_textbook_cross_entropy(xl_lambda):
    # weam_prediction_loss itself against F.cross_entropy on the rows of each target.
    hidden, weight, bias, ml, xl = make_case()
    logits = (F.linear(hidden, weight) + bias).requires_grad_(True)
    out = weam_prediction_loss(logits, ml, xl, PAD, xl_lambda)
    has = xl.ne(PAD)
    ml_ref = F.cross_entropy(logits, ml, reduction="sum")
    xl_ref = F.cross_entropy(logits[has], xl[has], reduction="sum")
    torch.testing.assert_close(out.ml_loss, ml_ref)
    torch.testing.assert_close(out.xl_loss, xl_ref)
    pred = logits.argmax(1)
    assert int(out.ml_correct) == int(pred.eq(ml).sum())
    assert int(out.xl_correct) == int(pred[has].eq(xl[has]).sum())
    assert (out.ml_count, out.xl_count) == (len(ml), int(has.sum()))
    (g,) = torch.autograd.grad(out.loss, logits)
    (g_ref,) = torch.autograd.grad(ml_ref + xl_lambda * xl_ref, logits)
    torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize("chunk", [1, 5, 37, 1000])
@pytest.mark.parametrize("xl_lambda", [1.0, 0.5, 0.0])
def test_chunked_equals_plain_float64(chunk, xl_lambda):
    case = make_case()
    ref, ref_grads = grads_of(lambda *a: plain(*a, xl_lambda), *case)
    out, out_grads = grads_of(
        lambda h, w, b, ml, xl: chunked_prediction_loss(h, w, b, ml, xl, PAD, chunk, xl_lambda), *case
    )
    assert ref.xl_count > 5 and ref.xl_count < ref.ml_count  # the case exercises both kinds of row
    for a, b in ((out.ml_loss, ref.ml_loss), (out.xl_loss, ref.xl_loss), (out.loss, ref.loss)):
        torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-10)
    assert int(out.ml_correct) == int(ref.ml_correct)
    assert int(out.xl_correct) == int(ref.xl_correct)
    assert (out.ml_count, out.xl_count) == (ref.ml_count, ref.xl_count)
    for a, b in zip(out_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def assert_normwise_close(actual, expected, tol):
    """max |actual - expected| <= tol * max |expected| (fp32 rounding is relative to the scale)."""
    err = float((actual.double() - expected.double()).abs().max())
    scale = float(expected.double().abs().max())
    assert err <= tol * scale, f"max error {err:.3g} > {tol:g} x {scale:.3g}"


def test_chunked_equals_plain_float32_and_scaled_grad():
    # Larger vocab, fp32, and a non-unit incoming gradient (as fairseq's fp16 loss scaling gives);
    # both fp32 paths against each other and against the fp64 truth.
    case = make_case(n=300, d=32, v=3000, dtype=torch.float32, seed=3)
    case64 = [t.double() if t.is_floating_point() else t for t in case]
    truth, truth_grads = grads_of(lambda *a: plain(*a, 1.0), *case64, scale=7.0)
    ref, ref_grads = grads_of(lambda *a: plain(*a, 1.0), *case, scale=7.0)
    out, out_grads = grads_of(
        lambda h, w, b, ml, xl: chunked_prediction_loss(h, w, b, ml, xl, PAD, 64), *case, scale=7.0
    )
    for res in (ref, out):
        torch.testing.assert_close(res.loss.detach().double(), truth.loss.detach(), rtol=1e-6, atol=0)
        torch.testing.assert_close(res.xl_loss.detach().double(), truth.xl_loss.detach(), rtol=1e-6, atol=0)
    for a, b, t in zip(out_grads, ref_grads, truth_grads):
        assert_normwise_close(a, b, 1e-5)
        assert_normwise_close(a, t, 1e-5)
        assert_normwise_close(b, t, 1e-5)
    assert out_grads[1].abs().max() > 1.0  # gradients are not trivially zero


def test_chunked_only_loss_is_differentiable_and_logs_are_detached():
    h, w, b = leaves(*make_case()[:3])
    _, _, _, ml, xl = make_case()
    out = chunked_prediction_loss(h, w, b, ml, xl, PAD, 8)
    assert out.loss.requires_grad
    assert not out.ml_loss.requires_grad and not out.xl_loss.requires_grad
    out.loss.backward()
    with pytest.raises(RuntimeError):
        out.loss.backward()  # the gradient buffers were handed over


def test_chunked_respects_frozen_inputs_and_no_grad():
    hidden, weight, bias, ml, xl = make_case()
    h = hidden.clone().requires_grad_(True)
    out = chunked_prediction_loss(h, weight, bias, ml, xl, PAD, 4)  # frozen output projection
    out.loss.backward()
    h2 = hidden.clone().requires_grad_(True)
    ref = plain(h2, weight, bias, ml, xl, 1.0)
    ref.loss.backward()
    torch.testing.assert_close(h.grad, h2.grad)
    with torch.no_grad():
        out = chunked_prediction_loss(*leaves(hidden, weight, bias), ml, xl, PAD, 4)
    assert not out.loss.requires_grad
    torch.testing.assert_close(out.loss, ref.loss.detach())


def test_chunked_tied_weight_accumulates_with_other_uses():
    # RoBERTa ties the output projection to the input embedding: both gradients must add up.
    hidden, weight, bias, ml, xl = make_case()
    results = []
    for fn in (
        lambda h, w, b: plain(h, w, b, ml, xl, 1.0),
        lambda h, w, b: chunked_prediction_loss(h, w, b, ml, xl, PAD, 6),
    ):
        h, w, b = leaves(hidden, weight, bias)
        emb = F.embedding(torch.tensor([3, 4, 4, 9]), w).pow(2).sum()
        (fn(h, w, b).loss + emb).backward()
        results.append(w.grad)
    torch.testing.assert_close(results[0], results[1])


def test_empty_batch():
    hidden, weight, bias, ml, xl = make_case(n=0)
    h, w, b = leaves(hidden, weight, bias)
    out = chunked_prediction_loss(h, w, b, ml, xl, PAD, 4)
    out.loss.backward()
    assert float(out.loss.detach()) == 0.0 and out.ml_count == 0 and out.xl_count == 0
    assert float(w.grad.abs().sum()) == 0.0


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError):
        chunked_prediction_loss(*make_case(), PAD, 0)


def _tensor_allocations(fn):
    """Sizes in bytes of every CPU tensor storage created while ``fn`` runs."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        fn()
    return [size for _, action, _, size in prof._memory_profile().timeline if action == Action.CREATE]


def test_chunked_never_allocates_n_by_v():
    n, d, v, chunk = 512, 16, 4000, 32
    case = make_case(n=n, d=d, v=v, dtype=torch.float32, seed=1)
    nv_bytes = n * v * 4

    def run(loss_fn):
        h, w, b = leaves(*case[:3])
        return _tensor_allocations(lambda: loss_fn(h, w, b, *case[3:]).loss.backward())

    plain_allocs = run(lambda h, w, b, ml, xl: plain(h, w, b, ml, xl, 1.0))
    chunked_allocs = run(lambda h, w, b, ml, xl: chunked_prediction_loss(h, w, b, ml, xl, PAD, chunk))
    assert max(plain_allocs) >= nv_bytes  # the measurement sees the [N, V] logits of the plain path
    # Largest chunked allocation: a [chunk, V] logits block or the [V, d] weight gradient.
    assert max(chunked_allocs) <= max(chunk * v, v * d) * 4
    assert sum(chunked_allocs) < sum(plain_allocs) / 2


# ---------------------------------------------------------------------------------------------
# apex path
# ---------------------------------------------------------------------------------------------


class ReferenceXentropy(torch.autograd.Function):
    """Pure-torch stand-in with apex SoftmaxCrossEntropyLoss's contract (smoothing 0)."""

    @staticmethod
    def forward(ctx, logits, labels, smoothing, padding_idx, half_to_float):
        assert smoothing == 0.0
        lprobs = torch.log_softmax(logits.float() if half_to_float else logits, dim=-1)
        losses = -lprobs.gather(1, labels.unsqueeze(1)).squeeze(1)
        losses = losses.masked_fill(labels.eq(padding_idx), 0.0)
        ctx.save_for_backward(lprobs, labels)
        ctx.padding_idx = padding_idx
        ctx.in_dtype = logits.dtype
        return losses

    @staticmethod
    def backward(ctx, grad_loss):
        lprobs, labels = ctx.saved_tensors
        grad_loss = grad_loss.masked_fill(labels.eq(ctx.padding_idx), 0.0)
        g = lprobs.exp()
        g.scatter_add_(1, labels.unsqueeze(1), torch.full_like(g[:, :1], -1.0))
        return (g * grad_loss.unsqueeze(1)).to(ctx.in_dtype), None, None, None, None


def test_apex_glue_with_reference_kernel_equals_plain():
    # The glue (two calls, ignore rows, sums, accuracy) on CPU with a stand-in for the kernel.
    case = make_case(dtype=torch.float64)
    ref, ref_grads = grads_of(lambda *a: plain(*a, 0.7), *case)

    def via_apex(h, w, b, ml, xl):
        return apex_prediction_loss(F.linear(h, w) + b, ml, xl, PAD, 0.7, xentropy=ReferenceXentropy)

    out, out_grads = grads_of(via_apex, *case)
    torch.testing.assert_close(out.loss, ref.loss)
    torch.testing.assert_close(out.xl_loss, ref.xl_loss)
    assert (int(out.ml_correct), int(out.xl_correct), out.xl_count) == (
        int(ref.ml_correct),
        int(ref.xl_correct),
        ref.xl_count,
    )
    for a, b in zip(out_grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_path_selection_on_cpu():
    hidden = torch.zeros(2, 3)
    assert prediction_path(hidden, chunk_size=16) == "chunked"
    assert prediction_path(hidden, chunk_size=AUTO_CHUNK) == "chunked"  # the automatic choice on CPU
    assert prediction_path(hidden) == "plain"  # CPU: never apex
    assert prediction_path(hidden, chunk_size=0) == "plain"
    assert prediction_path(hidden, use_apex=False) == "plain"


def test_automatic_chunk_size_by_device():
    assert resolve_chunk_size(AUTO_CHUNK, torch.device("cpu")) == CPU_CHUNK_ROWS == 128
    assert resolve_chunk_size(AUTO_CHUNK, torch.device("cuda")) == 0  # not measured on GPU yet: unchunked
    assert resolve_chunk_size(-5, "cpu") == CPU_CHUNK_ROWS
    assert [resolve_chunk_size(c, "cpu") for c in (None, 0, 7, 4096)] == [0, 0, 7, 4096]
    assert [resolve_chunk_size(c, "cuda") for c in (0, 1024)] == [0, 1024]


def test_hits_are_targets_at_the_row_maximum_on_every_path():
    # The logits are the hidden states themselves (identity projection, no bias), so each row is
    # exactly as written. Row 0: own target is the unique maximum; row 1: the own target (3) ties
    # for the maximum with a lower index (argmax would say 0), the second cross-lingual target is
    # the maximum too; row 2: nothing at the maximum; row 3: the only cross-lingual target is it.
    logits = torch.tensor(
        [
            [0.0, 1.0, 5.0, 2.0, -1.0],
            [4.0, 1.0, 0.5, 4.0, 4.0],
            [3.0, 1.0, 2.0, 0.0, 0.0],
            [0.5, 0.0, 0.25, 0.0, 2.5],
        ],
        dtype=torch.float64,
    )
    ml = torch.tensor([2, 3, 1, 0])
    xl = torch.tensor([[1, PAD], [2, 4], [2, 3], [4, PAD]])
    xl_w = torch.tensor([[1.0, 0.0], [0.25, 0.75], [0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    eye = torch.eye(5, dtype=torch.float64)
    runs = {
        "plain": masked_prediction_loss(logits, eye, None, ml, xl, PAD, chunk_size=0, xl_weight=xl_w),
        "chunked": masked_prediction_loss(logits, eye, None, ml, xl, PAD, chunk_size=3, xl_weight=xl_w),
        "apex-glue": apex_prediction_loss(logits, ml, xl, PAD, xentropy=ReferenceXentropy, xl_weight=xl_w),
    }
    for name, out in runs.items():
        assert out.ml_correct_rows.tolist() == [True, True, False, False], name
        assert out.xl_correct_rows.tolist() == [0.0, 0.75, 0.0, 1.0], name
        assert (int(out.ml_correct), float(out.xl_correct)) == (2, 1.75), name


@pytest.mark.skipif(
    not torch.cuda.is_available() or apex_xentropy() is None, reason="needs CUDA and NVIDIA apex (xentropy)"
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_apex_cuda_equals_pure_torch(dtype):
    hidden, weight, bias, ml, xl = (t.cuda() for t in make_case(n=200, d=64, v=5000, dtype=torch.float32, seed=5))
    hidden, weight, bias = (t.to(dtype) for t in (hidden, weight, bias))
    assert prediction_path(hidden) == "apex"
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-3, atol=2e-2)
    results = {}
    for path, kw in (("plain", dict(use_apex=False)), ("apex", dict(use_apex=True)), ("chunked", dict(chunk_size=64))):
        h, w, b = leaves(hidden, weight, bias)
        out = masked_prediction_loss(h, w, b, ml, xl, PAD, **kw)
        out.loss.backward()
        results[path] = (out, (h.grad.float(), w.grad.float(), b.grad.float()))
    ref, ref_grads = results["plain"]
    for path in ("apex", "chunked"):
        out, grads = results[path]
        torch.testing.assert_close(out.loss.float(), ref.loss.float(), **tol)
        torch.testing.assert_close(out.xl_loss.float(), ref.xl_loss.float(), **tol)
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b, **tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_chunked_cuda_equals_plain():
    case = [t.cuda() for t in make_case(n=300, d=32, v=3000, dtype=torch.float32, seed=2)]
    ref, ref_grads = grads_of(lambda *a: plain(*a, 1.0), *case)
    out, out_grads = grads_of(lambda h, w, b, ml, xl: chunked_prediction_loss(h, w, b, ml, xl, PAD, 50), *case)
    torch.testing.assert_close(out.loss, ref.loss.detach(), rtol=1e-5, atol=1e-5)
    for a, b in zip(out_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# On a real fairseq RoBERTa
# ---------------------------------------------------------------------------------------------


def tiny_roberta(vocab=40, seed=0):
    from fairseq.data import Dictionary
    from fairseq.models.roberta import RobertaModel

    d = Dictionary()
    for i in range(vocab - len(d)):
        d.add_symbol(f"w{i}")
    task = argparse.Namespace(source_dictionary=d, max_positions=lambda: 32)
    args = argparse.Namespace(
        encoder_layers=2,
        encoder_embed_dim=16,
        encoder_ffn_embed_dim=32,
        encoder_attention_heads=2,
        tokens_per_sample=32,
        dropout=0.0,
        attention_dropout=0.0,
    )
    torch.manual_seed(seed)
    return RobertaModel.build_model(args, task).double(), d


def test_masked_lm_head_input_matches_roberta_lm_head():
    model, d = tiny_roberta()
    tokens = torch.randint(d.nspecial, len(d), (3, 10))
    masked = torch.rand(3, 10) < 0.4
    masked[0, 0] = True
    expected = model(src_tokens=tokens, masked_tokens=masked)[0]
    hidden, weight, bias = masked_lm_head_input(
        model, {"src_tokens": tokens, "src_lengths": torch.full((3,), 10)}, masked
    )
    assert weight is model.encoder.sentence_encoder.embed_tokens.weight  # tied, as in RoBERTa
    torch.testing.assert_close(F.linear(hidden, weight) + bias, expected)
    wrapped = torch.nn.Module()
    wrapped.module = model  # DDP-style wrapper
    assert lm_head_parts(wrapped)[0] is model.encoder.lm_head
    with pytest.raises(TypeError):
        lm_head_parts(torch.nn.Linear(2, 2))


def test_full_model_gradients_chunked_equal_model_forward_path():
    """What the criterion does: every parameter's gradient equals the original
    ``model(..., masked_tokens=...)`` + ``weam_prediction_loss`` route."""
    grads = []
    for use_chunks in (False, True):
        model, d = tiny_roberta(seed=4)
        g = torch.Generator().manual_seed(9)
        tokens = torch.randint(d.nspecial, len(d), (4, 12), generator=g)
        masked = torch.rand(4, 12, generator=g) < 0.35
        target = torch.randint(d.nspecial, len(d), (4, 12), generator=g)
        xl = torch.where(
            torch.rand(4, 12, generator=g) < 0.5,
            torch.randint(d.nspecial, len(d), (4, 12), generator=g),
            torch.full((4, 12), d.pad()),
        )
        net_input = {"src_tokens": tokens, "src_lengths": torch.full((4,), 12)}
        if use_chunks:
            hidden, weight, bias = masked_lm_head_input(model, net_input, masked)
            out = masked_prediction_loss(hidden, weight, bias, target[masked], xl[masked], d.pad(), chunk_size=3)
        else:
            logits = model(**net_input, masked_tokens=masked)[0]
            out = weam_prediction_loss(logits, target[masked], xl[masked], d.pad())
        out.loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    assert any(float(v.abs().sum()) > 0 for v in grads[0].values())
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-9, atol=1e-11, msg=name)


# ---------------------------------------------------------------------------------------------
# Row weights and per-row values (one call per batch with mixed streams)
# ---------------------------------------------------------------------------------------------


def test_row_weights_and_per_row_values_agree_across_paths():
    hidden, weight, bias, ml, xl = make_case(n=41, seed=7)
    row_weight = torch.where(torch.arange(41) % 3 == 0, 0.25, 1.0).double()  # e.g. monolingual rows
    logits = F.linear(hidden, weight) + bias
    has = xl.ne(PAD)
    ml_rows = F.cross_entropy(logits, ml, reduction="none")
    xl_rows = torch.where(
        has, F.cross_entropy(logits, torch.where(has, xl, ml), reduction="none"), torch.zeros(41).double()
    )
    expected_loss = (row_weight * ml_rows).sum() + 0.5 * xl_rows.sum()

    def run(fn):
        h, w, b = leaves(hidden, weight, bias)
        out = fn(h, w, b)
        out.loss.backward()
        return out, (h.grad, w.grad, b.grad)

    results = {
        "plain": run(
            lambda h, w, b: masked_prediction_loss(h, w, b, ml, xl, PAD, xl_lambda=0.5, row_weight=row_weight)
        ),
        "chunked": run(
            lambda h, w, b: masked_prediction_loss(
                h, w, b, ml, xl, PAD, chunk_size=4, xl_lambda=0.5, row_weight=row_weight
            )
        ),
        "apex-glue": run(
            lambda h, w, b: apex_prediction_loss(
                F.linear(h, w) + b, ml, xl, PAD, 0.5, xentropy=ReferenceXentropy, row_weight=row_weight
            )
        ),
    }
    # Reference gradients: autograd through the textbook per-row losses.
    h, w, b = leaves(hidden, weight, bias)
    lg = F.linear(h, w) + b
    ref = (row_weight * F.cross_entropy(lg, ml, reduction="none")).sum() + (
        0.5 * has * F.cross_entropy(lg, torch.where(has, xl, ml), reduction="none")
    ).sum()
    ref.backward()
    for name, (out, grads) in results.items():
        torch.testing.assert_close(out.loss.detach(), expected_loss, msg=name)
        torch.testing.assert_close(out.ml_nll_rows, ml_rows, msg=name)
        torch.testing.assert_close(out.xl_nll_rows, xl_rows, msg=name)
        predicted = logits.argmax(1)  # no ties in random float64 logits: hits are the argmax's
        assert torch.equal(out.ml_correct_rows, predicted.eq(ml)), name
        torch.testing.assert_close(out.xl_correct_rows, (has & predicted.eq(xl)).double(), msg=name)
        assert not out.ml_nll_rows.requires_grad and not out.xl_correct_rows.requires_grad
        for a, r in zip(grads, (h.grad, w.grad, b.grad)):
            torch.testing.assert_close(a, r, msg=name)
    # A weight of 0 (and no cross-lingual weight) removes a row's gradient entirely.
    zero = torch.zeros(41).double()
    h2 = hidden.clone().requires_grad_(True)
    chunked_prediction_loss(h2, weight, bias, ml, xl, PAD, 8, xl_lambda=0.0, row_weight=zero).loss.backward()
    assert float(h2.grad.abs().max()) == 0.0


# ---------------------------------------------------------------------------------------------
# Several weighted cross-lingual targets per row (--xl-target all-pieces)
# ---------------------------------------------------------------------------------------------


def test_weighted_multi_target_rows_agree_with_textbook_on_every_path():
    hidden, weight, bias, ml, _ = make_case(n=23, seed=3)
    g = torch.Generator().manual_seed(5)
    xl = torch.randint(4, 50, (23, 3), generator=g)
    xl_w = torch.tensor([1 / 3, 1 / 3, 1 / 3]).repeat(23, 1).double()
    xl[::4, 1:] = PAD  # one target, weight 1
    xl_w[::4] = torch.tensor([1.0, 0.0, 0.0]).double()
    xl[1::5] = PAD  # none
    xl_w[1::5] = 0.0
    row_weight = torch.linspace(0.5, 2.0, 23).double()

    h, w, b = leaves(hidden, weight, bias)
    lg = F.linear(h, w) + b
    lp = torch.log_softmax(lg, -1)
    xl_nll = -lp.gather(1, torch.where(xl.ne(PAD), xl, 0)) * xl_w
    ref_loss = (row_weight * -lp.gather(1, ml.unsqueeze(1)).squeeze(1)).sum() + 0.4 * xl_nll.sum()
    ref_loss.backward()
    ref_grads = (h.grad, w.grad, b.grad)
    predicted = lg.argmax(1)
    ref_correct = (xl_w * predicted.unsqueeze(1).eq(xl)).sum()

    def run(fn):
        h, w, b = leaves(hidden, weight, bias)
        out = fn(h, w, b)
        out.loss.backward()
        return out, (h.grad, w.grad, b.grad)

    kw = dict(xl_lambda=0.4, row_weight=row_weight, xl_weight=xl_w)
    results = {
        "plain": run(lambda h, w, b: masked_prediction_loss(h, w, b, ml, xl, PAD, **kw)),
        "chunked": run(lambda h, w, b: masked_prediction_loss(h, w, b, ml, xl, PAD, chunk_size=5, **kw)),
        "apex-glue": run(
            lambda h, w, b: apex_prediction_loss(F.linear(h, w) + b, ml, xl, PAD, xentropy=ReferenceXentropy, **kw)
        ),
    }
    for name, (out, grads) in results.items():
        torch.testing.assert_close(out.loss.detach(), ref_loss.detach(), msg=name)
        torch.testing.assert_close(out.xl_nll_rows, xl_nll.sum(1).detach(), msg=name)
        assert out.xl_count == pytest.approx(float(xl_w.sum())), name
        assert float(out.xl_correct) == pytest.approx(float(ref_correct)), name
        for a, r in zip(grads, ref_grads):
            torch.testing.assert_close(a, r, msg=name)
