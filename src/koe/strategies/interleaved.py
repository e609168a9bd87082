"""Interleaved "streaming thoughts" (GLM-4-Voice): after the question, chunks of text and speech tokens alternate.

    <speech> q_units <text> | t1..t13 <speech> u1..u26 <text> t14..t26 <speech> u27..u52 ... u_n eos

`text_chunk` : `speech_chunk` is 13 : 26 by default (GLM-4-Voice's ratio); once the text is used up, the rest of
the speech follows in one run. Audio can start after the first text chunk, not after the whole answer.
Decoding follows the same rules: at most `text_chunk` text tokens (a `<speech>` marker before that ends the text for
good), then `speech_chunk` units, then `<text>` again while the text is not finished; eos ends the answer.
"""

from __future__ import annotations

import torch

from koe.strategies.base import (
    Answer,
    Bundle,
    Clock,
    Sequence,
    Strategy,
    Tokens,
    decode_text,
    greedy_decode,
    id_mask,
    masked_argmax,
    speech_prompt,
    with_response,
)


def interleave(text: list[int], speech: list[int], n: int, m: int, speech_marker: int, text_marker: int,
               eos: int) -> list[int]:
    """The response ids; the stream starts in text mode (the prompt ends with `<text>`), a marker opens each switch."""
    out: list[int] = []
    i = j = 0
    mode = "text"
    while i < len(text) or j < len(speech):
        if i < len(text):
            if mode != "text":
                out.append(text_marker)
                mode = "text"
            out += text[i: i + n]
            i += n
        if j < len(speech):
            if mode != "speech":
                out.append(speech_marker)
                mode = "speech"
            take = m if i < len(text) else len(speech) - j
            out += speech[j: j + take]
            j += take
    return [*out, eos]


class Interleaved(Strategy):
    name = "interleaved"

    def sequence(self, t: Tokens, vocab) -> Sequence:
        o = self.options
        response = interleave(t.answer_text, t.answer_speech, o.text_chunk, o.speech_chunk, vocab.speech_marker_id,
                              vocab.text_marker_id, vocab.eos_id)
        return with_response(speech_prompt(t, vocab), response)

    def answer(self, bundle: Bundle, t: Tokens, ex, audio_root, max_new_tokens: int) -> Answer:
        v, n, m = bundle.vocab, self.options.text_chunk, self.options.speech_chunk
        size = int(bundle.lm.get_output_embeddings().weight.shape[0])
        masks = {
            "text": id_mask(v, size, text=True, extra=(v.speech_marker_id,)),
            "speech": id_mask(v, size, units=True, extra=(v.eos_id,)),
            "speech_or_text": id_mask(v, size, units=True, extra=(v.eos_id, v.text_marker_id)),
        }
        clock = Clock()
        s = {"mode": "text", "run": 0, "text_done": False}

        def choose(logits: torch.Tensor, out: list[int]) -> int | None:
            if s["mode"] == "text" and s["run"] >= n:
                nxt = v.speech_marker_id  # a full text chunk: speech comes next
            elif s["mode"] == "text":
                nxt = masked_argmax(logits, masks["text"])
            else:
                free = s["run"] >= m and not s["text_done"]
                nxt = masked_argmax(logits, masks["speech_or_text" if free else "speech"])
            if nxt == v.eos_id:
                return None
            if nxt == v.speech_marker_id:
                s["text_done"] = s["text_done"] or s["run"] < n
                s["mode"], s["run"] = "speech", 0
            elif nxt == v.text_marker_id:
                s["mode"], s["run"] = "text", 0
            else:
                s["run"] += 1
                if v.is_unit(nxt):
                    clock.mark()
            return nxt

        new = greedy_decode(bundle.lm, speech_prompt(t, v), choose, max_new_tokens, bundle.device)
        units = [i - v.unit_offset for i in new if v.is_unit(i)]
        first = next((k + 1 for k, i in enumerate(new) if v.is_unit(i)), None)
        return Answer(decode_text(bundle, [i for i in new if i < v.text_vocab_size]), units, None, first,
                      clock.first)
