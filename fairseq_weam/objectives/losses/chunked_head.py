"""The chunked (memory-bounded) path of the WEAM prediction loss: a fused "linear + two
cross-entropies" autograd function over chunks of masked rows (see
:mod:`fairseq_weam.objectives.losses.prediction_loss` for the three paths and what they share)."""

from typing import Optional

import torch

from fairseq_weam.objectives.losses.prediction_rows import PredictionLoss, acc_dtype, xl_columns


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
        acc = acc_dtype(hidden.dtype)
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
    xl, _, u, _ = xl_columns(ml_target, xl_target, xl_weight, ignore_index, acc_dtype(hidden.dtype))
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
