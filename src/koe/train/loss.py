"""Masked next-token loss, per-modality sums, and one optimiser step's worth of forward/backward passes.

    sums = forward_backward(model, micro_batches, accelerator)   # grads now hold d(mean token loss)/dw
    loss = sums[0].sum() / sums[1].sum()                          # the same mean, every process agrees

The loss of a step is the sum of token losses divided by the number of target tokens in the whole step (all
micro-batches on all processes), not a mean of per-micro-batch means: with padding or short documents the
micro-batches hold different numbers of targets, and averaging means would weight their tokens unequally and make
the gradient depend on how a batch is split across accumulation steps and processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from koe.train.packing import IGNORE

NUM_MODALITIES = 3  # koe.data.shards: TEXT, SPEECH, MARKER (of the target token)


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each position's prediction of the next label, in fp32; 0 where the label is ignored.

    logits [B, L, V], labels [B, L] (HF convention) -> losses [B, L-1].
    """
    targets = labels[:, 1:]
    ce = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE,
                         reduction="none")
    return ce.view_as(targets)


def modality_sums(losses: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """[2, 3] tensor: summed loss and target count per modality of the target token."""
    mask = labels[:, 1:] != IGNORE
    mod = modality[:, 1:]
    out = torch.zeros(2, NUM_MODALITIES, dtype=torch.float64, device=losses.device)
    for m in range(NUM_MODALITIES):
        sel = mask & (mod == m)
        out[0, m] = losses[sel].sum().double()
        out[1, m] = sel.sum()
    return out


def count_targets(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def forward_backward(model: torch.nn.Module, micro_batches: list[dict[str, torch.Tensor]], accelerator) -> torch.Tensor:
    """Run forward and backward over one step's micro-batches; return the [2, 3] modality sums of all processes.

    Each micro-batch contributes `sum(token losses) / total_targets`, where total_targets counts the whole step on
    every process. accelerate divides by `gradient_accumulation_steps` and DDP averages over processes, so the loss
    handed to `backward` is multiplied back by both: the resulting gradient is exactly that of the mean over all
    target tokens of the step, however the step is split.
    """
    device = accelerator.device
    local = torch.tensor([float(sum(count_targets(b) for b in micro_batches))], device=device)
    total = accelerator.reduce(local, reduction="sum").clamp(min=1.0)
    scale = accelerator.num_processes * accelerator.gradient_accumulation_steps / total
    sums = torch.zeros(2, NUM_MODALITIES, dtype=torch.float64, device=device)
    for batch in micro_batches:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with accelerator.accumulate(model):
            logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
            losses = token_losses(logits, batch["labels"])
            accelerator.backward(losses.sum() * scale)
        sums += modality_sums(losses.detach(), batch["labels"], batch["modality"])
    return accelerator.reduce(sums, reduction="sum")


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], accelerator) -> torch.Tensor:
    """[2, 3] modality sums of the eval batches of all processes (no gradients, model in eval mode)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(2, NUM_MODALITIES, dtype=torch.float64, device=accelerator.device)
    for batch in batches:
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        sums += modality_sums(token_losses(logits, batch["labels"]), batch["labels"], batch["modality"])
    model.train(was_training)
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
