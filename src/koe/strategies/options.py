"""Options of the answer strategies (no heavy imports: `koe sft --help` must stay instant)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StrategyOptions:
    """How a model answers a spoken question in speech (docs/dialogue.md#strategies)."""

    name: str = field(default="interleaved", metadata={
        "help": "chain_of_modality | interleaved | parallel | text_units | cascade"})
    text_chunk: int = field(default=13, metadata={"help": "interleaved: text tokens per chunk (GLM-4-Voice: 13)"})
    speech_chunk: int = field(default=26, metadata={"help": "interleaved: unit tokens per chunk (GLM-4-Voice: 26)"})
    delay: int = field(default=2, metadata={"help": "parallel: positions the speech stream starts after the text"})
    upsample: int = field(default=8, metadata={"help": "text_units: CTC frames per text token's hidden state"})
    ctc_weight: float = field(default=1.0, metadata={"help": "text_units: weight of the CTC loss"})
    asr: str = field(default="tinyspeech", metadata={
        "help": "cascade: question recogniser, `tinyspeech` (a word loop over TinySpeech's question words) or "
                "`open` (pocketsphinx's en-us LM: real English)"})

    def validate(self) -> list[str]:
        from koe.strategies import STRATEGIES

        problems = []
        if self.name not in STRATEGIES:
            problems.append(f"strategy.name={self.name!r} must be one of {sorted(STRATEGIES)}")
        for k in ("text_chunk", "speech_chunk", "upsample"):
            if getattr(self, k) < 1:
                problems.append(f"strategy.{k}={getattr(self, k)} must be >= 1")
        if self.asr not in ("tinyspeech", "open"):
            problems.append(f"strategy.asr={self.asr!r} must be tinyspeech or open")
        if self.delay < 0 or self.ctc_weight < 0:
            problems.append("strategy.delay and strategy.ctc_weight must be >= 0")
        return problems
