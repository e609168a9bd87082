"""Speech-aware text LMs: a speech encoder, an adapter into the LLM's embedding space, the LLM (stage I of EchoX).

    koe s2t train stage=align qa=runs/echox/qa.jsonl encoder=openai/whisper-small llm=Qwen/Qwen2.5-0.5B out_dir=a
    koe s2t train stage=sft qa=runs/echox/qa.jsonl init=a/final out_dir=b

Library: koe.s2t.model.SpeechAwareLM (create/load/save, batch, loss, generate), koe.s2t.adapters.ADAPTERS,
koe.s2t.ctc (CTC loss and shrink), koe.s2t.encoder.SpeechEncoder. See docs/echox.md.
"""
