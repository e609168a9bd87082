"""Chain-of-modality (SpeechGPT): question units -> transcript -> text answer -> speech answer, in one sequence.

    <speech> q_units <text> | what is the capital of randira ? felane . <speech> a_units eos
                            ^ loss from here: transcript, answer text, marker, units, eos

Decoding: text tokens until the model emits `<speech>` (the transcript ends at its `?`), then units until eos. The
first audio needs the whole transcript and answer text first: the cost this strategy pays for its reasoning.
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


class ChainOfModality(Strategy):
    name = "chain_of_modality"

    def sequence(self, t: Tokens, vocab) -> Sequence:
        response = [*t.question_text, *t.answer_text, vocab.speech_marker_id, *t.answer_speech, vocab.eos_id]
        return with_response(speech_prompt(t, vocab), response)

    def answer(self, bundle: Bundle, t: Tokens, ex, audio_root, max_new_tokens: int) -> Answer:
        v = bundle.vocab
        size = int(bundle.lm.get_output_embeddings().weight.shape[0])
        text_mask = id_mask(v, size, text=True, extra=(v.speech_marker_id,))
        unit_mask = id_mask(v, size, units=True, extra=(v.eos_id,))
        clock, state = Clock(), {"speech": False}

        def choose(logits: torch.Tensor, out: list[int]) -> int | None:
            nxt = masked_argmax(logits, unit_mask if state["speech"] else text_mask)
            if nxt == v.eos_id:
                return None
            if nxt == v.speech_marker_id:
                state["speech"] = True
            elif v.is_unit(nxt):
                clock.mark()
            return nxt

        new = greedy_decode(bundle.lm, speech_prompt(t, v), choose, max_new_tokens, bundle.device)
        return split_chain(bundle, new, clock)


def split_chain(bundle: Bundle, new: list[int], clock: Clock) -> Answer:
    """The generated ids -> transcript (up to the first `?`), answer text, units and first-audio position."""
    v = bundle.vocab
    cut = new.index(v.speech_marker_id) if v.speech_marker_id in new else len(new)
    heard, sep, said = decode_text(bundle, new[:cut]).partition("?")
    units = [i - v.unit_offset for i in new[cut:] if v.is_unit(i)]
    first = next((k + 1 for k, i in enumerate(new) if v.is_unit(i)), None)
    return Answer(said.strip() if sep else heard.strip(), units, None, first, clock.first,
                  transcript=heard.strip() if sep else "")
