"""Dialogue examples -> training rows for one strategy, every bad example listed with its reason.

    rows = build_rows(examples_file, tokenizer, vocab, strategy, max_seq_len, report)
    rows.cross_modal, rows.text          # spoken-question rows (the strategy's format) and text-only rows
    speech_rows, text_rows = rows.step(step, micro_batch_size, text_ratio, seed)

Only `split: train` examples are used. A spoken example becomes one row in the strategy's format and a text
example a text-only instruction row (koe.strategies.base.text_sequence); a strategy that is not cross-modal (the
cascade) turns spoken examples into text rows too. An example with missing audio, an empty answer, units outside
the vocabulary or a row longer than max_seq_len is listed (`report.fail`), never cut or dropped silently.
The rows of step s are a pure function of (seed, s), so a resumed run draws exactly what it would have.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from koe.dialogue.examples import example_problems, read_examples
from koe.seed import rng_for
from koe.stage import KoeInputError, StageReport
from koe.strategies.base import Sequence, example_tokens, text_sequence


@dataclasses.dataclass
class Rows:
    cross_modal: list[Sequence]
    text: list[Sequence]

    def step(self, step: int, size: int, text_ratio: float, seed: int) -> tuple[list[Sequence], list[Sequence]]:
        """The rows of one optimiser step: round(text_ratio * size) text rows, the rest cross-modal."""
        num_text = round(text_ratio * size) if self.text else 0
        if not self.cross_modal:
            num_text = size
        rng = rng_for(seed, "sft-rows", step)
        pick = lambda pool, n: [pool[int(i)] for i in rng.choice(len(pool), n, replace=n > len(pool))] if n else []  # noqa: E731
        return pick(self.cross_modal, size - num_text), pick(self.text, num_text)


def build_rows(path: Path, tokenizer, vocab, strategy, max_seq_len: int, report: StageReport) -> Rows:
    rows = Rows([], [])
    root = Path(path).parent
    for where, ex in read_examples(path):
        if isinstance(ex, KoeInputError):
            report.fail(where, str(ex), path=path)
            continue
        if ex.split != "train":
            continue
        report.items_in += 1
        problems = example_problems(ex, root)
        if problems:
            report.fail(ex.id, "; ".join(problems), path=where)
            continue
        try:
            t = example_tokens(ex, tokenizer, vocab)
        except KoeInputError as e:
            report.fail(ex.id, str(e), path=where)
            continue
        spoken = ex.modality == "speech" and strategy.cross_modal
        seq = strategy.sequence(t, vocab) if spoken else text_sequence(t, vocab)
        if len(seq.input_ids) > max_seq_len:
            report.fail(ex.id, f"too-long: its {strategy.name} row has {len(seq.input_ids)} tokens > "
                               f"max_seq_len={max_seq_len}", path=where)
            continue
        (rows.cross_modal if spoken else rows.text).append(seq)
        report.ok()
    if not rows.cross_modal and not rows.text:
        raise KoeInputError(f"no-examples: {path}: no usable training example")
    return rows
