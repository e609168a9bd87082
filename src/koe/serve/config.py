"""Options of `koe serve` (no heavy imports here, so `koe --help` stays instant)."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

TINY_RUN = Path("runs/tiny")  # where `koe run tiny` (recipes/tiny.yaml, out_dir default) leaves its outputs
TINY_MODEL, TINY_VOCODER, TINY_TOKENIZER = TINY_RUN / "interleaved/final", TINY_RUN / "vocoder", TINY_RUN / "tokenizer"


@dataclasses.dataclass
class ServeConfig:
    """A local web page to talk to a koe model: type, upload a WAV or record; the answer streams as text and speech.

    With no model given it serves the tiny recipe's interleaved model (runs/tiny/interleaved/final, with
    runs/tiny/vocoder and runs/tiny/tokenizer) when `koe run tiny` has made it. It listens on 127.0.0.1 only unless
    `host=` names another address.
    """

    model: Path | None = dataclasses.field(default=None, metadata={
        "help": "koe model dir (HF dir with koe tokens); default: the tiny recipe's model"})
    vocoder: Path | None = dataclasses.field(default=None, metadata={
        "help": "vocoder folder (koe vocoder train); without it answers are text only"})
    unit_tokenizer: Path | None = dataclasses.field(default=None, metadata={
        "help": "unit tokenizer folder for spoken input; default: MODEL/unit_tokenizer when present"})
    host: str = dataclasses.field(default="127.0.0.1", metadata={
        "help": "address to listen on; anything but loopback exposes the demo to the network"})
    port: int = dataclasses.field(default=7860, metadata={"help": "TCP port (0 picks a free one)"})
    max_audio_s: float = dataclasses.field(default=20.0, metadata={"help": "longest accepted spoken input"})
    max_text_chars: int = dataclasses.field(default=500, metadata={"help": "longest accepted typed input"})
    max_new_tokens: int = dataclasses.field(default=120, metadata={"help": "answer length cap, per generated span"})
    max_history_tokens: int = dataclasses.field(default=768, metadata={
        "help": "older turns are dropped from the model's context beyond this many tokens"})
    queue_size: int = dataclasses.field(default=4, metadata={
        "help": "turns waiting for the model at once; more get a 'busy' message"})
    chunk_units: int = dataclasses.field(default=12, metadata={
        "help": "units per streamed audio chunk (smaller: earlier first audio, more chunk seams)"})
    temperature: float = dataclasses.field(default=0.8, metadata={"help": "0 means greedy"})
    top_k: int = dataclasses.field(default=50, metadata={"help": "0 disables"})
    top_p: float = dataclasses.field(default=0.95, metadata={"help": "1.0 disables"})
    seed: int = dataclasses.field(default=0, metadata={"help": "turn n of a session samples with seed + n"})
    device: str = dataclasses.field(default="auto", metadata={"help": "cpu, cuda or auto"})

    def validate(self) -> list[str]:
        problems = [f"{k} must be positive" for k in ("max_audio_s", "max_text_chars", "max_new_tokens",
                                                       "max_history_tokens", "queue_size", "chunk_units")
                    if getattr(self, k) <= 0]
        if not 0 <= self.port <= 65535:
            problems.append(f"port={self.port} must be in 0..65535")
        if self.temperature < 0:
            problems.append("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            problems.append("top_p must be in (0, 1]")
        return problems


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
