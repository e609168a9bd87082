"""Masked next-token loss, per-modality sums, and one optimiser step's worth of forward/backward passes.

    loss_model = LossModel(hf_model)                              # what accelerate prepares and torch.compile wraps
    sums = forward_backward(loss_model, micro_batches, accelerator)   # grads hold d(mean token loss)/dw
    loss = sums[0].sum() / sums[1].sum()                          # the same mean, every process agrees

The loss of a step is the sum of token losses divided by the number of target tokens in the whole step (all
micro-batches on all processes), not a mean of per-micro-batch means: with padding or short documents the
micro-batches hold different numbers of targets, and averaging means would weight their tokens unequally and make
the gradient depend on how a batch is split across accumulation steps and processes.

`LossModel` puts the loss inside the module that DDP/FSDP and torch.compile wrap, so the compiled graph covers the
loss too (inductor fuses the fp32 upcast into the softmax kernels: no fp32 copy of the 152k-vocabulary logits) and
the model never returns logits (accelerate's bf16 wrapper would upcast them to fp32, +12 GB). With `fused=True` the
output projection and cross-entropy run chunked (koe.train.fused) and never hold the whole logits, which saves
memory without compile; it falls back to the plain path when the head is not a plain linear layer (a bias, logit
soft-capping or scaling, a peft wrapper).
Nothing in a step reads a device value on the host: target counts come from the CPU batch, and the per-modality
sums stay on the device until the caller logs them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from koe.model.attention import VARLEN, cu_seqlens, varlen_kwargs
from koe.train.fused import linear_cross_entropy
from koe.train.packing import IGNORE

NUM_MODALITIES = 3  # koe.data.shards: TEXT, SPEECH, MARKER (of the target token)
BOUNDARY_ATTENTION = (VARLEN, "flash_attention_2", "flash_attention_3")  # take cu_seq_lens kwargs
_SCALED_HEAD_ATTRS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each position's prediction of the next label, in fp32; 0 where the label is ignored.

    logits [B, L, V], labels [B, L] (HF convention) -> losses [B, L-1].
    """
    targets = labels[:, 1:]
    ce = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE,
                         reduction="none")
    return ce.view_as(targets)


def supports_fused_loss(model: torch.nn.Module) -> bool:
    """The chunked loss reproduces `model(...).logits` only for a plain bias-free linear head on the decoder output."""
    head = model.get_output_embeddings()
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    plain_head = type(head) is torch.nn.Linear and head.bias is None
    return plain_head and hasattr(model, "get_decoder") and not any(
        getattr(config, a, None) not in (None, 1, 1.0) for a in _SCALED_HEAD_ATTRS)


class LossModel(torch.nn.Module):
    """A causal LM whose forward returns (sum of token losses, per-token losses [B, L-1]) instead of logits."""

    def __init__(self, model: torch.nn.Module, fused: bool = False):
        super().__init__()
        self.model = model
        self.fused = fused and supports_fused_loss(model)
        self._no_split_modules = getattr(model, "_no_split_modules", None)  # accelerate's FSDP auto-wrap reads it
        self.needs_boundaries = model.config._attn_implementation in BOUNDARY_ATTENTION

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, labels: torch.Tensor,
                **attn_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        b, length = input_ids.shape
        targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE).reshape(-1)
        if self.fused:
            hidden = self.model.get_decoder()(input_ids=input_ids, position_ids=position_ids, use_cache=False,
                                              **attn_kwargs).last_hidden_state
            dtype = torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type) \
                else hidden.dtype
            loss_sum, losses = linear_cross_entropy(hidden.reshape(b * length, -1),
                                                    self.model.get_output_embeddings().weight, targets, dtype)
        else:
            logits = self.model(input_ids=input_ids, position_ids=position_ids, use_cache=False,
                                **attn_kwargs).logits
            losses = F.cross_entropy(logits.reshape(b * length, -1).float(), targets, ignore_index=IGNORE,
                                     reduction="none")
            loss_sum = losses.sum()
        return loss_sum, losses.detach().view(b, length)[:, :-1]


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device, boundaries: bool) -> dict:
    """The LossModel kwargs of a CPU batch: tensors on `device`, plus the document boundaries (computed on the CPU,
    before the copy) when the attention takes them; other attention finds them from position_ids itself."""
    out = {k: to_device(batch[k], device) for k in ("input_ids", "position_ids", "labels")}
    if not boundaries:
        return out
    cu, max_len = cu_seqlens(batch["position_ids"])
    return {**out, **varlen_kwargs(to_device(cu, device), max_len)}


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy through pinned memory: a copy from pageable memory waits for the GPU queue, so the host could not run
    ahead of the device while it still works on the previous step."""
    if device.type == "cuda" and t.device.type == "cpu":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def needs_boundaries(loss_model: torch.nn.Module) -> bool:
    """Whether a (possibly DDP-, FSDP- or compile-wrapped) LossModel's attention takes cu_seq_lens kwargs."""
    inner = getattr(loss_model, "module", loss_model)  # DDP wraps in .module; torch.compile forwards attributes
    return bool(getattr(inner, "needs_boundaries", False))


def modality_sums(losses: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """[2, 3] tensor: summed loss and target count per modality of the target token (no host synchronisation)."""
    mask = labels[:, 1:] != IGNORE
    onehot = (modality[:, 1:, None] == torch.arange(NUM_MODALITIES, device=modality.device)) & mask[..., None]
    onehot = onehot.flatten(0, 1).double()
    return torch.stack([losses.flatten().double() @ onehot, onehot.sum(0)])


def count_targets(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def forward_backward(loss_model: torch.nn.Module, micro_batches: list[dict[str, torch.Tensor]],
                     accelerator) -> torch.Tensor:
    """Run forward and backward over one step's micro-batches; return the [2, 3] modality sums of all processes.

    `loss_model` is a (prepared) LossModel. Each micro-batch contributes `sum(token losses) / total_targets`,
    where total_targets counts the whole step on every process. accelerate divides by `gradient_accumulation_steps`
    and DDP averages over processes, so the loss handed to `backward` is multiplied back by both: the resulting
    gradient is exactly that of the mean over all target tokens of the step, however the step is split.
    """
    device = accelerator.device
    local = to_device(torch.tensor([float(sum(count_targets(b) for b in micro_batches))]), device)
    total = accelerator.reduce(local, reduction="sum").clamp(min=1.0)
    scale = accelerator.num_processes * accelerator.gradient_accumulation_steps / total
    sums = torch.zeros(2, NUM_MODALITIES, dtype=torch.float64, device=device)
    boundaries = needs_boundaries(loss_model)
    for batch in micro_batches:
        inputs = model_inputs(batch, device, boundaries)
        with accelerator.accumulate(loss_model):
            loss_sum, losses = loss_model(**inputs)
            accelerator.backward(loss_sum * scale)
        sums += modality_sums(losses, inputs["labels"], to_device(batch["modality"], device))
    return accelerator.reduce(sums, reduction="sum")


@torch.no_grad()
def evaluate(loss_model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], accelerator) -> torch.Tensor:
    """[2, 3] modality sums of the eval batches of all processes (no gradients, model in eval mode)."""
    was_training = loss_model.training
    loss_model.eval()
    sums = torch.zeros(2, NUM_MODALITIES, dtype=torch.float64, device=accelerator.device)
    boundaries = needs_boundaries(loss_model)
    for batch in batches:
        inputs = model_inputs(batch, accelerator.device, boundaries)
        _, losses = loss_model(**inputs)
        sums += modality_sums(losses, inputs["labels"], to_device(batch["modality"], accelerator.device))
    loss_model.train(was_training)
    return accelerator.reduce(sums, reduction="sum")


def summarise(sums: torch.Tensor, prefix: str = "") -> dict[str, float]:
    """Mean loss overall and per target modality (text, speech, marker); NaN-free: absent modalities are left out."""
    s = sums.double().cpu()
    out = {f"{prefix}loss": float(s[0].sum() / s[1].sum().clamp(min=1))}
    for m, name in enumerate(("text", "speech", "marker")):
        if s[1, m] > 0:
            out[f"{prefix}loss_{name}"] = float(s[0, m] / s[1, m])
    out[f"{prefix}targets"] = int(s[1].sum())
    return out
