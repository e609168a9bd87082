"""How DDP reduces gradients: the accelerate kwargs handler `koe train` (and the benchmarks) pass to Accelerator.

    accelerator = Accelerator(kwargs_handlers=[ddp_kwargs(cfg.grad_reduce_dtype, torch.cuda.is_available())], ...)

`gradient_as_bucket_view` lets the gradients live in DDP's communication buckets instead of being copied into them
and back every step (one 2 GB copy each way for the Qwen2.5-0.5B shape; fp32 gradients either way).
`grad_reduce_dtype: bf16` registers PyTorch's bf16 compression hook (each bucket divided by the world size, cast to
bf16, all-reduced, cast back): half the bytes on the wire, for links slower than NVLink (PCIe, several machines).
It is off by default because on 2 x H200 with NVLink it made the step slower, 149.5 ms against 139.5 ms in fp32
(docs/performance.md): the cast kernels cost more than the halved transfer saves there. The handler only affects
DDP; accelerate ignores it under FSDP and DeepSpeed. The hook needs NCCL: on CPU (gloo) bf16 is refused up front.
"""

from __future__ import annotations

from accelerate.utils import DDPCommunicationHookType, DistributedDataParallelKwargs

from koe.stage import KoeInputError

GRAD_REDUCE_DTYPES = ("fp32", "bf16")


def ddp_kwargs(grad_reduce_dtype: str = "fp32", cuda: bool = True) -> DistributedDataParallelKwargs:
    """DDP settings: gradients as bucket views, and the bf16 compression hook when the reduction is bf16."""
    if grad_reduce_dtype not in GRAD_REDUCE_DTYPES:
        raise KoeInputError(f"grad_reduce_dtype={grad_reduce_dtype!r}: must be one of {GRAD_REDUCE_DTYPES}")
    if grad_reduce_dtype == "bf16" and not cuda:
        raise KoeInputError("unsupported: grad_reduce_dtype=bf16 needs CUDA and NCCL (torch's bf16 compression "
                            "hook); use fp32 on CPU")
    hook = DDPCommunicationHookType.BF16 if grad_reduce_dtype == "bf16" else DDPCommunicationHookType.NO
    return DistributedDataParallelKwargs(gradient_as_bucket_view=True, comm_hook=hook)
