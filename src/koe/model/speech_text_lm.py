"""A loaded speech-text LM: an HF causal LM with its koe vocabulary and unit tokenizer, for scoring and generation.

    lm = SpeechTextLM.load("runs/tiny/interleaved/final", device="auto")   # reads final/unit_tokenizer by default
    prompt = [lm.marker("speech"), *lm.audio_ids(wav)]                      # audio -> the ids the model trained on
    out = lm.generate(prompt, "speech", max_new_tokens=200, sampling=Sampling(temperature=0.8, top_k=50))
    units = lm.units(out.ids)                                               # BPE undone, repeats merged: vocoder input
    logprobs = lm.score([Request(tokens, masks), ...])                      # per-position log-probs (koe eval)

`koe eval`, `koe generate` and the dialogue code use this one class. Speech ids always go through
koe.data.speech_tokens (the same function `koe data build` used), so BPE and marker ids match training.

Scoring: each position carries a mask code: NONE (not scored: markers, the first token), SPEECH (log-softmax over
unit tokens + the two markers + eos), TEXT (over the text vocabulary [0, text_vocab_size) + the two markers) or FULL
(the whole vocabulary). The log-prob of token t_i is read from the logits at position i-1, restricted to the allowed
ids before the softmax, so allowed log-probs sum to 1 over the subset. Scoring keeps the markers (the next token
after a span may open the other modality); generation never samples them: a span may emit only its own ids (text
without pad) and the stop ids, and the caller decides when a span ends. Padding is on the right with an attention
mask: under causal attention a real token never sees a pad, so batching cannot change a score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import torch

from koe.data.speech_tokens import SpeechTokens, resolve_unit_tokenizer
from koe.data.vocab import SpeechVocab
from koe.stage import KoeInputError

NONE, SPEECH, TEXT, FULL = 0, 1, 2, 3
GPU_BATCH_TOKENS, CPU_BATCH_TOKENS = 16384, 4096  # docs/performance.md: bf16 on an H100 scores 2.5x fp32 at 16384
MODALITIES = ("speech", "text", "any")


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' = bfloat16 on a CUDA device that supports it (2.5x the pairs/s of float32, log-probs change in the
    third decimal), float32 elsewhere (CPU bf16 matmuls are slow and add nothing to tests)."""
    if dtype != "auto":
        return getattr(torch, dtype)
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if cuda_bf16 else torch.float32


def resolve_device(device: str) -> torch.device:
    """'auto' = cuda when available, else cpu; anything else as torch spells it (cpu, cuda, cuda:1)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclasses.dataclass(frozen=True)
class Request:
    """One sequence to score: token ids and one mask code per position (position 0 is never scored)."""

    tokens: tuple[int, ...]
    masks: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Sampling:
    """temperature 0 = greedy; top_k 0 and top_p 1.0 disable those filters."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0


@dataclasses.dataclass
class Generation:
    """New ids (the stop id excluded), each id's modality ('speech', 'text' or 'special'), and why it stopped: the stop
    id that ended it, or None when max_new_tokens (or the model's max_length) ran out."""

    ids: list[int]
    modalities: list[str]
    stop_id: int | None = None

    def split(self) -> list[tuple[str, list[int]]]:
        """Consecutive runs of one modality, in order: [("text", [...]), ("special", [m]), ("speech", [...]), ...]."""
        runs: list[tuple[str, list[int]]] = []
        for i, m in zip(self.ids, self.modalities, strict=True):
            if runs and runs[-1][0] == m:
                runs[-1][1].append(i)
            else:
                runs.append((m, [i]))
        return runs

    def of(self, modality: str) -> list[int]:
        """Every id of one modality, in order."""
        return [i for i, m in zip(self.ids, self.modalities, strict=True) if m == modality]


class SpeechTextLM:
    """An HF causal LM plus its extended tokenizer and speech vocabulary; knows which ids are units, text, markers."""

    def __init__(self, model, tokenizer, device: torch.device, unit_tokenizer=None, mask_modality: bool = True,
                 max_length: int = 0):
        self.model = model.eval()
        self.tok = tokenizer
        try:
            self.vocab = SpeechVocab.from_tokenizer(tokenizer)
        except ValueError as e:
            raise KoeInputError(f"bad-model: {e}") from None
        self.speech = SpeechTokens(self.vocab, unit_tokenizer)
        self.device = device
        self.mask_modality = mask_modality
        cfg_len = getattr(model.config, "max_position_embeddings", None) or 2048
        self.max_length = max_length or int(cfg_len)
        self.num_logits = int(model.get_output_embeddings().weight.shape[0])
        if self.num_logits < self.vocab.vocab_size:
            raise KoeInputError(f"vocab-mismatch: {tokenizer.name_or_path}: the tokenizer has {self.vocab.vocab_size} "
                                f"ids but the model only {self.num_logits} output rows")
        self.allowed = self._score_masks()
        self.span_masks = {m: self.span_mask(m) for m in MODALITIES if m != "text" or self.has_text}

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", dtype: str = "auto", mask_modality: bool = True,
             max_length: int = 0, unit_tokenizer: str | Path | None = None,
             require_unit_tokenizer: bool = False) -> SpeechTextLM:
        """Load a model dir with its own unit tokenizer (`unit_tokenizer=` must then have the same hash; it is the
        only source for a model dir trained before models carried one). `require_unit_tokenizer` refuses a model
        with neither, saying how to fix it."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dev = resolve_device(device)
        unit_tok = resolve_unit_tokenizer(path, unit_tokenizer, required=require_unit_tokenizer)
        try:
            tok = AutoTokenizer.from_pretrained(str(path))
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=resolve_dtype(dtype, dev)).to(dev)
        except OSError as e:
            raise KoeInputError(f"bad-model: {path}: {e}") from None
        return cls(model, tok, dev, unit_tok, mask_modality=mask_modality, max_length=max_length)

    @property
    def has_text(self) -> bool:
        """False for a units-only (speech-only) vocabulary: text cannot be scored or generated."""
        return self.vocab.text_vocab_size > 0

    @property
    def unit_tokenizer(self):
        """The koe.units UnitTokenizer of the speech ids, or None (an old model dir given no unit_tokenizer=)."""
        return self.speech.unit_tokenizer

    # ------------------------------------------------------------------------------------------- masks
    def _score_masks(self) -> dict[int, torch.Tensor]:
        v = self.vocab
        markers = [v.speech_marker_id, v.text_marker_id]
        speech = torch.zeros(self.num_logits, dtype=torch.bool)
        speech[v.unit_offset: v.unit_offset + v.total_units] = True
        speech[[*markers, v.eos_id]] = True
        text = torch.zeros(self.num_logits, dtype=torch.bool)
        text[: v.text_vocab_size] = True
        text[markers] = True
        return {SPEECH: speech.to(self.device), TEXT: text.to(self.device)}

    def span_mask(self, modality: str) -> torch.Tensor:
        """Ids a generated span of `modality` may emit (bool [num_logits], on the model's device): 'speech' = the
        unit ids, 'text' = the text vocabulary without pad and eos, 'any' = every id but pad and eos. Never the
        markers except under 'any'; `generate` adds its stop ids (eos by default)."""
        v = self.vocab
        mask = torch.zeros(self.num_logits, dtype=torch.bool)
        if modality == "speech":
            mask[v.unit_offset: v.unit_offset + v.total_units] = True
        elif modality == "text":
            if not self.has_text:
                raise KoeInputError("no-text: this model has a units-only vocabulary: it cannot produce text")
            mask[: v.text_vocab_size] = True
        elif modality == "any":
            mask[: v.vocab_size] = True
        else:
            raise ValueError(f"modality {modality!r} not in {MODALITIES}")
        mask[[v.pad_id, v.eos_id]] = False
        return mask.to(self.device)

    def modality_of(self, token_id: int) -> str:
        """'speech' (a unit id), 'special' (a marker, eos or pad) or 'text'."""
        v = self.vocab
        if v.is_unit(token_id):
            return "speech"
        return "special" if token_id in (v.speech_marker_id, v.text_marker_id, v.eos_id, v.pad_id) else "text"

    # ------------------------------------------------------------------------------------------- sequences
    def speech_ids(self, unit_ids: np.ndarray) -> list[int]:
        """Model ids of tokenizer-level unit ids (BPE already applied: the bench cache's units)."""
        try:
            return self.speech.from_unit_ids(unit_ids).tolist()
        except ValueError as e:
            raise KoeInputError(f"unit-mismatch: {e}") from None

    def audio_ids(self, wav: np.ndarray) -> list[int]:
        """Model ids of a 16 kHz mono waveform: dedup units, the unit tokenizer's BPE, the unit offset."""
        try:
            return self.speech.from_audio(wav).tolist()
        except ValueError as e:
            raise KoeInputError(f"unit-mismatch: {e}") from None

    def units(self, token_ids: list[int]) -> np.ndarray:
        """Dedup units of generated speech ids (BPE undone, repeats merged): what a vocoder reads."""
        try:
            return self.speech.to_units(token_ids)
        except ValueError as e:
            raise KoeInputError(f"not-units: {e}") from None

    def text_ids(self, text: str, continues_text: bool = False) -> list[int]:
        """Text tokens; a text continuing text of the same sequence gets a leading space (a word boundary)."""
        if not self.has_text:
            raise KoeInputError("no-text: the model has a units-only vocabulary")
        return list(self.tok((" " + text) if continues_text else text, add_special_tokens=False).input_ids)

    def decode_text(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

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
    def generate(self, prefix: list[int], modality: str | Callable[[list[int]], str], max_new_tokens: int,
                 sampling: Sampling = Sampling(), stop_ids: Collection[int] | None = None,
                 stop_when: Callable[[int], bool] | None = None,
                 generator: torch.Generator | None = None) -> Generation:
        """Continue `prefix` one token at a time under a modality mask (`span_mask`), with a KV cache.

        `modality` is 'speech', 'text' or 'any', or a function of the ids generated so far that returns one (a
        per-step mask: e.g. text until a marker, then speech). Generation ends at a stop id (default: eos; stop ids
        are always allowed, never returned), when `stop_when(token)` holds (that token is kept), or after
        max_new_tokens (or the model's max_length). Sampling draws from `generator` (seeded by the caller), else
        torch's global RNG; temperature 0 is greedy.
        """
        if not prefix:
            raise KoeInputError("empty-prompt: generation needs at least one prompt token")
        if len(prefix) >= self.max_length:
            raise KoeInputError(f"too-long: a prompt of {len(prefix)} tokens leaves no room under max_length="
                                f"{self.max_length}")
        stops = set(stop_ids) if stop_ids is not None else {self.vocab.eos_id}
        stop_mask = torch.zeros(self.num_logits, dtype=torch.bool, device=self.device)
        stop_mask[list(stops)] = True
        warp = _warpers(sampling)
        ids = torch.tensor([prefix], device=self.device)
        past, new, stop_id = None, [], None
        for _ in range(min(max_new_tokens, self.max_length - len(prefix))):
            out = self.model(input_ids=ids, past_key_values=past, use_cache=True, logits_to_keep=1)
            past = out.past_key_values  # named `cache` in newer 5.x; this name works on every 5.x (the image: 5.17)
            m = modality(new) if callable(modality) else modality
            mask = self.span_masks[m] if m in self.span_masks else self.span_mask(m)  # span_mask raises if unknown
            logits = out.logits[:, -1].float().masked_fill(~(mask | stop_mask), float("-inf"))
            nxt = _pick(logits, warp, ids, generator)
            if nxt in stops:
                stop_id = nxt
                break
            new.append(nxt)
            if stop_when is not None and stop_when(nxt):
                break
            ids = torch.tensor([[nxt]], device=self.device)
        return Generation(new, [self.modality_of(i) for i in new], stop_id)

    def generate_text(self, prefix: list[int], max_new_tokens: int = 16) -> str:
        """Greedy text continuation of `prefix`, stopped at eos, a marker or a newline (koe eval's QA answers)."""
        v = self.vocab
        if len(prefix) + max_new_tokens > self.max_length:
            raise KoeInputError(f"too-long: prefix of {len(prefix)} tokens + {max_new_tokens} new > max_length")
        out = self.generate(prefix, "text", max_new_tokens, stop_ids={v.eos_id, v.speech_marker_id, v.text_marker_id},
                            stop_when=lambda t: "\n" in self.tok.decode([t]))
        return self.decode_text(out.ids).split("\n")[0].strip()


def _warpers(sampling: Sampling):
    """transformers' temperature / top-k / top-p warpers, in the order `model.generate` applies them."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    if sampling.temperature < 0 or not 0 < sampling.top_p <= 1 or sampling.top_k < 0:
        raise ValueError(f"bad sampling {sampling}: temperature >= 0, top_k >= 0, 0 < top_p <= 1")
    if sampling.temperature == 0:
        return None
    warpers = LogitsProcessorList([TemperatureLogitsWarper(sampling.temperature)])
    if sampling.top_k:
        warpers.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    return warpers


def _pick(logits: torch.Tensor, warp, ids: torch.Tensor, generator: torch.Generator | None) -> int:
    """Greedy without warpers, else a draw from the warped distribution."""
    if warp is None:
        return int(logits[0].argmax())
    probs = torch.softmax(warp(ids, logits), dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator)[0, 0])
