"""Parallel heads (PSLM / Mini-Omni / Moshi's inner monologue): text and speech streams at the same positions.

    position     ... <text> | t1   t2   .    eos  pad  pad  pad  pad
    text stream  ... <text> | t1   t2   .    eos  pad  pad  pad  pad      (the LM's own ids and head)
    speech       pad ...pad | pad  pad  u1   u2   u3   u4   u5   eos      (delay = 2: speech starts 2 steps later)

The input at each position is the sum of the two streams' embeddings (the LM's embedding table; a speech `pad`
adds nothing, so the prompt reads exactly as in pretraining). The LM's head predicts the text stream; a second head
(a linear layer on the last hidden state, initialised from the LM head's unit/eos/pad rows) predicts the speech
stream over `units + eos + pad`. After its eos the text stream is padded with the pad token up to the speech
length, and the model learns to emit pad: text and speech run at one step per position, text first by `delay`.
A small module around AutoModelForCausalLM: transformers' model code is untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from koe.strategies.base import (
    IGNORE,
    Answer,
    Bundle,
    Clock,
    Sequence,
    Strategy,
    Tokens,
    decode_text,
    id_mask,
    masked_argmax,
    pad_rows,
    speech_prompt,
)


def streams(t: Tokens, vocab, delay: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """(text ids, speech ids, text labels, speech labels as head ids) of one row, all of the same length."""
    prompt = speech_prompt(t, vocab)
    k, p = vocab.total_units, len(prompt)
    text = prompt + t.answer_text + [vocab.eos_id]
    speech = [vocab.pad_id] * (p + delay) + t.answer_speech + [vocab.eos_id]
    length = max(len(text), len(speech))
    text_labels = [IGNORE] * p + text[p:] + [vocab.pad_id] * (length - len(text))
    speech_end = len(speech)
    text += [vocab.pad_id] * (length - len(text))
    speech += [vocab.pad_id] * (length - len(speech))
    speech_labels = [IGNORE] * p + [head_id(i, vocab, k) for i in speech[p:speech_end]] + \
        [IGNORE] * (length - speech_end)
    return text, speech, text_labels, speech_labels


def head_id(token: int, vocab, k: int) -> int:
    """Model id -> speech-head id: units 0..K-1, eos K, pad K+1."""
    if token == vocab.eos_id:
        return k
    if token == vocab.pad_id:
        return k + 1
    return token - vocab.unit_offset


def summed_embeddings(lm, text: torch.Tensor, speech: torch.Tensor, pad_id: int) -> torch.Tensor:
    emb = lm.get_input_embeddings()
    return emb(text) + emb(speech) * (speech != pad_id).unsqueeze(-1).to(emb.weight.dtype)


class Parallel(Strategy):
    name = "parallel"

    def extra_modules(self, lm, vocab) -> torch.nn.ModuleDict:
        w = lm.get_output_embeddings().weight
        head = torch.nn.Linear(w.shape[1], vocab.total_units + 2, bias=False)
        rows = [*range(vocab.unit_offset, vocab.unit_offset + vocab.total_units), vocab.eos_id, vocab.pad_id]
        with torch.no_grad():
            head.weight.copy_(w.detach()[rows].float())
        return torch.nn.ModuleDict({"speech_head": head})

    def sequence(self, t: Tokens, vocab) -> Sequence:
        text, speech, text_labels, speech_labels = streams(t, vocab, self.options.delay)
        return Sequence(text, text_labels, {"speech_ids": speech, "speech_labels": speech_labels})

    def forward(self, bundle: Bundle, text: torch.Tensor, speech: torch.Tensor, attn: torch.Tensor | None = None,
                past=None):
        """(text logits, speech logits, cache) of summed-embedding inputs [B, L]."""
        out = bundle.lm.get_decoder()(inputs_embeds=summed_embeddings(bundle.lm, text, speech, bundle.vocab.pad_id),
                                      attention_mask=attn, past_key_values=past, use_cache=past is not None)
        h = out.last_hidden_state
        head = bundle.extras["speech_head"]
        return bundle.lm.get_output_embeddings()(h), head(h.to(head.weight.dtype)), out.past_key_values

    def loss(self, bundle: Bundle, rows: list[Sequence]) -> tuple[torch.Tensor, int]:
        d, pad = bundle.device, bundle.vocab.pad_id
        text = pad_rows([r.input_ids for r in rows], pad).to(d)
        speech = pad_rows([r.extra["speech_ids"] for r in rows], pad).to(d)
        attn = pad_rows([[1] * len(r.input_ids) for r in rows], 0).to(d)
        text_labels = pad_rows([r.labels for r in rows], IGNORE).to(d)[:, 1:]
        speech_labels = pad_rows([r.extra["speech_labels"] for r in rows], IGNORE).to(d)[:, 1:]
        text_logits, speech_logits, _ = self.forward(bundle, text, speech, attn)
        loss = F.cross_entropy(text_logits[:, :-1].flatten(0, 1).float(), text_labels.flatten(),
                               ignore_index=IGNORE, reduction="sum")
        loss = loss + F.cross_entropy(speech_logits[:, :-1].flatten(0, 1).float(), speech_labels.flatten(),
                                      ignore_index=IGNORE, reduction="sum")
        return loss, int((text_labels != IGNORE).sum() + (speech_labels != IGNORE).sum())

    @torch.no_grad()
    def answer(self, bundle: Bundle, t: Tokens, ex, audio_root, max_new_tokens: int) -> Answer:
        v, d, k = bundle.vocab, bundle.device, bundle.vocab.total_units
        size = int(bundle.lm.get_output_embeddings().weight.shape[0])
        text_mask = id_mask(v, size, text=True, extra=(v.eos_id,))
        from transformers import DynamicCache

        prompt = torch.tensor([speech_prompt(t, v)], device=d)
        text_logits, speech_logits, past = self.forward(bundle, prompt, torch.full_like(prompt, v.pad_id),
                                                        past=DynamicCache())
        clock, text_ids, units, first = Clock(), [], [], None
        text_done = False
        for step in range(max_new_tokens):
            x = v.pad_id if text_done else masked_argmax(text_logits[0, -1].float().cpu(), text_mask)
            if x == v.eos_id:
                text_done = True
            elif x != v.pad_id:
                text_ids.append(x)
            y_head = k + 1 if step < self.options.delay else int(speech_logits[0, -1, : k + 1].float().argmax())
            if y_head == k:
                break
            y = v.pad_id if y_head == k + 1 else v.unit_offset + y_head
            if y_head < k:
                units.append(y_head)
                if first is None:
                    first = step + 1
                    clock.mark()
            text_logits, speech_logits, past = self.forward(bundle, torch.tensor([[x]], device=d),
                                                            torch.tensor([[y]], device=d), past=past)
        return Answer(decode_text(bundle, text_ids), units, None, first, clock.first)
