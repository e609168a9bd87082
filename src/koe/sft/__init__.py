"""`koe sft`: supervised fine-tuning of a koe model on dialogue examples with one answer strategy (koe.sft.loop)."""
