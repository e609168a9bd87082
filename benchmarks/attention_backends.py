"""Document-masked (varlen) attention backends on packed rows: koe's flash varlen against cuDNN's varlen kernels.

    python benchmarks/attention_backends.py            # on a GPU: a correctness table, then a timing table

Why: a profile of koe's compiled step (docs/performance.md) shows PyTorch's varlen flash-attention (FlashAttention-2,
sm80 kernels) taking 16% of the step, and the cuDNN Hopper kernel that the plain baseline's SDPA picks runs whole
causal rows faster than FlashAttention-2 does. cuDNN also takes cumulative document lengths
(`aten._cudnn_attention_forward(cum_seq_q=...)`); `torch.nn.attention.varlen` has that branch but keeps it off.
`cudnn_varlen` calls the aten ops directly (K/V heads repeated: the op takes no GQA) in an autograd.Function that
torch.compile leaves out of its graph, so benchmarks/train_throughput.py can run the whole step with it (variant
koe-mb16-cudnn; a lower bound: the graph breaks once per layer). Measured on torch 2.11 (docs/performance.md): the
forward is right, the backward's dq/dk are wrong and a call takes ~70x longer, so koe keeps FlashAttention-2.

Rows: the same packed documents as the training benchmark (64..2048 tokens, 2048-token rows), Qwen2.5-0.5B's heads
(14 query heads, 2 KV heads, head dim 64), bf16. Correctness against fp32 block-causal SDPA on 2 rows; timing
(forward + backward, CUDA events, median) on 16 rows, with whole-row causal SDPA (flash / cuDNN) as a speed reference
that computes more (documents see each other).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))


def _signature(op) -> tuple[list[tuple[str, bool]], list[str]]:
    """(positional names with has-default, keyword-only names) of an aten op, read once outside any compiled code."""
    args = op.default._schema.arguments
    return [(a.name, a.has_default_value()) for a in args if not a.kwarg_only], [a.name for a in args if a.kwarg_only]


_SIGNATURES = {name: _signature(getattr(torch.ops.aten, name))
               for name in ("_cudnn_attention_forward", "_cudnn_attention_backward")}


def _call(name: str, **named):
    """Call an aten op by its schema's argument names (the positional order moved between torch releases)."""
    positional, keywords = _SIGNATURES[name]
    missing = [n for n, has_default in positional if n not in named and not has_default]
    if missing:
        raise TypeError(f"aten.{name}: no value for {missing}; its arguments: {positional} {keywords}")
    args = [named[n] for n, _ in positional if n in named]
    return getattr(torch.ops.aten, name)(*args, **{n: named[n] for n in keywords if n in named})


class CudnnVarlen(torch.autograd.Function):
    """Causal attention within documents through cuDNN's ragged (cumulative-length) kernels; q, k, v [T, H, D]."""

    @staticmethod
    def forward(ctx, q, k, v, cu, max_len: int, scale):
        res = _call("_cudnn_attention_forward", query=q, key=k, value=v, attn_bias=None, cum_seq_q=cu,
                    cum_seq_k=cu, max_q=max_len, max_k=max_len, compute_log_sumexp=True, dropout_p=0.0,
                    is_causal=True, return_debug_mask=False, scale=scale)
        out, lse, seed, offset = res[0], res[1], res[6], res[7]
        ctx.save_for_backward(q, k, v, out, lse, cu, seed, offset)
        ctx.max_len, ctx.scale = max_len, scale
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, out, lse, cu, seed, offset = ctx.saved_tensors
        dq, dk, dv = _call("_cudnn_attention_backward", grad_out=grad.contiguous(), query=q, key=k,
                           value=v, out=out, logsumexp=lse, philox_seed=seed, philox_offset=offset,
                           attn_bias=None, cum_seq_q=cu, cum_seq_k=cu,
                           max_q=ctx.max_len, max_k=ctx.max_len, dropout_p=0.0, is_causal=True, scale=ctx.scale)
        return dq, dk, dv, None, None, None


@torch.compiler.disable
def cudnn_varlen(q, k, v, cu, max_len, scale) -> torch.Tensor:
    """Drop-in for koe.model.attention._flash_varlen. Runs outside torch.compile's graph (one graph break per layer):
    torch 2.11 has no fake-tensor rule for the op's varlen form."""
    if q.shape[1] != k.shape[1]:
        k, v = (t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) for t in (k, v))
    return CudnnVarlen.apply(q, k, v, cu, max_len, scale)


def _inputs(rows: int, seed: int):
    from train_throughput import make_batches

    from koe.model.attention import cu_seqlens

    batch = make_batches(1, rows, 2048, 1000, seed=seed)[0]
    cu, max_len = cu_seqlens(batch["position_ids"])
    g = torch.Generator(device="cuda").manual_seed(seed)
    t = rows * 2048
    q, k, v = (torch.randn(t, h, 64, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_()
               for h in (14, 2, 2))
    return q, k, v, cu.cuda(), max_len


def _fwd_bwd(fn, q, k, v, grad):
    for t in (q, k, v):
        t.grad = None
    out = fn(q, k, v)
    out.backward(grad)
    return out.detach().float(), [t.grad.float() for t in (q, k, v)]


def check(seed: int = 1) -> dict:
    """Relative error of each backend's output and gradients against fp32 block-causal SDPA, 2 rows."""
    from koe.model.attention import _flash_varlen, _reference

    q, k, v, cu, max_len = _inputs(2, seed)
    grad = torch.randn_like(q)
    ref_out, ref_grads = _fwd_bwd(lambda a, b, c: _reference(a.float(), b.float(), c.float(), cu, None), q, k, v, grad)
    row = {}
    for name, fn in (("flash-varlen", lambda a, b, c: _flash_varlen(a, b, c, cu, max_len, None)),
                     ("cudnn-varlen", lambda a, b, c: cudnn_varlen(a, b, c, cu, max_len, None))):
        out, grads = _fwd_bwd(fn, q, k, v, grad)
        errs = [((x - r).norm() / r.norm()).item() for x, r in zip([out, *grads], [ref_out, *ref_grads], strict=True)]
        row[name] = dict(zip(("out", "dq", "dk", "dv"), errs, strict=True))
    return row


def time_ms(fn, q, k, v, grad, reps: int = 20) -> float:
    times = []
    for i in range(reps + 5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(q, k, v).backward(grad)
        end.record()
        end.synchronize()
        if i >= 5:
            times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def timings(rows: int = 16) -> dict:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from koe.model.attention import _flash_varlen

    q, k, v, cu, max_len = _inputs(rows, 0)
    grad = torch.randn_like(q)

    def dense(backend):
        def fn(a, b, c):
            a, b, c = (t.view(rows, 2048, -1, 64).transpose(1, 2) for t in (a, b, c))
            b, c = (t.repeat_interleave(7, dim=1) for t in (b, c))
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(a, b, c, is_causal=True).transpose(1, 2).reshape(-1, 14, 64)
        return fn

    out = {}
    for name, fn in (("flash-varlen (koe)", lambda a, b, c: _flash_varlen(a, b, c, cu, max_len, None)),
                     ("cudnn-varlen", lambda a, b, c: cudnn_varlen(a, b, c, cu, max_len, None)),
                     ("flash rows, causal", dense(SDPBackend.FLASH_ATTENTION)),
                     ("cudnn rows, causal", dense(SDPBackend.CUDNN_ATTENTION))):
        try:
            out[name] = round(time_ms(fn, q, k, v, grad), 3)
        except Exception as e:  # one backend missing must not lose the others
            out[name] = f"{type(e).__name__}: {str(e)[:200]}"
        print(json.dumps({"backend": name, "fwd_bwd_ms": out[name]}), flush=True)
    return out


def main() -> None:
    try:
        errors = check()
    except Exception as e:  # a failing backend must not lose the timings
        errors = f"{type(e).__name__}: {str(e)[:300]}"
    print(json.dumps({"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "check_rel_err": errors}),
          flush=True)
    timings()


if __name__ == "__main__":
    main()
