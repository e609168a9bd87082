from __future__ import annotations

import torch
from s2t_fixtures import save_llm, save_whisper, tone

from koe.echox.pipeline import TextSpeaker, stream_answer
from koe.echox.streaming import SegmentCutter
from koe.echox.t2c import T2C
from koe.echox.unit_language import UnitLanguage
from koe.s2t.model import Example, SpeechAwareLM
from koe.vocoder import UnitVocoder


def _forbid(head: torch.nn.Module, token: int) -> None:
    def hook(_module, _inputs, logits):
        logits[..., token] = float("-inf")
        return logits

    head.register_forward_hook(hook)


def test_stream_answer_speaks_every_segment_in_order(tmp_path):
    s2t = SpeechAwareLM.create(save_whisper(tmp_path / "w"), save_llm(tmp_path / "llm")).eval()
    _forbid(s2t.llm.lm_head, s2t.tokenizer.eos_token_id)  # a random LM may stop at once: run max_new_tokens
    t2c = T2C.create(s2t.llm.get_input_embeddings(), UnitLanguage(8), hidden_size=16, num_layers=1, num_heads=2)
    _forbid(t2c.lm.lm_head, t2c.eos)  # and the T2C emit max_units units per segment
    vocoder = UnitVocoder(8, 50.0, hidden_size=8, num_layers=1).eval()
    cutter = SegmentCutter(lag=1, max_gap=3, min_gap=2, threshold=-1.0)  # cut at almost every local maximum
    ans = stream_answer(s2t, TextSpeaker(t2c.eval()), Example("answer :", tone(1.0)), vocoder, max_new_tokens=12,
                        max_units=4, cutter=cutter)
    assert len(ans.text_ids) == 12 and len(ans.segments) >= 2
    assert ans.segments[0][0] == 0 and ans.segments[-1][1] == 12
    assert all(a[1] == b[0] for a, b in zip(ans.segments[:-1], ans.segments[1:], strict=True))  # contiguous
    assert len(ans.unit_tokens) == 4 * len(ans.segments) and len(ans.audio) > 0
    assert 0 < ans.first_audio_s <= ans.total_s
