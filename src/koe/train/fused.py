"""Cross-entropy of the output projection, computed in chunks of tokens, without the full-vocabulary logits.

    loss_sum, losses = linear_cross_entropy(hidden [T, H], weight [V, H], targets [T], compute_dtype=torch.bfloat16)

Why: with a 152k-id vocabulary, 8 x 2048 tokens of logits are 2.5 G values: 5 GB in bf16 and 10 GB more once the
loss upcasts them to fp32, plus their gradient, all for a softmax that is read once. Here each chunk of tokens
computes its logits (matmul in `compute_dtype`), their fp32 log-sum-exp and loss, and at once the gradient of the
summed loss with respect to the chunk's hidden states and to the weight, then drops the logits. Backward only
scales the saved gradients by the incoming gradient. The matmul FLOPs are those of the plain path (forward, then
two gradient matmuls); memory is one chunk of logits. The same algorithm as Liger-Kernel's fused linear
cross-entropy, written in torch so that it runs on CPUs (tests) and under torch.compile (which fuses the softmax
arithmetic of a chunk into a few kernels), and so that it returns the per-token losses koe logs per modality.
"""

from __future__ import annotations

import torch

from koe.train.packing import IGNORE

CHUNK_TOKENS = 4096


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, compute_dtype, chunk, with_grad):
        w = weight.to(compute_dtype)
        losses = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if with_grad else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if with_grad else None
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start: start + chunk].to(compute_dtype)
            t = targets[start: start + chunk]
            valid = t != IGNORE
            safe = torch.where(valid, t, 0)
            logits = (h @ w.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            losses[start: start + chunk] = torch.where(valid, lse - logits.gather(1, safe[:, None])[:, 0], 0.0)
            if with_grad:
                g = torch.exp(logits - lse[:, None])
                g.scatter_add_(1, safe[:, None], torch.full_like(lse[:, None], -1.0))
                g = (g * valid[:, None]).to(compute_dtype)
                grad_h[start: start + chunk] = (g @ w).to(hidden.dtype)
                grad_w += (g.t() @ h).float()
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(losses)
        return losses.sum(), losses

    @staticmethod
    def backward(ctx, grad_sum, grad_losses):
        grad_h, grad_w = ctx.saved_tensors
        return (grad_h * grad_sum.to(grad_h.dtype), (grad_w * grad_sum).to(ctx.weight_dtype),
                None, None, None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         compute_dtype: torch.dtype | None = None,
                         chunk: int = CHUNK_TOKENS) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the token losses, differentiable; per-token losses [T] in fp32, 0 where target == IGNORE).

    Gradients flow to `hidden` and `weight` through the sum only; the per-token losses are for logging.
    """
    dtype = compute_dtype or hidden.dtype
    with_grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    return _LinearCrossEntropy.apply(hidden, weight, targets, dtype, chunk, with_grad)
