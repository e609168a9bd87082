"""A causal LM with a koe speech-text vocabulary, as `koe eval` uses it: batched token log-probs and greedy answers.

    lm = SpeechTextLM.load("runs/tiny/model", device="cpu")
    seq = lm.speech_part(units) + ...                   # Parts: token ids with the mask that scores them
    logprobs = lm.score([Request(tokens, masks), ...])  # one float64 array per request, NaN where not scored
    answer = lm.generate_text(prefix_tokens, max_new_tokens=16)

Each token position carries a mask code: NONE (not scored: markers, the first token), SPEECH (log-softmax over unit
tokens + the two markers + eos), TEXT (over the text vocabulary [0, text_vocab_size) + the two markers) or FULL (the
whole vocabulary). The log-prob of token t_i is read from the logits at position i-1, restricted to the allowed ids
before the softmax, so allowed log-probs sum to 1 over the subset. Padding is on the right with an attention mask:
under causal attention a real token never sees a pad, so batching cannot change a score (no cross-talk).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from koe.data.vocab import SpeechVocab
from koe.stage import KoeInputError

NONE, SPEECH, TEXT, FULL = 0, 1, 2, 3
GPU_BATCH_TOKENS, CPU_BATCH_TOKENS = 16384, 4096  # docs/performance.md: bf16 on an H100 scores 2.5x fp32 at 16384


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' = bfloat16 on a CUDA device that supports it (2.5x the pairs/s of float32, log-probs change in the
    third decimal), float32 elsewhere (CPU bf16 matmuls are slow and add nothing to tests)."""
    if dtype != "auto":
        return getattr(torch, dtype)
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if cuda_bf16 else torch.float32


@dataclasses.dataclass(frozen=True)
class Request:
    """One sequence to score: token ids and one mask code per position (position 0 is never scored)."""

    tokens: tuple[int, ...]
    masks: tuple[int, ...]


class SpeechTextLM:
    """An HF causal LM plus its extended tokenizer; knows which ids are units, text and markers."""

    def __init__(self, model, tokenizer, device: torch.device, mask_modality: bool = True, max_length: int = 0):
        self.model = model.eval()
        self.tok = tokenizer
        try:
            self.vocab = SpeechVocab.from_tokenizer(tokenizer)
        except ValueError as e:
            raise KoeInputError(f"bad-model: {e}") from None
        self.device = device
        self.mask_modality = mask_modality
        cfg_len = getattr(model.config, "max_position_embeddings", None) or 2048
        self.max_length = max_length or int(cfg_len)
        self.num_logits = int(model.get_output_embeddings().weight.shape[0])
        if self.num_logits < self.vocab.vocab_size:
            raise KoeInputError(f"vocab-mismatch: {tokenizer.name_or_path}: the tokenizer has {self.vocab.vocab_size} "
                                f"ids but the model only {self.num_logits} output rows")
        self.allowed = self._allowed_sets()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", dtype: str = "auto", mask_modality: bool = True,
             max_length: int = 0) -> SpeechTextLM:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                           "cpu" if device == "auto" else device)
        try:
            tok = AutoTokenizer.from_pretrained(str(path))
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=resolve_dtype(dtype, dev)).to(dev)
        except OSError as e:
            raise KoeInputError(f"bad-model: {path}: {e}") from None
        return cls(model, tok, dev, mask_modality=mask_modality, max_length=max_length)

    @property
    def has_text(self) -> bool:
        """False for a units-only (speech-only) vocabulary: text sides cannot be scored."""
        return self.vocab.text_vocab_size > 0

    def _allowed_sets(self) -> dict[int, torch.Tensor]:
        v = self.vocab
        markers = [v.speech_marker_id, v.text_marker_id]
        speech = torch.zeros(self.num_logits, dtype=torch.bool)
        speech[v.unit_offset: v.unit_offset + v.total_units] = True
        speech[[*markers, v.eos_id]] = True
        text = torch.zeros(self.num_logits, dtype=torch.bool)
        text[: v.text_vocab_size] = True
        text[markers] = True
        return {SPEECH: speech.to(self.device), TEXT: text.to(self.device)}

    # ------------------------------------------------------------------------------------------- sequences
    def speech_ids(self, units: np.ndarray) -> list[int]:
        units = np.asarray(units, dtype=np.int64)
        if len(units) and (units.min() < 0 or units.max() >= self.vocab.total_units):
            raise KoeInputError(f"unit-mismatch: unit {int(units.max())} outside the model's "
                                f"{self.vocab.total_units} units (benchmark tokenized with another unit tokenizer?)")
        return (units + self.vocab.unit_offset).tolist()

    def text_ids(self, text: str, continues_text: bool = False) -> list[int]:
        """Text tokens; a text continuing text of the same sequence gets a leading space (a word boundary)."""
        if not self.has_text:
            raise KoeInputError("no-text: the model has a units-only vocabulary")
        return list(self.tok((" " + text) if continues_text else text, add_special_tokens=False).input_ids)

    def marker(self, modality: str) -> int:
        return self.vocab.speech_marker_id if modality == "speech" else self.vocab.text_marker_id

    # ------------------------------------------------------------------------------------------- scoring
    @torch.no_grad()
    def score(self, requests: list[Request], batch_tokens: int = 0) -> list[np.ndarray]:
        """Per-position log-probs of every request (NaN where the mask is NONE), batched by padded length;
        batch_tokens 0 = GPU_BATCH_TOKENS on CUDA, CPU_BATCH_TOKENS on CPU."""
        batch_tokens = batch_tokens or (GPU_BATCH_TOKENS if self.device.type == "cuda" else CPU_BATCH_TOKENS)
        for r in requests:
            if len(r.tokens) > self.max_length:
                raise KoeInputError(f"too-long: a sequence of {len(r.tokens)} tokens exceeds max_length="
                                    f"{self.max_length}")
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].tokens), reverse=True)
        out: list[np.ndarray | None] = [None] * len(requests)
        start = 0
        while start < len(order):
            longest = len(requests[order[start]].tokens)
            size = max(1, batch_tokens // max(1, longest))
            batch = order[start: start + size]
            for i, lp in zip(batch, self._score_batch([requests[i] for i in batch]), strict=True):
                out[i] = lp
            start += size
        return out  # type: ignore[return-value]

    def _score_batch(self, batch: list[Request]) -> list[np.ndarray]:
        """One forward and one device-to-host copy per batch: the scored positions of all requests are gathered
        per mask code on the device, so no request waits on its own synchronisation."""
        length = max(len(r.tokens) for r in batch)
        ids = torch.full((len(batch), length), self.vocab.pad_id, dtype=torch.long)
        attn = torch.zeros((len(batch), length), dtype=torch.long)
        codes = np.full((len(batch), length), NONE, dtype=np.int64)
        for b, r in enumerate(batch):
            ids[b, : len(r.tokens)] = torch.tensor(r.tokens)
            attn[b, : len(r.tokens)] = 1
            codes[b, 1: len(r.tokens)] = np.asarray(r.masks)[1:]
        ids_dev = ids.to(self.device, non_blocking=True)
        logits = self.model(input_ids=ids_dev, attention_mask=attn.to(self.device, non_blocking=True)).logits
        flat_logits = logits[:, :-1].flatten(0, 1)  # position i-1 predicts token i
        flat_targets = ids_dev[:, 1:].flatten()
        parts, where = [], []
        for code in (SPEECH, TEXT, FULL):
            rows, cols = np.nonzero(codes[:, 1:] == code)
            if len(rows) == 0:
                continue
            flat = torch.as_tensor(rows * (length - 1) + cols, device=self.device)
            scores = self._masked_log_softmax(flat_logits[flat].float(), code)
            parts.append(scores.gather(1, flat_targets[flat, None])[:, 0])
            where.append((rows, cols + 1))
        values = torch.cat(parts).double().cpu().numpy() if parts else np.zeros(0)
        out = np.full((len(batch), length), np.nan)
        start = 0
        for rows, cols in where:
            out[rows, cols] = values[start: start + len(rows)]
            start += len(rows)
        return [out[b, : len(r.tokens)].copy() for b, r in enumerate(batch)]

    def _masked_log_softmax(self, rows: torch.Tensor, code: int) -> torch.Tensor:
        if code == FULL or not self.mask_modality:
            return torch.log_softmax(rows, dim=-1)
        return torch.log_softmax(rows.masked_fill(~self.allowed[code], float("-inf")), dim=-1)

    # ------------------------------------------------------------------------------------------- generation
    @torch.no_grad()
    def generate_text(self, prefix: list[int], max_new_tokens: int = 16) -> str:
        """Greedy text continuation of `prefix` (text vocabulary only), stopped at eos, a marker or a newline."""
        v = self.vocab
        stops = {v.eos_id, v.speech_marker_id, v.text_marker_id}
        if len(prefix) + max_new_tokens > self.max_length:
            raise KoeInputError(f"too-long: prefix of {len(prefix)} tokens + {max_new_tokens} new > max_length")
        ids = torch.tensor([prefix], device=self.device)
        past, new = None, []
        for _ in range(max_new_tokens):
            out = self.model(input_ids=ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float().masked_fill(~self.allowed[TEXT], float("-inf"))
            nxt = int(logits.argmax())
            if nxt in stops:
                break
            new.append(nxt)
            if "\n" in self.tok.decode([nxt]):
                break
            ids = torch.tensor([[nxt]], device=self.device)
        return self.tok.decode(new, skip_special_tokens=True).split("\n")[0].strip()
