"""Generation with modality-constrained decoding (koe.model.speech_text_lm); see koe.generate.run for the tasks."""
