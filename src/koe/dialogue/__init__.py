"""Spoken dialogue data: text QA turned into spoken questions and spoken answers (`koe dialogue build`).

    koe dialogue build out_dir=runs/dialogue/data unit_tokenizer=runs/tiny/tokenizer

The record is koe.dialogue.examples.DialogueExample (docs/dialogue.md); koe.dialogue.asr holds the pocketsphinx
transcriber that `koe eval s2s` and the cascade baseline use.
"""
