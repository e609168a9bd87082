"""Text-driven units (LLaMA-Omni): the LM answers in text; a CTC decoder on its hidden states emits the units.

    <speech> q_units <text> | felane . eos          the LM's loss: the text answer only
    hidden states of ` felane .` -> x upsample -> + offset embedding -> 1 transformer layer -> units + blank (CTC)

The speech decoder is non-autoregressive: every text token's last hidden state is repeated `upsample` times, each
copy told its offset (a learned embedding; without it the copies are identical and CTC could emit only one unit per
text token), passed through one small transformer layer over the whole answer, and read out over the units plus a
blank. Its CTC loss against the answer's units (weighted by `ctc_weight`) trains the decoder and, through the hidden
states, the LM. Decoding: greedy text, then the CTC frames' argmax with repeats merged and blanks dropped. Audio
starts once the text is complete (LLaMA-Omni streams the decoder per chunk; this does not).
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
    generate_text,
    pad_rows,
    speech_prompt,
    with_response,
)


def ctc_collapse(frames: list[int], blank: int) -> list[int]:
    """Greedy CTC output: merge runs of the same label, then drop blanks (a blank separates real repeats)."""
    out, prev = [], None
    for f in frames:
        if f != prev and f != blank:
            out.append(f)
        prev = f
    return out


class UnitDecoder(torch.nn.Module):
    """Upsampled hidden states -> per-frame logits over units + blank (the last class)."""

    def __init__(self, hidden: int, num_units: int, upsample: int):
        super().__init__()
        self.upsample = upsample
        self.offset = torch.nn.Embedding(upsample, hidden)
        self.layer = torch.nn.TransformerEncoderLayer(hidden, max(1, hidden // 64), 2 * hidden, dropout=0.0,
                                                      batch_first=True)
        self.out = torch.nn.Linear(hidden, num_units + 1)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """h [B, T, H] (T text positions, right-padded), lengths [B] -> logits [B, T * upsample, units + 1]."""
        t = h.shape[1]
        x = h.repeat_interleave(self.upsample, dim=1) + self.offset.weight.repeat(t, 1)[None]
        frames = torch.arange(t * self.upsample, device=h.device)[None]
        x = self.layer(x, src_key_padding_mask=frames >= (lengths[:, None] * self.upsample))
        return self.out(x)


class TextDrivenUnits(Strategy):
    name = "text_units"

    def extra_modules(self, lm, vocab) -> torch.nn.ModuleDict:
        hidden = int(lm.get_output_embeddings().weight.shape[1])
        return torch.nn.ModuleDict({"unit_decoder": UnitDecoder(hidden, vocab.total_units, self.options.upsample)})

    def sequence(self, t: Tokens, vocab) -> Sequence:
        prompt = speech_prompt(t, vocab)
        seq = with_response(prompt, [*t.answer_text, vocab.eos_id])
        seq.extra = {"text_start": len(prompt), "text_len": len(t.answer_text),
                     "units": [u - vocab.unit_offset for u in t.answer_speech]}
        return seq

    def _frames(self, bundle: Bundle, h: torch.Tensor, starts: list[int], lens: list[int]) -> torch.Tensor:
        width = max(max(lens), 1)
        picked = torch.zeros(len(starts), width, h.shape[-1], device=h.device, dtype=h.dtype)
        for r, (s, n) in enumerate(zip(starts, lens, strict=True)):
            picked[r, :n] = h[r, s: s + n]
        dec = bundle.extras["unit_decoder"]
        return dec(picked.to(dec.out.weight.dtype), torch.tensor(lens, device=h.device))

    def loss(self, bundle: Bundle, rows: list[Sequence]) -> tuple[torch.Tensor, int]:
        d = bundle.device
        ids = pad_rows([r.input_ids for r in rows], 0).to(d)
        attn = pad_rows([[1] * len(r.input_ids) for r in rows], 0).to(d)
        labels = pad_rows([r.labels for r in rows], IGNORE).to(d)[:, 1:]
        h = bundle.lm.get_decoder()(input_ids=ids, attention_mask=attn).last_hidden_state
        logits = bundle.lm.get_output_embeddings()(h)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE,
                               reduction="sum")
        count = int((labels != IGNORE).sum())
        lens = [r.extra["text_len"] for r in rows]
        frames = self._frames(bundle, h, [r.extra["text_start"] for r in rows], lens)
        targets = [r.extra["units"] for r in rows]
        log_probs = frames.float().log_softmax(-1).transpose(0, 1)  # [T, B, C]
        ctc = F.ctc_loss(log_probs, torch.tensor([u for t in targets for u in t], dtype=torch.long, device=d),
                         torch.tensor([n * self.options.upsample for n in lens], device=d),
                         torch.tensor([len(t) for t in targets], device=d), blank=bundle.vocab.total_units,
                         reduction="sum", zero_infinity=True)
        return loss + self.options.ctc_weight * ctc, count + sum(len(t) for t in targets)

    @torch.no_grad()
    def answer(self, bundle: Bundle, t: Tokens, ex, audio_root, max_new_tokens: int) -> Answer:
        clock = Clock()
        prompt = speech_prompt(t, bundle.vocab)
        text, ids = generate_text(bundle, prompt, max_new_tokens)
        if not ids:
            return Answer(text, [], None, None, None)
        full = torch.tensor([prompt + ids], device=bundle.device)
        h = bundle.lm.get_decoder()(input_ids=full).last_hidden_state
        frames = self._frames(bundle, h, [len(prompt)], [len(ids)])[0].argmax(-1).tolist()
        units = ctc_collapse(frames, bundle.vocab.total_units)
        if not units:  # blanks only: no audio, so no first-audio time either
            return Answer(text, [], None, None, None)
        clock.mark()
        return Answer(text, units, None, len(ids) + 1, clock.first)
