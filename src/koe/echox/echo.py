"""The stage-III model: S2T + echo decoder (initialised from the T2C) + denoising adapter.

    echo = EchoModel.create(s2t, "runs/echox/t2c/final", denoise=True)
    loss, parts = echo.loss(examples, [(x_prime_ids, y_prime_units), ...])
    prefix = echo.prefix(hidden_states_of_response)       # what the echo decoder reads at inference

The echo decoder reads the LLM's hidden states H of the response: through the denoising adapter (into the
text-embedding space the T2C was trained on) and the T2C's Linear adapter; without the denoising adapter
(`denoise=False`, the ablation) H goes straight into that Linear.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from koe.echox.losses import DenoisingAdapter, denoising_loss, t2c_loss, total_loss
from koe.echox.t2c import T2C


class EchoModel(nn.Module):
    def __init__(self, s2t, decoder: T2C, denoiser: DenoisingAdapter | None):
        super().__init__()
        self.s2t, self.decoder, self.denoiser = s2t, decoder, denoiser

    @classmethod
    def create(cls, s2t, t2c_dir: str | Path, denoise: bool = True) -> EchoModel:
        decoder = T2C.load(t2c_dir)
        for p in decoder.parameters():
            p.requires_grad_(True)
        decoder.text_embed.weight.requires_grad_(False)
        dim = s2t.llm_dim
        return cls(s2t, decoder, DenoisingAdapter(dim, decoder.text_embed.weight.shape[1]) if denoise else None)

    @classmethod
    def load(cls, directory: str | Path) -> EchoModel:
        from koe.s2t.model import SpeechAwareLM

        d = Path(directory)
        spec = json.loads((d / "echo.json").read_text())
        s2t = SpeechAwareLM.load(d / "s2t")
        model = cls.create(s2t, d / "decoder", spec["denoise"])
        if model.denoiser is not None:
            model.denoiser.load_state_dict(load_file(str(d / "denoise.safetensors")))
        return model.eval()

    def prefix(self, hidden: torch.Tensor) -> torch.Tensor:
        """Response hidden states [T, dim] -> the echo decoder's input in text-embedding space."""
        return self.denoiser(hidden) if self.denoiser is not None else hidden

    def forward(self, examples, labels: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, dict[str, float]]:
        """The training step's loss (what accelerate wraps in autocast): loss(examples, labels)."""
        return self.loss(examples, labels)

    def loss(self, examples, labels: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, dict[str, float]]:
        """total_loss(L_S2T, L_unit + w * L_den) on one batch of spoken questions with pseudo labels (x', Y')."""
        import dataclasses

        l_s2t, _ = self.s2t.loss(self.s2t.batch(examples))
        echo_examples = [dataclasses.replace(e, target=self.s2t.decode(x)) for e, (x, _) in zip(examples, labels,
                                                                                              strict=True)]
        batch = self.s2t.batch(echo_examples)
        hidden = self.s2t.hidden_states(batch)
        per_item = [hidden[i, pos] for i, pos in enumerate(batch.target_positions)]
        prefixes = [self.prefix(h) for h in per_item]
        l_unit = self.decoder.loss(prefixes, [y for _, y in labels])
        l_den = None
        if self.denoiser is not None:
            n = max(p.shape[0] for p in prefixes)
            mapped = prefixes[0].new_zeros(len(prefixes), n, prefixes[0].shape[1])
            target = torch.zeros_like(mapped)
            mask = torch.zeros(len(prefixes), n, dtype=torch.bool, device=mapped.device)
            for i, (p, ids) in enumerate(zip(prefixes, batch.target_ids, strict=True)):
                mapped[i, : p.shape[0]], mask[i, : p.shape[0]] = p, True
                target[i, : p.shape[0]] = self.decoder.text_prefix(ids)
            l_den = denoising_loss(mapped, target, mask)
        l_t2c, w = t2c_loss(l_unit, l_den)
        total = total_loss(l_s2t, l_t2c)
        parts = {"l_s2t": float(l_s2t.detach()), "l_unit": float(l_unit.detach()), "w": w,
                 "l_t2c": float(l_t2c.detach())}
        if l_den is not None:
            parts["l_den"] = float(l_den.detach())
        return total, parts
