"""T2C (stage II): a small Llama that turns text (or LLM hidden states) into unit-language tokens.

    t2c = T2C.create(text_embeddings=s2t.llm.get_input_embeddings(), unit_language=ul, hidden_size=128, layers=2)
    loss = t2c.loss([t2c.text_prefix(ids) for ids in texts], [ul.encode(u) for u in units])
    ids = t2c.generate(t2c.text_prefix(ids), max_new_tokens=200)

Input side: the S2T LLM's text embeddings (a frozen copy: the space the denoising adapter of stage III aims at), then
a Linear adapter into the T2C width; echo training feeds LLM hidden states (through the denoising adapter) to the same
Linear. Output side: the Llama's own vocabulary is the unit language plus <sos> and <eos>. Saved as a folder with
`lm/` (plain HF Llama dir), `t2c.safetensors` (frozen text embeddings + Linear adapter), `t2c.json`, and the unit
language files.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from koe.echox.unit_language import UnitLanguage


class T2C(nn.Module):
    def __init__(self, lm: nn.Module, text_embed: nn.Embedding, unit_language: UnitLanguage):
        super().__init__()
        self.lm, self.text_embed, self.unit_language = lm, text_embed, unit_language
        self.text_embed.weight.requires_grad_(False)
        hidden = lm.get_input_embeddings().weight.shape[1]
        self.in_proj = nn.Linear(text_embed.weight.shape[1], hidden)
        self.sos, self.eos = unit_language.vocab_size, unit_language.vocab_size + 1

    @classmethod
    def create(cls, text_embeddings: nn.Embedding, unit_language: UnitLanguage, hidden_size: int = 128,
               num_layers: int = 2, num_heads: int = 4, seed: int = 0) -> T2C:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=unit_language.vocab_size + 2, hidden_size=hidden_size,
                          intermediate_size=3 * hidden_size, num_hidden_layers=num_layers,
                          num_attention_heads=num_heads,
                          num_key_value_heads=num_heads, max_position_embeddings=2048, bos_token_id=None,
                          eos_token_id=unit_language.vocab_size + 1, pad_token_id=unit_language.vocab_size + 1)
        weight = text_embeddings.weight.detach().clone()
        return cls(LlamaForCausalLM(cfg), nn.Embedding.from_pretrained(weight, freeze=True), unit_language)

    def text_prefix(self, text_ids: list[int]) -> torch.Tensor:
        """Frozen text embeddings of the ids [T, text_dim] (stage II input; the target space of L_den)."""
        return self.text_embed(torch.tensor(text_ids, dtype=torch.long, device=self.text_embed.weight.device))

    def _sequence(self, prefix: torch.Tensor, targets: list[int]) -> torch.Tensor:
        ids = torch.tensor([self.sos, *targets], dtype=torch.long, device=prefix.device)
        return torch.cat([self.in_proj(prefix), self.lm.get_input_embeddings()(ids)])

    def forward(self, prefixes: list[torch.Tensor], targets: list[list[int]]) -> torch.Tensor:
        """The training step's loss (what accelerate wraps in autocast): loss(prefixes, targets)."""
        return self.loss(prefixes, targets)

    def loss(self, prefixes: list[torch.Tensor], targets: list[list[int]]) -> torch.Tensor:
        """Mean CE of P(y_i | prefix, y_<i) over every target token and <eos>."""
        seqs = [self._sequence(p, [*t, self.eos]) for p, t in zip(prefixes, targets, strict=True)]
        n = max(s.shape[0] for s in seqs)
        emb = seqs[0].new_zeros(len(seqs), n, seqs[0].shape[1])
        mask = torch.zeros(len(seqs), n, dtype=torch.long, device=emb.device)
        labels = torch.full((len(seqs), n), -100, dtype=torch.long, device=emb.device)
        for i, (s, p, t) in enumerate(zip(seqs, prefixes, targets, strict=True)):
            emb[i, : s.shape[0]], mask[i, : s.shape[0]] = s, 1
            labels[i, p.shape[0] + 1: s.shape[0]] = torch.tensor([*t, self.eos], device=emb.device)  # after <sos>
        logits = self.lm(inputs_embeds=emb, attention_mask=mask).logits
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)

    @torch.no_grad()
    def generate(self, prefix: torch.Tensor, max_new_tokens: int = 300) -> list[int]:
        """Greedy unit-language ids (no <sos>/<eos>) for one prefix [T, text_dim]."""
        emb = self._sequence(prefix, [])[None]
        out = self.lm.generate(inputs_embeds=emb, attention_mask=torch.ones(emb.shape[:2], dtype=torch.long,
                                                                            device=emb.device),
                               max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=self.eos,
                               pad_token_id=self.eos, suppress_tokens=[self.sos])
        ids = out[0].tolist()
        ids = ids[: ids.index(self.eos)] if self.eos in ids else ids
        return [i for i in ids if i < self.sos]

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        self.lm.save_pretrained(out / "lm")
        save_file({"text_embed.weight": self.text_embed.weight.detach().cpu().contiguous(),
                   **{f"in_proj.{k}": v.cpu().contiguous() for k, v in self.in_proj.state_dict().items()}},
                  str(out / "t2c.safetensors"))
        self.unit_language.save(out)
        (out / "t2c.json").write_text(json.dumps({"schema_version": 1, "sos": self.sos, "eos": self.eos}) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> T2C:
        from transformers import AutoModelForCausalLM

        d = Path(directory)
        state = load_file(str(d / "t2c.safetensors"))
        lm = AutoModelForCausalLM.from_pretrained(str(d / "lm"), trust_remote_code=False)
        model = cls(lm, nn.Embedding.from_pretrained(state["text_embed.weight"], freeze=True), UnitLanguage.load(d))
        model.in_proj.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("in_proj.")})
        return model.eval()
