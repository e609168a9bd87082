"""What every answer strategy shares: token views of an example, training rows, greedy decoding, the LM loss.

    t = example_tokens(example, bundle)                 # model ids of question units/text, answer text/units
    seq = text_sequence(t, bundle.vocab)                # the text-only instruction row every strategy trains on
    loss_sum, count = lm_loss(bundle.lm, [seq, ...])    # masked next-token loss, summed over response targets

A row's `labels` hold IGNORE (-100) on every prompt position, so only the response is learned (docs/dialogue.md).
Prompts: a spoken question is `<speech> units <text>` (the text marker is given, not generated), a text question
`<text> question`; an answer's text is ` answer .` (continuing text: a leading space), as TinySpeech's corpus says
`what is the capital of randira ? felane .`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from koe.data.vocab import SpeechVocab
from koe.stage import KoeInputError

IGNORE = -100


@dataclasses.dataclass
class Tokens:
    """One example in model ids (units already shifted by the vocabulary's unit_offset)."""

    question_speech: list[int]
    question_text: list[int]
    answer_text: list[int]
    answer_speech: list[int]


@dataclasses.dataclass
class Sequence:
    """A training row: ids, labels (IGNORE = no loss) and any extra streams a strategy needs."""

    input_ids: list[int]
    labels: list[int]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.labels):
            raise ValueError(f"{len(self.input_ids)} ids but {len(self.labels)} labels")


@dataclasses.dataclass
class Answer:
    """What a strategy said: its text, its units (unit ids, not model ids) or ready audio, and when audio began."""

    text: str
    units: list[int] | None = None
    audio: np.ndarray | None = None
    first_audio_tokens: int | None = None  # generated tokens (LM steps) up to and including the first unit
    first_audio_s: float | None = None  # wall time from the start of answering to the first unit / audio
    transcript: str | None = None  # chain-of-modality and cascade: what the model (or ASR) heard


@dataclasses.dataclass
class Bundle:
    """A loaded model: the HF causal LM, its tokenizer and vocabulary, and the strategy's extra modules."""

    lm: torch.nn.Module
    tokenizer: Any
    vocab: SpeechVocab
    extras: torch.nn.ModuleDict
    device: torch.device
    unit_tokenizer: Any = None  # koe.units UnitTokenizer of the speech ids (encodes spoken prompts)


def question_string(text: str) -> str:
    """Questions end in `?` (real-English questions often lack one), which also ends a chain-of-modality transcript."""
    text = " ".join(text.split())
    return text if text.endswith("?") else f"{text} ?"


def answer_string(text: str) -> str:
    return f"{' '.join(text.split())} ."


def text_ids(tokenizer, text: str, continues: bool) -> list[int]:
    return list(tokenizer((" " + text) if continues else text, add_special_tokens=False).input_ids)


def example_tokens(ex, tokenizer, vocab: SpeechVocab) -> Tokens:
    """Model ids of a koe.dialogue.examples.DialogueExample; KoeInputError when its units do not fit the vocab."""
    if vocab.text_vocab_size == 0:
        raise KoeInputError("no-text: a units-only model cannot answer in text")

    def units(u: list[int] | None) -> list[int]:
        u = list(u or [])
        if u and (min(u) < 0 or max(u) >= vocab.total_units):
            raise KoeInputError(f"unit-mismatch: {ex.id}: unit {max(u)} outside the model's {vocab.total_units}")
        return [vocab.unit_offset + x for x in u]

    return Tokens(units(ex.question_units), text_ids(tokenizer, question_string(ex.question_text), False),
                  text_ids(tokenizer, answer_string(ex.answer_text), True), units(ex.answer_units))


def speech_prompt(t: Tokens, vocab: SpeechVocab) -> list[int]:
    return [vocab.speech_marker_id, *t.question_speech, vocab.text_marker_id]


def text_prompt(t: Tokens, vocab: SpeechVocab) -> list[int]:
    return [vocab.text_marker_id, *t.question_text]


def with_response(prompt: list[int], response: list[int]) -> Sequence:
    """prompt + response; labels only on the response (HF convention: labels[i] is the token at i)."""
    return Sequence(prompt + response, [IGNORE] * len(prompt) + list(response))


def text_sequence(t: Tokens, vocab: SpeechVocab) -> Sequence:
    """The text-only instruction row: `<text> question ? answer . eos`, loss on ` answer . eos`."""
    return with_response(text_prompt(t, vocab), [*t.answer_text, vocab.eos_id])


def pad_rows(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def lm_loss(lm: torch.nn.Module, rows: list[Sequence], device: torch.device) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over the labelled positions of right-padded rows, and their count."""
    ids = pad_rows([r.input_ids for r in rows], 0).to(device)
    labels = pad_rows([r.labels for r in rows], IGNORE).to(device)
    attn = pad_rows([[1] * len(r.input_ids) for r in rows], 0).to(device)
    logits = lm(input_ids=ids, attention_mask=attn).logits
    targets = labels[:, 1:]
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE,
                           reduction="sum")
    return loss, int((targets != IGNORE).sum())


def id_mask(vocab: SpeechVocab, size: int, text: bool = False, units: bool = False,
            extra: tuple[int, ...] = ()) -> torch.Tensor:
    """Bool [size]: which ids a decoding step may emit."""
    mask = torch.zeros(size, dtype=torch.bool)
    if text:
        mask[: vocab.text_vocab_size] = True
        mask[vocab.pad_id] = False
    if units:
        mask[vocab.unit_offset: vocab.unit_offset + vocab.total_units] = True
    for i in extra:
        mask[i] = True
    return mask


Chooser = Callable[[torch.Tensor, list[int]], int | None]


@torch.no_grad()
def greedy_decode(lm: torch.nn.Module, prompt: list[int], choose: Chooser, max_new_tokens: int,
                  device: torch.device) -> list[int]:
    """Token-by-token greedy decoding with a KV cache; `choose(logits, generated)` returns the next id or None (stop).

    The chooser sees every step, so a strategy's modality rules (which ids are allowed now) live in one function.
    """
    ids = torch.tensor([prompt], device=device)
    past, out = None, []
    for _ in range(max_new_tokens):
        step = lm(input_ids=ids, past_key_values=past, use_cache=True)
        past = step.past_key_values
        nxt = choose(step.logits[0, -1].float().cpu(), out)
        if nxt is None:
            break
        out.append(nxt)
        ids = torch.tensor([[nxt]], device=device)
    return out


def masked_argmax(logits: torch.Tensor, mask: torch.Tensor) -> int:
    return int(logits[: mask.shape[0]].masked_fill(~mask[: logits.shape[0]], float("-inf")).argmax())


def generate_text(bundle: Bundle, prompt: list[int], max_new_tokens: int) -> tuple[str, list[int]]:
    """Greedy text answer (text ids only, stopped at eos): the `QA text` and text-out conditions of every strategy."""
    v = bundle.vocab
    mask = id_mask(v, _num_logits(bundle), text=True, extra=(v.eos_id,))

    def choose(logits: torch.Tensor, _out: list[int]) -> int | None:
        nxt = masked_argmax(logits, mask)
        return None if nxt == v.eos_id else nxt

    new = greedy_decode(bundle.lm, prompt, choose, max_new_tokens, bundle.device)
    return decode_text(bundle, new), new


def decode_text(bundle: Bundle, ids: list[int]) -> str:
    return bundle.tokenizer.decode([i for i in ids if i < bundle.vocab.text_vocab_size],
                                   skip_special_tokens=True).strip()


def _num_logits(bundle: Bundle) -> int:
    return int(bundle.lm.get_output_embeddings().weight.shape[0])


class Strategy:
    """The default single-stream strategy behaviour; subclasses define `sequence` and `answer`."""

    name = "base"
    cross_modal = True  # False: trains on text rows only (the cascade)

    def __init__(self, options):
        self.options = options

    def extra_modules(self, lm: torch.nn.Module, vocab: SpeechVocab) -> torch.nn.ModuleDict:
        """Heads or adapters around the LM (saved beside the HF model); none by default."""
        return torch.nn.ModuleDict()

    def sequence(self, t: Tokens, vocab: SpeechVocab) -> Sequence:
        raise NotImplementedError

    def loss(self, bundle: Bundle, rows: list[Sequence]) -> tuple[torch.Tensor, int]:
        return lm_loss(bundle.lm, rows, bundle.device)

    def answer(self, bundle: Bundle, t: Tokens, ex, audio_root, max_new_tokens: int) -> Answer:
        raise NotImplementedError

    def text_out(self, bundle: Bundle, t: Tokens, max_new_tokens: int) -> str:
        """Speech in, text out: the text answer the strategy gives to a spoken question."""
        return generate_text(bundle, speech_prompt(t, bundle.vocab), max_new_tokens)[0]


class Clock:
    """Wall time since answering began; `mark()` keeps the first call's time (the first audio)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None

    def mark(self) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.start
