"""The WEAM prediction loss: plain, chunked (memory-bounded) and apex-fused paths.

Both targets are predicted from the same logits at the same masked positions, so one
log-sum-exp (one log-softmax) serves both: ``nll(t) = logsumexp(logits) - logits[t]``. A masked
row has one multilingual target and up to K weighted cross-lingual targets (``xl_target`` /
``xl_weight`` ``[N, K]``; a plain ``[N]`` target means K = 1 with weight 1).

Three interchangeable implementations, all returning a :class:`PredictionLoss` with the same
values (tested against each other):

``plain``
    ``logits = hidden @ W^T + b`` for the masked rows, then :func:`weam_prediction_loss` (one
    log-softmax, one gather of both targets). Autograd keeps the ``[N, V]`` log-probabilities and
    builds ``[N, V]`` gradients in the backward, exactly like fairseq's ``masked_lm``.
``chunked`` (``chunk_size > 0``; the default on CPU, see :func:`resolve_chunk_size`)
    :class:`_ChunkedHeadLoss`: a fused "linear + two cross-entropies" autograd function. It walks
    the masked rows in chunks of ``chunk_size``; for each chunk it computes the logits, their row
    maximum, ``exp(logits - max)`` once (in place) and its row sum (the shared log-sum-exp), both
    NLLs, the hits, and, when a backward will follow, the gradient of
    ``ml + lambda * xl`` with respect to the logits, which it immediately contracts into the
    gradients of ``hidden``, ``weight`` and ``bias``. No ``[N, V]`` tensor ever exists; the
    largest transient is ``[chunk_size, V]``, and the head's FLOPs are the same three matmuls as
    the plain path (nothing is recomputed). What it keeps for the backward is
    ``grad_hidden [N, d]`` plus ``grad_weight [V, d]`` and ``grad_bias [V]`` in fp32, which the
    plain path allocates anyway once its backward reaches the head. Because the gradient is
    formed in the forward, only the combined ``loss = ml + lambda * xl`` is differentiable; the
    separate ``ml_loss`` / ``xl_loss`` are detached (for logging).
``apex`` (CUDA, apex importable, no chunking)
    ``apex.contrib.xentropy.SoftmaxCrossEntropyLoss`` (fused softmax + NLL kernel, the one
    fairseq's ``modules.cross_entropy`` uses) once per target over the same logits.

:func:`masked_prediction_loss` picks the path; :func:`masked_lm_head_input` runs a fairseq
RoBERTa / XLM-R model up to the LM head's output projection for the masked rows only.

Accuracy ("hits"): a target is predicted correctly when its logit equals the row's largest logit
(``logits.gather(target) == logits.amax(1)``, compared exactly on the logits, the same on every
path). This is the argmax except on exact ties for the maximum, where every tied target counts as
a hit instead of only the lowest index. It costs one ``amax`` pass over ``[N, V]`` instead of an
``argmax`` (about 6x slower on CPU), which was the largest cost the plain path had over fairseq's
``masked_lm`` (which logs no accuracy).
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


@dataclass
class PredictionLoss:
    """Summed (not averaged) losses and counts, so they add up across batches and workers."""

    ml_loss: torch.Tensor  # sum of multilingual NLL over masked positions (nats)
    xl_loss: torch.Tensor  # sum of xl_weight * cross-lingual NLL over the exchanged targets
    ml_correct: torch.Tensor
    xl_correct: torch.Tensor  # sum of xl_weight over exchanged targets equal to the argmax
    ml_count: int
    xl_count: float  # sum of xl_weight (number of targets when every weight is 1)
    # sum over rows of row_weight * ml_nll + xl_lambda * sum_k xl_weight * xl_nll (= ml_loss +
    # xl_lambda * xl_loss without row weights); the tensor to call backward on (on the chunked
    # path it is the only differentiable one). None only when built by hand.
    loss: Optional[torch.Tensor] = None
    # Detached per-row values [N], for per-group (per-stream) logging with one head call:
    # multilingual NLL, weighted cross-lingual NLL (0 where there is no cross-lingual target),
    # multilingual hit (bool) and the summed xl_weight of the cross-lingual targets hit.
    ml_nll_rows: Optional[torch.Tensor] = None
    xl_nll_rows: Optional[torch.Tensor] = None
    ml_correct_rows: Optional[torch.Tensor] = None
    xl_correct_rows: Optional[torch.Tensor] = None


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: fp32 for half types, else the input's own (fp32 or fp64)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def xl_columns(ml_target, xl_target, xl_weight, ignore_index, dtype):
    """``(xl [N, K], has [N, K], weight [N, K], safe [N, K])``: the cross-lingual targets as
    columns, which exist, their weights (0 where none) and an in-range index for every cell."""
    xl = xl_target if xl_target.dim() == 2 else xl_target.unsqueeze(1)
    has = xl.ne(ignore_index)
    if xl_weight is None:
        weight = has.to(dtype)
    else:
        weight = xl_weight if xl_weight.dim() == 2 else xl_weight.unsqueeze(1)
        weight = torch.where(has, weight.to(dtype), torch.zeros((), dtype=dtype, device=weight.device))
    safe = torch.where(has, xl, ml_target.unsqueeze(1))
    return xl, has, weight, safe


def weam_prediction_loss(
    logits: torch.Tensor,
    ml_target: torch.Tensor,
    xl_target: torch.Tensor,
    ignore_index: int,
    xl_lambda: float = 1.0,
    row_weight: Optional[torch.Tensor] = None,
    xl_weight: Optional[torch.Tensor] = None,
) -> PredictionLoss:
    """Losses of ``logits`` ``[N, V]`` (masked positions only) against both targets.

    ``xl_target`` ``[N]`` or ``[N, K]`` holds ``ignore_index`` where there is no cross-lingual
    target; ``xl_weight`` (same shape, optional) weighs each one. ``loss = sum_i row_weight_i *
    ml_i + xl_lambda * sum_ik xl_weight_ik * xl_ik`` (``row_weight`` ``[N]`` optional, default 1).
    """
    acc = _acc_dtype(logits.dtype)  # fp32 for half logits; fp32 / fp64 logits stay as they are
    # log_softmax (= logits - logsumexp, one pass) keeps only its output for the backward, and
    # its backward is one fused kernel, as in fairseq's masked_lm; logsumexp + gather on the
    # logits would keep the logits and build several [N, V] temporaries in the backward.
    lprobs = torch.log_softmax(logits, dim=-1, dtype=acc)

    # One gather of all targets ([N, 1 + K]): no [n_xl, V] row copy, one dense gather gradient.
    _, _, weight, safe = xl_columns(ml_target, xl_target, xl_weight, ignore_index, acc)
    targets = torch.cat([ml_target.unsqueeze(1), safe], dim=1)
    nll = -lprobs.gather(1, targets)
    ml_rows = nll[:, 0]
    xl_rows = (weight * nll[:, 1:]).sum(1)
    return _from_rows(ml_rows, xl_rows, target_hits(logits, targets), ml_target, weight, xl_lambda, row_weight)


def target_hits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[N, 1 + K]`` bool: whether each target's logit equals its row's maximum (no gradient)."""
    with torch.no_grad():
        return logits.gather(1, targets) == logits.amax(dim=1, keepdim=True)


def _from_rows(ml_rows, xl_rows, hits, ml_target, weight, xl_lambda, row_weight) -> PredictionLoss:
    """Sums, counts and the combined loss from per-row NLLs (``xl_rows`` 0 without a target) and
    the targets' hits ``[N, 1 + K]`` (own target first)."""
    ml_loss, xl_loss = ml_rows.sum(), xl_rows.sum()
    ml_hits = hits[:, 0]
    xl_hits = (weight * hits[:, 1:]).sum(1)
    return PredictionLoss(
        ml_loss=ml_loss,
        xl_loss=xl_loss,
        ml_correct=ml_hits.sum(),
        xl_correct=xl_hits.sum(),
        ml_count=int(ml_target.numel()),
        xl_count=float(weight.sum()),
        loss=_combine(ml_rows, xl_rows, ml_loss, xl_loss, xl_lambda, row_weight),
        ml_nll_rows=ml_rows.detach(),
        xl_nll_rows=xl_rows.detach(),
        ml_correct_rows=ml_hits,
        xl_correct_rows=xl_hits.detach(),
    )


def _combine(ml_rows, xl_rows, ml_loss, xl_loss, xl_lambda, row_weight):
    ml = ml_loss if row_weight is None else (ml_rows * row_weight.to(ml_rows.dtype)).sum()
    return ml + xl_lambda * xl_loss if xl_lambda else ml


# --------------------------------------------------------------------------------------------
# Chunked path
# --------------------------------------------------------------------------------------------


class _ChunkedHeadLoss(torch.autograd.Function):
    """``loss = sum_i (w_i * nll_ml(i) + lambda * sum_k u_ik nll_xl(i, k))`` over row chunks
    (``u`` the cross-lingual weights, 0 where there is no target).

    Outputs ``(loss, ml_sum, xl_sum, ml_correct, xl_correct, ml_rows, xl_rows, ml_hit_rows,
    xl_hit_rows)``; only ``loss`` is differentiable. Gradients are formed chunk by chunk in the
    forward (``d loss / d logits = (w + lambda * sum_k u_k) * softmax - w * onehot(ml) - lambda *
    sum_k u_k onehot(xl_k)``) and scaled by the incoming gradient in the backward. Per chunk the
    ``[c, V]`` block is walked four times: the matmul, its ``amax``, ``exp(x - max)`` in place
    (its row sum gives the log-sum-exp, and it is the unnormalized softmax), and the scaling into
    the gradient.
    """

    @staticmethod
    def forward(
        ctx,
        hidden,
        weight,
        bias,
        ml_target,
        xl_target,
        xl_weight,
        row_weight,
        ignore_index,
        xl_lambda,
        chunk_size,
        need_grad,
    ):
        n, v = hidden.shape[0], weight.shape[0]
        acc = _acc_dtype(hidden.dtype)
        device = hidden.device
        ml_sum = torch.zeros((), dtype=acc, device=device)
        xl_sum = torch.zeros((), dtype=acc, device=device)
        ml_correct = torch.zeros((), dtype=torch.long, device=device)
        xl_correct = torch.zeros((), dtype=acc, device=device)
        ml_rows = torch.empty(n, dtype=acc, device=device)
        xl_rows = torch.empty(n, dtype=acc, device=device)
        ml_hit_rows = torch.empty(n, dtype=torch.bool, device=device)
        xl_hit_rows = torch.empty(n, dtype=acc, device=device)
        loss = torch.zeros((), dtype=acc, device=device)
        need_h, need_w, need_b = need_grad
        if need_h or need_w or need_b:
            # Gradients are accumulated in fp32 (fp64 for fp64 inputs) even for half inputs: the
            # softmax is unscaled here (fairseq's fp16 loss scale only arrives in the backward),
            # so half-precision gradients would underflow.
            w_acc = weight if weight.dtype == acc else weight.to(acc)
            grad_h = torch.empty(n, hidden.shape[1], dtype=acc, device=device) if need_h else None
            grad_w = torch.zeros(v, weight.shape[1], dtype=acc, device=device) if need_w else None
            grad_b = torch.zeros(v, dtype=acc, device=device) if need_b and bias is not None else None
        else:
            grad_h = grad_w = grad_b = None
        want_grad = grad_h is not None or grad_w is not None or grad_b is not None
        wt = weight.t()
        for start in range(0, n, chunk_size):
            end = min(start + chunk_size, n)
            h = hidden[start:end]
            logits = torch.addmm(bias, h, wt) if bias is not None else h.mm(wt)
            logits = logits.to(acc)  # no copy for fp32 / fp64
            ml = ml_target[start:end]
            xl = xl_target[start:end]
            u = xl_weight[start:end]  # [c, K], 0 where there is no target
            xl_safe = torch.where(xl.ne(ignore_index), xl, ml.unsqueeze(1))  # in range everywhere
            targets = torch.cat([ml.unsqueeze(1), xl_safe], dim=1)  # [c, 1 + K]
            picked = logits.gather(1, targets)
            top = logits.amax(dim=1, keepdim=True)  # [c, 1]
            hits = picked == top
            # In place: logits -> exp(logits - max); its row sum gives the log-sum-exp, and the
            # same block, scaled per row, is the gradient below (no second exp pass).
            e = logits.sub_(top).exp_()
            total = e.sum(dim=1, keepdim=True)  # >= 1: the maximum contributes exp(0)
            nll = top + total.log() - picked  # [c, 1 + K]
            ml_nll = nll[:, 0]
            xl_nll = (u * nll[:, 1:]).sum(1)
            ml_hit = hits[:, 0]
            xl_hit = (u * hits[:, 1:]).sum(1)
            ml_rows[start:end] = ml_nll
            xl_rows[start:end] = xl_nll
            ml_hit_rows[start:end] = ml_hit
            xl_hit_rows[start:end] = xl_hit
            ml_sum += ml_nll.sum()
            xl_sum += xl_nll.sum()
            ml_correct += ml_hit.sum()
            xl_correct += xl_hit.sum()
            w = torch.ones_like(ml_nll) if row_weight is None else row_weight[start:end].to(acc)
            loss += (w * ml_nll).sum() + xl_lambda * xl_nll.sum() if xl_lambda else (w * ml_nll).sum()
            if not want_grad:
                continue
            xl_w = u * xl_lambda  # [c, K]
            # In place: exp(logits - max) -> (w + lambda * sum u) * softmax - onehots (= d loss / d logits)
            g = e.mul_(((w + xl_w.sum(1)).unsqueeze(1) / total))
            g.scatter_add_(1, ml.unsqueeze(1), (-w).unsqueeze(1))
            g.scatter_add_(1, xl_safe, -xl_w)
            if grad_h is not None:
                torch.mm(g, w_acc, out=grad_h[start:end])
            if grad_w is not None:
                grad_w.addmm_(g.t(), h.to(acc))
            if grad_b is not None:
                grad_b += g.sum(0)
            del g, e, logits
        ctx.grads = (grad_h, grad_w, grad_b)
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.mark_non_differentiable(ml_sum, xl_sum, ml_correct, xl_correct, ml_rows, xl_rows, ml_hit_rows, xl_hit_rows)
        return loss, ml_sum, xl_sum, ml_correct, xl_correct, ml_rows, xl_rows, ml_hit_rows, xl_hit_rows

    @staticmethod
    def backward(ctx, grad_loss, *unused):
        if ctx.grads is None:
            raise RuntimeError("the chunked WEAM loss was already backpropagated (retain_graph is not supported)")
        out = []
        for grad, dtype in zip(ctx.grads, ctx.dtypes):
            if grad is None:
                out.append(None)
                continue
            # Skip the [V, d] multiply for the usual unit gradient; on an accelerator always
            # multiply rather than synchronize to read the value.
            if grad_loss.is_cuda or float(grad_loss) != 1.0:
                grad.mul_(grad_loss.to(grad.dtype))
            out.append(grad if grad.dtype == dtype else grad.to(dtype))
        ctx.grads = None  # free the buffers as soon as autograd has them
        return (*out, None, None, None, None, None, None, None, None)


def chunked_prediction_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    ml_target: torch.Tensor,
    xl_target: torch.Tensor,
    ignore_index: int,
    chunk_size: int,
    xl_lambda: float = 1.0,
    row_weight: Optional[torch.Tensor] = None,
    xl_weight: Optional[torch.Tensor] = None,
) -> PredictionLoss:
    """The memory-bounded path (see the module docstring); largest transient ``[chunk_size, V]``."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    grad_on = torch.is_grad_enabled()
    need = (
        grad_on and hidden.requires_grad,
        grad_on and weight.requires_grad,
        grad_on and bias is not None and bias.requires_grad,
    )
    if row_weight is not None:
        row_weight = row_weight.detach()
    xl, _, u, _ = xl_columns(ml_target, xl_target, xl_weight, ignore_index, _acc_dtype(hidden.dtype))
    loss, ml_sum, xl_sum, ml_correct, xl_correct, ml_rows, xl_rows, ml_hits, xl_hits = _ChunkedHeadLoss.apply(
        hidden,
        weight,
        bias,
        ml_target,
        xl,
        u.detach(),
        row_weight,
        ignore_index,
        float(xl_lambda),
        int(chunk_size),
        need,
    )
    return PredictionLoss(
        ml_loss=ml_sum,
        xl_loss=xl_sum,
        ml_correct=ml_correct,
        xl_correct=xl_correct,
        ml_count=int(ml_target.numel()),
        xl_count=float(u.sum()),
        loss=loss,
        ml_nll_rows=ml_rows,
        xl_nll_rows=xl_rows,
        ml_correct_rows=ml_hits,
        xl_correct_rows=xl_hits,
    )


# --------------------------------------------------------------------------------------------
# apex path
# --------------------------------------------------------------------------------------------

_APEX_UNSET = object()
_apex_xentropy_cls = _APEX_UNSET


def apex_xentropy():
    """apex's ``SoftmaxCrossEntropyLoss`` autograd function, or None when apex (with its
    ``xentropy_cuda`` extension) is not installed."""
    global _apex_xentropy_cls
    if _apex_xentropy_cls is _APEX_UNSET:
        try:
            import xentropy_cuda  # noqa: F401  (the compiled kernel; apex imports lazily)
            from apex.contrib.xentropy import SoftmaxCrossEntropyLoss

            _apex_xentropy_cls = SoftmaxCrossEntropyLoss
        except Exception:  # ImportError, or a broken / CPU-only build
            _apex_xentropy_cls = None
    return _apex_xentropy_cls


def apex_prediction_loss(
    logits: torch.Tensor,
    ml_target: torch.Tensor,
    xl_target: torch.Tensor,
    ignore_index: int,
    xl_lambda: float = 1.0,
    xentropy=None,
    row_weight: Optional[torch.Tensor] = None,
    xl_weight: Optional[torch.Tensor] = None,
) -> PredictionLoss:
    """Same result as :func:`weam_prediction_loss`, with the fused softmax-xentropy kernel.

    ``xentropy`` is an autograd function with apex's contract
    ``apply(logits, labels, smoothing, padding_idx, half_to_float) -> per-row losses`` (rows whose
    label is ``padding_idx`` get loss 0 and no gradient); default: apex's own.
    """
    if xentropy is None:
        xentropy = apex_xentropy()
        if xentropy is None:
            raise RuntimeError("apex.contrib.xentropy is not available")
    half_to_float = logits.dtype == torch.half
    acc = _acc_dtype(logits.dtype)
    ml_nll = xentropy.apply(logits, ml_target, 0.0, ignore_index, half_to_float).to(acc)
    xl, _, u, safe = xl_columns(ml_target, xl_target, xl_weight, ignore_index, acc)
    # One kernel call per target column (K is 1 unless every piece of the partner is a target).
    xl_nll = sum(
        u[:, k] * xentropy.apply(logits, xl[:, k].contiguous(), 0.0, ignore_index, half_to_float).to(acc)
        for k in range(xl.shape[1])
    )
    hits = target_hits(logits, torch.cat([ml_target.unsqueeze(1), safe], dim=1))
    return _from_rows(ml_nll, xl_nll, hits, ml_target, u, xl_lambda, row_weight)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _linear(hidden, weight, bias):
    # fairseq's RobertaLMHead computes F.linear(x, weight) + bias: a second pass over [N, V] in the
    # forward. The bias goes into the matmul here (addmm), as on the chunked path.
    return F.linear(hidden, weight, bias)


# ``chunk_size`` value for the automatic choice of :func:`resolve_chunk_size` (the criterion's
# default ``--vocab-chunk-size -1``).
AUTO_CHUNK = -1
# Rows per chunk of the automatic choice on CPU: a 128 x V fp32 block (122 MiB at V = 250k) keeps
# the matmuls as fast as one big one there (docs/performance.md).
CPU_CHUNK_ROWS = 128


def resolve_chunk_size(chunk_size: Optional[int], device: torch.device) -> int:
    """Rows per chunk of the LM head on ``device``: ``chunk_size`` itself when it is >= 0 (0 or
    None = unchunked), and for :data:`AUTO_CHUNK` (any negative value) :data:`CPU_CHUNK_ROWS` on
    CPU, where the chunked head measured faster than the unchunked one and with about half its
    forward+backward memory at every vocabulary measured (8k, 32k, 250k; docs/performance.md),
    and 0 on an accelerator, where it has not been measured against the unchunked / apex path
    yet (``scripts/gpu_check.sh`` measures both; set ``--vocab-chunk-size`` explicitly there)."""
    if chunk_size is None:
        return 0
    if chunk_size >= 0:
        return int(chunk_size)
    return CPU_CHUNK_ROWS if torch.device(device).type == "cpu" else 0


def prediction_path(hidden: torch.Tensor, chunk_size: Optional[int] = None, use_apex: Optional[bool] = None) -> str:
    """Which path :func:`masked_prediction_loss` takes: ``chunked``, ``apex`` or ``plain``."""
    if resolve_chunk_size(chunk_size, hidden.device):
        return "chunked"
    if use_apex is None:
        use_apex = hidden.is_cuda and hidden.dtype in (torch.float16, torch.float32) and apex_xentropy() is not None
    return "apex" if use_apex else "plain"


def masked_prediction_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    ml_target: torch.Tensor,
    xl_target: torch.Tensor,
    ignore_index: int,
    chunk_size: Optional[int] = None,
    xl_lambda: float = 1.0,
    use_apex: Optional[bool] = None,
    row_weight: Optional[torch.Tensor] = None,
    xl_weight: Optional[torch.Tensor] = None,
) -> PredictionLoss:
    """WEAM losses from the LM head's last hidden states of the masked rows.

    ``hidden`` ``[N, d]`` (after the head's dense/activation/layer norm), ``weight`` ``[V, d]``,
    ``bias`` ``[V]`` (or None), ``ml_target`` ``[N]``, ``xl_target`` / ``xl_weight`` ``[N]`` or
    ``[N, K]``. ``chunk_size`` > 0 selects the memory-bounded chunked path (rows per chunk),
    :data:`AUTO_CHUNK` (-1) lets :func:`resolve_chunk_size` choose by device; otherwise (0 or None)
    apex's fused xentropy is used on CUDA when it is installed (``use_apex`` forces it on or off),
    else plain torch. Backpropagate ``result.loss``
    (``= ml_loss + xl_lambda * xl_loss``, or ``sum_i row_weight_i * ml_i + xl_lambda * xl_loss``
    with ``row_weight`` [N], e.g. each term's mean weights per row). Call it once per batch,
    not once per stream: the chunked path holds a ``[V, d]`` fp32 gradient buffer per call;
    ``ml_nll_rows`` / ``xl_nll_rows`` / ``ml_correct_rows`` / ``xl_correct_rows`` give per-row
    values for per-stream logs.
    """
    rows = resolve_chunk_size(chunk_size, hidden.device)
    path = prediction_path(hidden, rows, use_apex)
    if path == "chunked":
        return chunked_prediction_loss(
            hidden, weight, bias, ml_target, xl_target, ignore_index, rows, xl_lambda, row_weight, xl_weight
        )
    logits = _linear(hidden, weight, bias)
    if path == "apex":
        return apex_prediction_loss(
            logits, ml_target, xl_target, ignore_index, xl_lambda, row_weight=row_weight, xl_weight=xl_weight
        )
    return weam_prediction_loss(logits, ml_target, xl_target, ignore_index, xl_lambda, row_weight, xl_weight)


def _unwrap(model):
    """The fairseq model behind DDP / fairseq's ModuleProxyWrapper (attribute access only)."""
    m = model
    while not hasattr(m, "encoder") and hasattr(m, "module"):
        m = m.module
    return m


def lm_head_parts(model):
    """``(lm_head, output weight, output bias)`` of a fairseq RoBERTa / XLM-R style model."""
    encoder = getattr(_unwrap(model), "encoder", None)
    head = getattr(encoder, "lm_head", None)
    if head is None or not all(hasattr(head, a) for a in ("dense", "activation_fn", "layer_norm", "weight")):
        raise TypeError(
            f"{type(_unwrap(model)).__name__} has no RoBERTa-style encoder.lm_head "
            "(dense, activation_fn, layer_norm, weight, bias); use the plain path (chunk size 0)"
        )
    return head, head.weight, getattr(head, "bias", None)


def masked_lm_head_input(
    model, net_input: dict, masked_tokens: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Run ``model`` (through any DDP wrapper, so gradient hooks fire) with ``features_only=True``
    and apply the LM head's transform to the masked rows only.

    Returns ``(hidden [n_masked, d], weight [V, d], bias [V])`` such that
    ``hidden @ weight.T + bias`` equals ``model(**net_input, masked_tokens=masked_tokens)[0]``.
    """
    _, weight, bias = lm_head_parts(model)
    features = model(**net_input, features_only=True)[0]
    return lm_head_hidden(model, features[masked_tokens]), weight, bias


def lm_head_hidden(model, features: torch.Tensor) -> torch.Tensor:
    """The LM head's transform (dense, activation, layer norm) of encoder ``features`` ``[N, C]``:
    what the output projection ``weight`` / ``bias`` is applied to."""
    head = lm_head_parts(model)[0]
    return head.layer_norm(head.activation_fn(head.dense(features)))
