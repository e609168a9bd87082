"""Document-masked attention for packed rows through PyTorch's own varlen flash-attention (no flash-attn package).

    cu, max_len = cu_seqlens(batch["position_ids"])       # on the CPU batch, before it goes to the GPU
    model = AutoModelForCausalLM.from_config(config, attn_implementation=VARLEN)   # after register_varlen()
    model(input_ids=..., position_ids=..., **varlen_kwargs(cu, max_len))

Why: with packed rows, transformers' SDPA path builds a dense block-causal mask per row ([B, 1, L, L]) and SDPA
then falls back from its flash kernel to the slower masked kernel; `flex_attention` builds a block mask on every
forward. `torch.nn.attention.varlen.varlen_attn` (torch >= 2.10) runs flash-attention's varlen kernels on the
flattened batch with the document boundaries given as cumulative lengths, which computes exactly the block-causal
attention and skips every masked block. The boundaries come from `position_ids` (a document starts where its
position is 0), computed on the CPU by the data path, so the step needs no host-device synchronisation.

The kwargs use transformers' flash-attention names (`cu_seq_lens_q`, ...), so the same batch also drives
`flash_attention_2` when flash-attn is installed. On the CPU, or without bf16/fp16 inputs, the function computes the
same attention with SDPA and an explicit block-causal mask (the reference the tests compare against).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

VARLEN = "koe_varlen"


def varlen_available() -> bool:
    """True when torch has `varlen_attn` and a CUDA device is present."""
    if not torch.cuda.is_available():
        return False
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


def cu_seqlens(position_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cumulative document lengths over the flattened [B * L] batch (int32) and the row length (an upper bound on
    every document's length, so the value never changes between steps and a compiled graph never recompiles)."""
    flat = position_ids.reshape(-1)
    starts = torch.nonzero(flat == 0, as_tuple=True)[0]
    if len(starts) == 0 or starts[0] != 0:  # every row starts a segment, whatever its first position says
        starts = torch.cat([torch.zeros(1, dtype=starts.dtype), starts])
    row_starts = torch.arange(0, flat.numel(), position_ids.shape[-1])
    starts = torch.unique(torch.cat([starts, row_starts]))
    cu = torch.cat([starts, torch.tensor([flat.numel()])]).to(torch.int32)
    return cu, int(position_ids.shape[-1])


def varlen_kwargs(cu: torch.Tensor, max_len: int) -> dict:
    """The model-call kwargs that carry the boundaries down to every attention layer."""
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": max_len, "max_length_k": max_len}


def varlen_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                     cu_seq_lens_q: torch.Tensor | None = None, max_length_q: int | None = None,
                     **kwargs) -> tuple[torch.Tensor, None]:
    """transformers attention interface: q [B, Hq, L, D], k/v [B, Hkv, L, D] -> out [B, L, Hq, D]."""
    if cu_seq_lens_q is None:
        raise ValueError(f"attn_implementation={VARLEN!r} needs cu_seq_lens_q/max_length_q in the model call "
                         f"(koe.model.attention.varlen_kwargs); use 'sdpa' for generation")
    if dropout:
        raise ValueError(f"attn_implementation={VARLEN!r} does not implement attention dropout")
    b, hq, length, d = query.shape
    q, k, v = (t.transpose(1, 2).reshape(b * length, t.shape[1], d) for t in (query, key, value))
    dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else q.dtype
    if q.is_cuda and dtype in (torch.bfloat16, torch.float16):
        out = _flash_varlen(q.to(dtype), k.to(dtype), v.to(dtype), cu_seq_lens_q, max_length_q or length, scaling)
    else:
        out = _reference(q, k, v, cu_seq_lens_q, scaling)
    return out.view(b, length, hq, d), None


def _flash_varlen(q, k, v, cu, max_len, scale) -> torch.Tensor:
    from torch.nn.attention.varlen import varlen_attn

    params = inspect.signature(varlen_attn).parameters
    if q.shape[1] != k.shape[1] and "enable_gqa" not in params:
        k, v = (t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) for t in (k, v))
    extra = {"enable_gqa": True} if q.shape[1] != k.shape[1] else {}
    extra.update({"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True})
    if "scale" in params:
        extra["scale"] = scale
    return varlen_attn(q, k, v, cu, cu, max_len, max_len, **extra)


def _reference(q, k, v, cu, scale) -> torch.Tensor:
    """Block-causal SDPA over the flattened batch: exact, O(T^2) memory, for CPUs and tests."""
    total = q.shape[0]
    seg = torch.searchsorted(cu.to(q.device, torch.int64), torch.arange(total, device=q.device), right=True)
    idx = torch.arange(total, device=q.device)
    mask = (seg[:, None] == seg[None, :]) & (idx[:, None] >= idx[None, :])
    k, v = (t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) for t in (k, v))
    out = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), attn_mask=mask,
                                         scale=scale)
    return out.transpose(0, 1)


def _no_mask(*args, **kwargs) -> None:
    """The varlen kernels take the boundaries, not a mask: transformers must not build one."""
    return None


def register_varlen() -> str:
    """Register the attention function (and its mask builder) with transformers under the name VARLEN."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(VARLEN, varlen_attention)
    AttentionMaskInterface.register(VARLEN, _no_mask)
    return VARLEN
