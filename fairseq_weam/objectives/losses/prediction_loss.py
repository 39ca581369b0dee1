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
``chunked`` (``chunk_size > 0``; the default on CPU, see :func:`resolve_chunk_size`; :mod:`.chunked_head`)
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

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from fairseq_weam.objectives.losses.chunked_head import chunked_prediction_loss
from fairseq_weam.objectives.losses.prediction_rows import PredictionLoss, acc_dtype, xl_columns


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
    acc = acc_dtype(logits.dtype)  # fp32 for half logits; fp32 / fp64 logits stay as they are
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
    acc = acc_dtype(logits.dtype)
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
