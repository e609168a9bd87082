"""Generation with modality-constrained decoding; see koe.generate.run for the tasks."""
