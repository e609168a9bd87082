"""Training-step throughput: koe's step against a plain transformers loop, same model shape, same tokens, one process.

    python benchmarks/train_throughput.py                          # both shapes, every variant, on a GPU
    python benchmarks/train_throughput.py --variants plain,koe     # a subset
    python benchmarks/train_throughput.py --small                  # a tiny shape on CPU in seconds (a smoke test)

Models are randomly initialised Qwen2Configs with Qwen2.5-0.5B's body (hidden 896, 24 layers, 14 heads, 2 KV heads,
MLP 4864, tied embeddings) and two vocabularies: text+units (151,936 text ids + 500 units + 2 markers, ~494M
parameters) and units-only (500 units + markers, ~358M, the published single-GPU recipe's shape). Rows are packed
documents of 64..2048 tokens (koe.train.packing); each step takes the next of 8 different batches, so compiled
graphs see changing document boundaries as in training. Every loop keeps fp32 master weights under bf16 autocast.

Variants (`--variants`, comma-separated; each is a fresh model):
- plain: `model(input_ids, labels=input_ids)`, eager, SDPA causal over whole rows (documents see each other),
  torch.optim.AdamW defaults, torch clip_grad_norm_ (the baseline of the performance issue);
- koe: koe's default GPU path: the loss inside koe.train.loss.LossModel, compiled with the model, through
  accelerate; varlen flash attention from document boundaries (koe.model.attention); fused AdamW;
- koe-eager (no compile), koe-chunked (chunked linear cross-entropy, koe.train.fused), koe-eager-chunked,
  koe-sdpa / koe-flex (transformers' packed-sequence mask with SDPA / flex_attention), koe-mb16 / koe-mb24 (16 / 24
  rows per step), koe-mb16-autotune (16 rows, torch.compile mode "max-autotune-no-cudagraphs": inductor benchmarks
  matmul tiles and tunes the other kernels' launch configs, long compile), koe-mb16-cdt (16 rows, inductor's
  coordinate_descent_tuning alone: tunes the block sizes of the fused elementwise and reduction kernels, matmuls stay
  cuBLAS), koe-mb16-cudnn (16 rows, the varlen attention through cuDNN's kernels instead of FlashAttention-2,
  benchmarks/attention_backends.py), koe-mb16-liger (16 rows, the model's RMSNorm, SwiGLU MLP and RoPE replaced by
  Liger-Kernel's hand-written Triton kernels, still compiled: do they beat inductor's own fusions? CUDA and the
  liger-kernel package only), koe-mb16-liger-rope (the same with Liger's RoPE alone): koe with one or two things
  changed.

FLOPs: every loop is credited with the same work for the same tokens, koe.training.throughput.FlopCounter with the
documents' own lengths (6 x matmul params x tokens + 12 x layers x hidden x sum of squared document lengths), so
TFLOP/s and MFU compare as tokens/s do. MFU is against --peak-tflops, which defaults to the bf16 matmul rate this
script measures on the card first (8192^3, random data). Prints one table; --json writes the rows (after each row, so
a run cut short keeps what it measured); --profile DIR adds each row's device time per kernel kind (matmul, attention,
inductor's fused kernels, optimizer, other). Each row also keeps its first step's loss and gradient norm (same seed,
same initial weights, same first batch for rows of the same row count: a kernel swap must not change them) and, when
compiled, dynamo's graph-break count.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import inspect
import json
import time
import traceback

import numpy as np
import torch
from torch._dynamo.utils import counters
from transformers import AutoModelForCausalLM, Qwen2Config

from koe.model.init import resolve_attn_implementation, round_up
from koe.train.config import OptimConfig
from koe.train.packing import pack_documents
from koe.training.throughput import FlopCounter, segment_sq_sum

BODY = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
            intermediate_size=4864)
SHAPES = {"text+units": dict(BODY, vocab_size=round_up(151_936 + 500 + 2, 64)),
          "units": dict(BODY, vocab_size=round_up(500 + 4, 64))}
SMALL = {"small": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       intermediate_size=128, vocab_size=round_up(1000 + 500 + 2, 64))}
VARIANTS = {  # name: (attention, compile mode or inductor options (None = eager), fused loss, micro-batch factor)
    "koe": ("auto", "default", False, 1), "koe-eager": ("auto", None, False, 1),
    "koe-chunked": ("auto", "default", True, 1), "koe-eager-chunked": ("auto", None, True, 1),
    "koe-sdpa": ("sdpa", "default", False, 1), "koe-flex": ("flex_attention", "default", False, 1),
    "koe-mb16": ("auto", "default", False, 2), "koe-mb16-autotune": ("auto", "max-autotune-no-cudagraphs", False, 2),
    "koe-mb16-cdt": ("auto", {"coordinate_descent_tuning": True}, False, 2), "koe-mb24": ("auto", "default", False, 3),
    "koe-mb16-cudnn": ("cudnn", "default", False, 2), "koe-mb16-liger": ("auto", "default", False, 2),
    "koe-mb16-liger-rope": ("auto", "default", False, 2),
}
LIGER = {"koe-mb16-liger": True, "koe-mb16-liger-rope": False}  # Liger RoPE; True: RMSNorm and MLP modules too


def make_batches(n_batches: int, n_rows: int, seq_len: int, vocab: int, seed: int = 0) -> list[dict]:
    """`n_batches` batches of `n_rows` packed rows of random documents of 64..seq_len tokens."""
    rng = np.random.default_rng(seed)
    lengths: list[int] = []
    while sum(lengths) < n_batches * n_rows * seq_len:
        lengths.append(int(rng.integers(64, seq_len)))
    tokens = rng.integers(0, vocab, size=sum(lengths)).astype(np.uint32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    modality = np.ones(len(tokens), np.uint8)
    packed = pack_documents(tokens, modality, offsets, seq_len, pad_id=0)
    rows = {k: torch.from_numpy(v.astype(np.int64)) for k, v in packed.items()}
    return [{k: v[i * n_rows:(i + 1) * n_rows] for k, v in rows.items()} for i in range(n_batches)]


def build_model(shape: dict, attn: str, seq_len: int) -> torch.nn.Module:
    torch.manual_seed(0)
    config = Qwen2Config(**copy.deepcopy(shape), tie_word_embeddings=True, max_position_embeddings=max(seq_len, 128))
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=torch.float32)


def koe_step(shape: dict, args, device, attn: str, compile_mode: str | dict | None, fused: bool, patch=None,
             first: dict | None = None):
    """koe's training step as `koe train` runs it (forward_backward, accelerate with koe's DDP settings, clip, fused
    AdamW); `compile_mode` is a torch.compile mode, a dict of inductor options, or None = eager. `args.grad_reduce`
    picks the DDP all-reduce dtype (koe.train.distributed). `patch(model)` edits the fresh model in place before the
    optimizer sees it; `first` receives the first step's loss and gradient norm (one host sync, in the warm-up)."""
    from accelerate import Accelerator

    from koe.train.distributed import ddp_kwargs
    from koe.train.loss import LossModel, forward_backward
    from koe.train.optim import build_optimizer

    handler = ddp_kwargs(getattr(args, "grad_reduce", "fp32"), device.type == "cuda")
    accelerator = Accelerator(mixed_precision=args.precision, cpu=device.type == "cpu", kwargs_handlers=[handler])
    model = build_model(shape, resolve_attn_implementation(attn), args.seq_len)
    if patch is not None:
        patch(model)
    optimizer, _ = build_optimizer(model, OptimConfig(lr=1e-4), fused=device.type == "cuda")
    loss_model = LossModel(model, fused=fused)
    if isinstance(compile_mode, dict):
        loss_model = torch.compile(loss_model, options=compile_mode)
    elif compile_mode:
        loss_model = torch.compile(loss_model, mode=compile_mode)
    loss_model, optimizer = accelerator.prepare(loss_model, optimizer)

    def step(batch):
        sums = forward_backward(loss_model, [batch], accelerator)
        norm = accelerator.clip_grad_norm_(loss_model.parameters(), 1.0)
        if first is not None and not first:
            first.update(loss=float(sums[0].sum() / sums[1].sum()), grad_norm=float(norm))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, model


def plain_step(shape: dict, args, device, first: dict | None = None):
    """The baseline: a plain transformers loop (labels=input_ids), eager, SDPA, default AdamW."""
    model = build_model(shape, "sdpa", args.seq_len).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch):
        ids = batch["input_ids"].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if first is not None and not first:
            first.update(loss=float(loss), grad_norm=float(norm))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, model


def time_steps(step, batches: list[dict], args, device) -> float:
    """Seconds per step: warm-up steps (compilation, recompilation for new boundaries) untimed, then the mean."""
    for i in range(args.warmup):
        step(batches[i % len(batches)])
    _sync(device)
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(batches[(args.warmup + i) % len(batches)])
    _sync(device)
    return (time.perf_counter() - t0) / args.steps


KERNEL_KINDS = (("attention", ("flash", "fmha", "sdpa")), ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "cublas")),
                ("optimizer", ("multi_tensor", "adam")), ("inductor", ("triton",)), ("nccl", ("nccl",)))


def profile_steps(step, batches: list[dict], name: str, out_dir: str) -> dict:
    """Device milliseconds per step by kernel kind over 2 profiled steps; the top kernels go to out_dir. Why: tells
    whether the step is bound by matmuls or by the fused elementwise/reduction kernels around them."""
    from torch.profiler import ProfilerActivity, profile

    n = 2
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(n):
            step(batches[i % len(batches)])
        torch.cuda.synchronize()
    kinds = dict.fromkeys([k for k, _ in KERNEL_KINDS] + ["other"], 0.0)
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        low = e.name.lower()
        kind = next((k for k, keys in KERNEL_KINDS if any(key in low for key in keys)), "other")
        kinds[kind] += e.time_range.elapsed_us() / 1e3 / n
    table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=40, max_name_column_width=100)
    with open(f"{out_dir}/profile_{name}.txt", "w") as f:
        f.write(table)
    return {k: round(v, 2) for k, v in kinds.items()}


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_peak_tflops() -> float:
    """bf16 matmul rate of the card (8192^3, random inputs, median of 20 after warm-up)."""
    a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    times = []
    for i in range(25):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        if i >= 5:
            times.append(start.elapsed_time(end) / 1e3)
    return 2 * 8192**3 / float(np.median(times)) / 1e12


@contextlib.contextmanager
def attention_kernel(attn: str):
    """attn "cudnn": koe's varlen attention through cuDNN's kernels (benchmarks/attention_backends.py) for the
    duration of one variant; any other value is passed through."""
    if attn != "cudnn":
        yield attn
        return
    from attention_backends import cudnn_varlen

    import koe.model.attention as koe_attention

    saved, koe_attention._flash_varlen = koe_attention._flash_varlen, cudnn_varlen
    try:
        yield "auto"
    finally:
        koe_attention._flash_varlen = saved


@contextlib.contextmanager
def liger_kernels(enabled: bool, modules: bool, device):
    """When enabled: Qwen2's rotary embedding goes through Liger-Kernel's Triton RoPE for the duration of one variant
    (the module-level function the attention calls), and with `modules` the yielded `swap_liger_modules` replaces the
    model's RMSNorm and MLP modules; otherwise yields None. Liger's kernels are Triton GPU kernels: CUDA only."""
    if not enabled:
        yield None
        return
    if device.type != "cuda":
        raise RuntimeError("the Liger-Kernel variants need a CUDA device (Triton GPU kernels); this run is on "
                           f"{device.type}")
    try:
        from liger_kernel.ops import LigerRopeFunction
    except ImportError as e:
        raise RuntimeError(f"the Liger-Kernel variants need the liger-kernel package ({e})") from e
    from transformers.models.qwen2 import modeling_qwen2

    def rope(q, k, cos, sin, unsqueeze_dim=1):
        return LigerRopeFunction.apply(q, k, cos, sin, None, unsqueeze_dim, None)

    saved = modeling_qwen2.apply_rotary_pos_emb
    if "apply_rotary_pos_emb(" in inspect.getsource(modeling_qwen2.Qwen2Attention.forward):
        modeling_qwen2.apply_rotary_pos_emb = rope
    else:  # the RMSNorm and MLP swaps still measure something
        print("liger: Qwen2Attention.forward does not call the module-level apply_rotary_pos_emb; RoPE stays "
              "inductor's", flush=True)
    try:
        yield swap_liger_modules if modules else None
    finally:
        modeling_qwen2.apply_rotary_pos_emb = saved


def swap_liger_modules(model: torch.nn.Module) -> None:
    """Replace every Qwen2 RMSNorm and MLP by Liger-Kernel's modules sharing the same parameters (so the initial
    weights stay those of the seed). RMSNorm keeps dY intact (in_place=False): the in-place backward is known to go
    wrong where the incoming gradient is still needed, as the residual stream's is."""
    from liger_kernel.transformers import LigerRMSNorm, LigerSwiGLUMLP
    from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP, Qwen2RMSNorm

    for name, module in list(model.named_modules()):
        if isinstance(module, Qwen2RMSNorm):
            with torch.device("meta"):
                new = LigerRMSNorm(module.weight.numel(), eps=module.variance_epsilon, in_place=False)
            new.weight = module.weight
        elif isinstance(module, Qwen2MLP):
            with torch.device("meta"):
                new = LigerSwiGLUMLP(model.config)
            new.gate_proj, new.up_proj, new.down_proj = module.gate_proj, module.up_proj, module.down_proj
        else:
            continue
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)


def run_variant(name: str, shape_name: str, shape: dict, args, device, peak: float) -> dict:
    attn, mode, fused, factor = VARIANTS.get(name, ("sdpa", None, False, 1))
    with attention_kernel(attn) as attn, liger_kernels(name in LIGER, LIGER.get(name, False), device) as patch:
        return _run_variant(name, shape_name, shape, args, device, peak, attn, mode, fused, factor, patch)


def _run_variant(name: str, shape_name: str, shape: dict, args, device, peak: float, attn: str, mode, fused: bool,
                 factor: int, patch) -> dict:
    batches = make_batches(8, args.micro_batch * factor, args.seq_len, shape["vocab_size"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    compiled = name != "plain" and mode is not None and device.type == "cuda"
    counters.clear()
    first: dict = {}
    t_build = time.perf_counter()
    step, model = plain_step(shape, args, device, first) if name == "plain" else \
        koe_step(shape, args, device, attn, mode if device.type == "cuda" else None, fused, patch, first)
    flops = FlopCounter.from_model(model)
    params = sum(p.numel() for p in model.parameters())
    seconds = time_steps(step, batches, args, device)
    warm_s = time.perf_counter() - t_build - seconds * args.steps
    order = [(args.warmup + i) % len(batches) for i in range(args.steps)]
    step_flops = np.mean([flops.step_flops(batches[i]["input_ids"].numel(), segment_sq_sum(batches[i]["position_ids"]))
                          for i in order])
    tokens = batches[0]["input_ids"].numel()
    peak_mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    tflops = step_flops / seconds / 1e12
    kernel_ms = profile_steps(step, batches, name, args.profile) if args.profile and device.type == "cuda" else {}
    breaks = counters["graph_break"]
    return {"shape": shape_name, "variant": name, "params_m": params / 1e6, "rows": batches[0]["input_ids"].shape[0],
            "tokens_per_s": tokens / seconds, "tflops": tflops, "mfu": tflops / peak, "peak_gib": peak_mem,
            "step_ms": seconds * 1e3, "warmup_s": warm_s, "first_loss": first["loss"],
            "first_grad_norm": first["grad_norm"], **({"kernel_ms": kernel_ms} if kernel_ms else {}),
            **({"graph_breaks": sum(breaks.values()), "break_reasons": [r[:200] for r in list(breaks)[:3]]}
               if compiled else {})}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny shape on CPU, fp32")
    p.add_argument("--shapes", default="text+units,units")
    p.add_argument("--variants", default="plain,koe,koe-eager,koe-chunked,koe-eager-chunked,koe-sdpa,koe-flex,koe-mb16")
    p.add_argument("--units-variants", default="plain,koe", help="variants for the units-only shape")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--peak-tflops", type=float, default=0.0, help="per-GPU bf16 peak (0 = measure it)")
    p.add_argument("--json", default="", help="write the rows here")
    p.add_argument("--profile", default="", help="after timing, profile 2 steps: device ms per kernel kind in each "
                   "row, the top kernels in DIR/profile_<variant>.txt")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.small else "cpu")
    shapes = {k: SHAPES[k] for k in args.shapes.split(",")}
    args.precision = "bf16"
    if args.small:
        shapes, args.seq_len, args.micro_batch, args.steps, args.warmup, args.precision = SMALL, 256, 2, 3, 2, "no"
        torch.set_num_threads(1)
    else:
        torch.set_float32_matmul_precision("high")
    peak = args.peak_tflops or (measure_peak_tflops() if device.type == "cuda" else 1.0)
    print(f"device={torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'} torch={torch.__version__} "
          f"seq_len={args.seq_len} micro_batch={args.micro_batch} steps={args.steps} warmup={args.warmup} "
          f"peak={peak:.0f} TFLOP/s", flush=True)
    rows = []
    for shape_name, shape in shapes.items():
        names = args.variants if shape_name == "text+units" or args.small else args.units_variants
        for name in names.split(","):
            try:
                row = run_variant(name, shape_name, shape, args, device, peak)
            except Exception as e:  # an OOM or a missing kernel must not lose the other rows
                traceback.print_exc()
                row = {"shape": shape_name, "variant": name, "error": f"{type(e).__name__}: {str(e)[:120]}"}
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"peak_tflops": peak, "rows": rows}, f, indent=1)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    base = {r["shape"]: r["tokens_per_s"] for r in rows if r["variant"] == "plain" and "error" not in r}
    print(f"\n{'shape':<11} {'variant':<17} {'params':>7} {'rows':>4} {'tokens/s':>9} {'x plain':>7} {'TFLOP/s':>8} "
          f"{'MFU':>6} {'peak GiB':>8} {'warm-up s':>9} {'first loss':>10} {'grad norm':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['shape']:<11} {r['variant']:<17} {r['error']}")
            continue
        ratio = r["tokens_per_s"] / base[r["shape"]] if r["shape"] in base else float("nan")
        print(f"{r['shape']:<11} {r['variant']:<17} {r['params_m']:>6.0f}M {r['rows']:>4} {r['tokens_per_s']:>9.0f} "
              f"{ratio:>6.2f}x {r['tflops']:>8.1f} {r['mfu']:>6.1%} {r['peak_gib']:>8.1f} {r['warmup_s']:>9.1f} "
              f"{r['first_loss']:>10.5f} {r['first_grad_norm']:>9.4f}")


if __name__ == "__main__":
    main()
