"""The speech-aware text LM: speech encoder -> adapter -> LLM through `inputs_embeds`, plus a CTC head.

    model = SpeechAwareLM.create("openai/whisper-small", "Qwen/Qwen2.5-0.5B", adapter="concat_transformer")
    batch = model.batch([Example(speech=wav, prompt="answer :", target="the capital of x is y .")])
    loss, parts = model.loss(batch)                  # CE(text) + ctc_weight * CTC(transcript)
    loss, parts = model(examples, implicit_weight=1.0, explicit_weight=1.0)  # + the alignment terms (koe.s2t.alignment)
    model.save("runs/s2t/final");  SpeechAwareLM.load("runs/s2t/final")

The LLM is any `AutoModelForCausalLM` (trust_remote_code off), wrapped by peft LoRA when `lora_rank > 0`; it is never
forked: the adapter output is spliced in front of the prompt's token embeddings. A saved model is a folder with
`llm/` (the LLM, LoRA merged, and its tokenizer: a plain HF dir), `s2t.json` (encoder id/path, adapter name,
prompts), `s2t.safetensors` (adapter + CTC head) and, when the encoder was trained, `encoder/`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from koe.s2t.adapters import build_adapter
from koe.s2t.alignment import explicit_cosine, implicit_kl, target_logits
from koe.s2t.ctc import ctc_loss, ctc_shrink
from koe.s2t.encoder import SpeechEncoder

SPEC_FILE, WEIGHTS_FILE = "s2t.json", "s2t.safetensors"


@dataclasses.dataclass
class S2TSpec:
    """s2t.json: how the parts of a saved speech-aware LM fit together."""

    encoder: str  # HF id or path of the encoder (or "encoder" = the trained copy saved beside)
    adapter: str = "concat_transformer"
    ctc_weight: float = 0.3
    ctc_shrink: bool = True
    schema_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Example:
    """One training/decoding item: optional speech, an optional text prefix, a prompt, an optional target.

    `transcript` (of the speech) feeds the CTC loss; text-only items (speech=None) carry their question in `prefix`.
    """

    prompt: str
    speech: np.ndarray | None = None
    prefix: str = ""
    target: str | None = None
    transcript: str | None = None


@dataclasses.dataclass
class Batch:
    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    target_positions: list[torch.Tensor]  # input positions of each item's target tokens (for hidden states)
    target_ids: list[list[int]]
    ctc_logits: torch.Tensor | None = None
    ctc_lengths: torch.Tensor | None = None
    ctc_targets: list[list[int]] | None = None
    speech_embeds: torch.Tensor | None = None  # what the LLM read for them (CTC-shrunk when on), padded
    speech_lengths: torch.Tensor | None = None
    transcript_ids: list[list[int]] | None = None  # per speech item; [] where it has no transcript


class SpeechAwareLM(nn.Module):
    def __init__(self, encoder: SpeechEncoder, adapter: nn.Module, llm: nn.Module, tokenizer, spec: S2TSpec):
        super().__init__()
        self.encoder, self.adapter, self.llm, self.tokenizer, self.spec = encoder, adapter, llm, tokenizer, spec
        self.vocab_size = llm.get_output_embeddings().weight.shape[0]
        self.ctc_head = nn.Linear(self.llm_dim, self.vocab_size + 1)  # last class = CTC blank

    @property
    def llm_dim(self) -> int:
        return self.llm.get_input_embeddings().weight.shape[1]

    @property
    def blank(self) -> int:
        return self.vocab_size

    @classmethod
    def create(cls, encoder: str | Path, llm: str | Path, adapter: str = "concat_transformer",
               freeze_encoder: bool = True, ctc_weight: float = 0.3, ctc_shrink: bool = True) -> SpeechAwareLM:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        enc = SpeechEncoder.load(encoder, freeze=freeze_encoder)
        lm = AutoModelForCausalLM.from_pretrained(str(llm), trust_remote_code=False)
        tok = AutoTokenizer.from_pretrained(str(llm), trust_remote_code=False)
        llm_dim = lm.get_input_embeddings().weight.shape[1]
        spec = S2TSpec(str(encoder), adapter, ctc_weight, ctc_shrink)
        return cls(enc, build_adapter(adapter, enc.hidden_size, llm_dim), lm, tok, spec)

    def add_lora(self, rank: int, alpha: float, dropout: float = 0.05) -> None:
        """Wrap the LLM in peft LoRA over every linear layer (lm_head excluded); base weights frozen."""
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear",
                         task_type="CAUSAL_LM")
        self.llm = get_peft_model(self.llm, cfg)

    def set_llm_trainable(self, trainable: bool) -> None:
        """Freeze (ASR pre-alignment) or unfreeze the LLM; with LoRA only the LoRA weights train."""
        lora = hasattr(self.llm, "peft_config")
        for name, p in self.llm.named_parameters():
            p.requires_grad_(trainable and (not lora or "lora_" in name))

    # ---- inputs ----
    def encode_speech(self, wavs: list[np.ndarray]):
        """Adapter embeddings (CTC-shrunk when spec.ctc_shrink), their lengths, and the unshrunk CTC logits."""
        frames, frame_lengths = self.encoder(wavs)
        emb, lengths = self.adapter(frames, frame_lengths)
        logits = self.ctc_head(emb)
        if self.spec.ctc_shrink:
            shrunk, shrunk_lengths = ctc_shrink(emb, lengths, logits.detach().argmax(-1), self.blank)
            return shrunk, shrunk_lengths, logits, lengths
        return emb, lengths, logits, lengths

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids if text else []

    def batch(self, examples: list[Example]) -> Batch:
        """Right-padded inputs_embeds with labels on target tokens (+ eos) only."""
        embed = self.llm.get_input_embeddings()
        device = embed.weight.device
        speech_idx = [i for i, e in enumerate(examples) if e.speech is not None]
        speech = self.encode_speech([examples[i].speech for i in speech_idx]) if speech_idx else None
        seqs, labels, positions, targets = [], [], [], []
        eos = self.tokenizer.eos_token_id
        for i, ex in enumerate(examples):
            parts, n_prefix = [], 0
            if ex.speech is not None:
                k = speech_idx.index(i)
                parts.append(speech[0][k, : int(speech[1][k])])
            head = self.text_ids(ex.prefix) + self.text_ids(ex.prompt)
            tgt = self.text_ids(ex.target) if ex.target is not None else []
            tail = [*tgt, eos] if ex.target is not None else []
            ids = torch.tensor(head + tail, dtype=torch.long, device=device)
            parts.append(embed(ids))
            n_prefix = sum(p.shape[0] for p in parts) - len(tail)
            seqs.append(torch.cat(parts))
            lab = torch.full((seqs[-1].shape[0],), -100, dtype=torch.long, device=device)
            lab[n_prefix:] = torch.tensor(tail, dtype=torch.long, device=device)
            labels.append(lab)
            positions.append(torch.arange(n_prefix, n_prefix + len(tgt), device=device))
            targets.append(tgt)
        batch = _pad(seqs, labels, positions, targets)
        if speech is not None:
            batch.speech_embeds, batch.speech_lengths = speech[0], speech[1]
            batch.transcript_ids = [self.text_ids(examples[i].transcript or "") for i in speech_idx]
        if speech is not None and all(examples[i].transcript for i in speech_idx):
            batch.ctc_logits, batch.ctc_lengths = speech[2], speech[3]
            batch.ctc_targets = batch.transcript_ids
        return batch

    # ---- losses and decoding ----
    def forward(self, examples: list[Example], implicit_weight: float = 0.0, explicit_weight: float = 0.0
                ) -> tuple[torch.Tensor, dict[str, float]]:
        """The training step's loss on `examples` (what accelerate wraps in autocast); the text teacher of the
        implicit term runs only when that term is weighted, so weights of 0 are the plain L_S2T step."""
        teacher = self.text_teacher(examples) if implicit_weight > 0 else None
        return self.loss(self.batch(examples), implicit_weight, explicit_weight, teacher)

    def loss(self, batch: Batch, implicit_weight: float = 0.0, explicit_weight: float = 0.0,
             teacher: tuple[list[int], torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """L = CE(text) + ctc_weight * CTC + implicit_weight * L_imp + explicit_weight * L_exp.

        CE + 0.3 CTC is FIELD.md's L_S2T ("EchoX" stage I); CTC only when every speech item has a transcript. The
        alignment terms (koe.s2t.alignment) join only when weighted and the batch has speech items with transcripts
        (L_imp also needs `teacher`, from text_teacher); each is logged under its own key.
        """
        out = self.llm(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask, labels=batch.labels)
        total, parts = out.loss, {"ce": float(out.loss.detach())}
        terms = {"ctc": self._ctc_loss(batch), "implicit": None, "explicit": None}
        weights = {"ctc": self.spec.ctc_weight, "implicit": implicit_weight, "explicit": explicit_weight}
        if implicit_weight > 0 and teacher is not None:
            rows, p_text = teacher
            terms["implicit"] = implicit_kl(target_logits(out.logits[rows], batch.labels[rows]), p_text)
        if explicit_weight > 0:
            terms["explicit"] = self.explicit_loss(batch)
        for name, term in terms.items():
            if term is not None:
                total = total + weights[name] * term
                parts[name] = float(term.detach())
        return total, parts

    def _ctc_loss(self, batch: Batch) -> torch.Tensor | None:
        if batch.ctc_logits is None:
            return None
        return ctc_loss(batch.ctc_logits, batch.ctc_lengths, batch.ctc_targets, self.blank)

    @torch.no_grad()
    def text_teacher(self, examples: list[Example]) -> tuple[list[int], torch.Tensor] | None:
        """The implicit term's teacher: rows of the speech items with a transcript and a target, and the LLM's
        target-position logits when it reads the transcript in place of the speech (same prompt, same target).

        The LLM runs in eval mode for it (no LoRA dropout), so the teacher is a deterministic function of the
        weights; None when no item qualifies.
        """
        rows = [i for i, e in enumerate(examples) if e.speech is not None and e.transcript and e.target is not None]
        if not rows:
            return None
        b = self.batch([_text_twin(examples[i]) for i in rows])
        was_training = self.llm.training
        self.llm.eval()
        try:
            logits = self.llm(inputs_embeds=b.inputs_embeds, attention_mask=b.attention_mask).logits
        finally:
            self.llm.train(was_training)
        return rows, target_logits(logits, b.labels)

    def explicit_loss(self, batch: Batch) -> torch.Tensor | None:
        """L_exp over the speech items with a transcript (None when there are none); the transcript embeddings come
        from the LLM's input table, detached, so this term moves the adapter (and encoder), never the table."""
        items = [k for k, ids in enumerate(batch.transcript_ids or []) if ids]
        if not items:
            return None
        embed = self.llm.get_input_embeddings()
        text = [embed(torch.tensor(batch.transcript_ids[k], device=embed.weight.device)).detach() for k in items]
        return explicit_cosine(batch.speech_embeds[items], batch.speech_lengths[items], text)

    def hidden_states(self, batch: Batch) -> torch.Tensor:
        """The LLM's last hidden layer (after its final norm) at every position: H of FIELD.md's stage III."""
        out = self.llm(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask,
                       output_hidden_states=True)
        return out.hidden_states[-1]

    @torch.no_grad()
    def generate(self, example: Example, max_new_tokens: int = 40) -> list[int]:
        """Greedy text ids after the prompt (eos not included)."""
        b = self.batch([dataclasses.replace(example, target=None)])
        eos = self.tokenizer.eos_token_id
        out = self.llm.generate(inputs_embeds=b.inputs_embeds, attention_mask=b.attention_mask, do_sample=False,
                                max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=eos)
        ids = out[0].tolist()
        return ids[: ids.index(eos)] if eos in ids else ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    # ---- persistence ----
    def save(self, out_dir: str | Path) -> Path:
        """Write llm/ (LoRA merged), s2t.json, s2t.safetensors and encoder/ when the encoder was trained."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        llm = self.llm.merge_and_unload() if hasattr(self.llm, "peft_config") else self.llm
        self.llm = llm
        llm.save_pretrained(out / "llm")
        self.tokenizer.save_pretrained(out / "llm")
        spec = self.spec
        if not self.encoder.frozen:
            _save_encoder(self.encoder, out / "encoder")
            spec = dataclasses.replace(spec, encoder="encoder")
        state = {f"adapter.{k}": v for k, v in self.adapter.state_dict().items()}
        state.update({f"ctc_head.{k}": v for k, v in self.ctc_head.state_dict().items()})
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(out / WEIGHTS_FILE))
        (out / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | Path, freeze_encoder: bool = True) -> SpeechAwareLM:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        d = Path(directory)
        if not (d / SPEC_FILE).exists():
            raise FileNotFoundError(f"{d}: no {SPEC_FILE} (not a `koe s2t train` output)")
        spec = S2TSpec(**json.loads((d / SPEC_FILE).read_text()))
        enc_path = d / spec.encoder if spec.encoder == "encoder" else spec.encoder
        enc = SpeechEncoder.load(enc_path, freeze=freeze_encoder)
        lm = AutoModelForCausalLM.from_pretrained(str(d / "llm"), trust_remote_code=False)
        tok = AutoTokenizer.from_pretrained(str(d / "llm"), trust_remote_code=False)
        model = cls(enc, build_adapter(spec.adapter, enc.hidden_size, lm.get_input_embeddings().weight.shape[1]),
                    lm, tok, dataclasses.replace(spec, encoder=str(enc_path)))
        state = load_file(str(d / WEIGHTS_FILE))
        model.adapter.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("adapter.")})
        model.ctc_head.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("ctc_head.")})
        return model.eval()


def _text_twin(ex: Example) -> Example:
    """The item with its transcript read as text where the speech was (speech comes before prefix and prompt)."""
    return dataclasses.replace(ex, speech=None, prefix=f"{ex.transcript} {ex.prefix}".strip())


def _save_encoder(encoder: SpeechEncoder, path: Path) -> None:
    """A trained encoder as an HF dir that SpeechEncoder.load reads back (Whisper: inside a WhisperModel)."""
    if encoder.kind == "whisper":
        from transformers import WhisperModel

        whole = WhisperModel(encoder.model.config)
        whole.encoder = encoder.model
        whole.save_pretrained(path)
    else:
        encoder.model.save_pretrained(path)
    if encoder.feature_extractor is not None:
        encoder.feature_extractor.save_pretrained(path)


def _pad(seqs, labels, positions, targets) -> Batch:
    n, dim = max(s.shape[0] for s in seqs), seqs[0].shape[1]
    emb = seqs[0].new_zeros(len(seqs), n, dim)
    mask = torch.zeros(len(seqs), n, dtype=torch.long, device=emb.device)
    lab = torch.full((len(seqs), n), -100, dtype=torch.long, device=emb.device)
    for i, (s, y) in enumerate(zip(seqs, labels, strict=True)):
        emb[i, : s.shape[0]], mask[i, : s.shape[0]], lab[i, : s.shape[0]] = s, 1, y
    return Batch(emb, mask, lab, positions, targets)
