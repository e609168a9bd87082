"""A corpus folder with planted bad files, for import tests and for pipelines that must survive bad input.

    from planted import write_planted_corpus            # from tests/corpus/
    from corpus.planted import write_planted_corpus     # from another folder under tests/
    corpus = write_planted_corpus(tmp_path / "raw")
    report = run_import(ImportConfig(source="dir", path=corpus.root, out_dir=tmp_path / "out"))
    assert {f.item for f in report.failures} == set(corpus.bad)

Layout (source=dir: sidecar .txt transcripts, speaker = folder):
  alice/tone.wav        16 kHz mono PCM_16               good
  alice/stereo8k.wav    8 kHz stereo PCM_16              good (not bad: loaders mix and resample)
  bob/noise.flac        22.05 kHz mono FLAC, .lab text   good
  bad/truncated.wav     a valid WAV cut to 60 % of its bytes       -> truncated
  bad/empty.wav         0 frames                                   -> empty
  bad/nan.wav           float WAV with NaN samples                 -> non-finite
  bad/text.wav          a text file named .wav                     -> unsupported format
  bad/long.wav          20 minutes (over the default max_duration_s=60)  -> too long
  bad/untranscribed.wav valid audio without a transcript           -> no transcript
  bad/zero.wav          a 0-byte file (an interrupted copy)        -> empty
  bad/latin1.wav        valid audio, its .txt in Latin-1           -> not UTF-8
  bad/orphan.txt        a transcript with no audio file            -> no audio

`speech` replaces the three good signals with real clips [(audio, sample_rate_hz, text)], e.g. espeak speech for an
import -> align -> encode test; they are written at their own rate, the second one resampled to 8 kHz stereo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


@dataclasses.dataclass
class PlantedCorpus:
    root: Path
    good: dict[str, str]  # utterance id (source=dir) -> transcript
    bad: dict[str, str]  # utterance id -> the reason kind its failure starts with


def tone(seconds: float, sample_rate_hz: int, freq_hz: float = 220.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise: audio-like, deterministic."""
    t = np.arange(int(seconds * sample_rate_hz)) / sample_rate_hz
    x = sum(np.sin(2 * np.pi * freq_hz * k * t) / k for k in (1, 2, 3)) * 0.2
    x += np.random.default_rng(seed).normal(0, 0.01, t.shape)
    return x.astype(np.float32)


def write_planted_corpus(
    root: Path, speech: Sequence[tuple[np.ndarray, int, str]] | None = None, long_s: float = 1200.0
) -> PlantedCorpus:
    root = Path(root)
    for d in ("alice", "bob", "bad"):
        (root / d).mkdir(parents=True, exist_ok=True)
    clips = list(speech) if speech else [
        (tone(1.2, 16000, 220), 16000, "a plain tone"),
        (tone(0.9, 16000, 330, seed=1), 16000, "an eight kilohertz stereo file"),
        (tone(1.5, 22050, 180, seed=2), 22050, "flac with a lab transcript"),
    ]
    clips = [clips[i % len(clips)] for i in range(3)]
    (a0, sr0, t0), (a1, sr1, t1), (a2, sr2, t2) = clips
    sf.write(root / "alice/tone.wav", a0, sr0, subtype="PCM_16")
    (root / "alice/tone.txt").write_text(t0 + "\n")
    a8k = soxr.resample(a1, sr1, 8000) if sr1 != 8000 else a1
    sf.write(root / "alice/stereo8k.wav", np.stack([a8k, 0.5 * a8k], axis=1), 8000, subtype="PCM_16")
    (root / "alice/stereo8k.txt").write_text(t1 + "\n")
    sf.write(root / "bob/noise.flac", a2, sr2)
    (root / "bob/noise.lab").write_text(t2 + "\n")

    bad = root / "bad"
    sf.write(bad / "truncated.wav", tone(1.0, 16000), 16000, subtype="PCM_16")
    whole = (bad / "truncated.wav").read_bytes()
    (bad / "truncated.wav").write_bytes(whole[: int(len(whole) * 0.6)])
    sf.write(bad / "empty.wav", np.zeros(0, np.float32), 16000, subtype="PCM_16")
    nan = tone(1.0, 16000)
    nan[4000:4010] = np.nan
    sf.write(bad / "nan.wav", nan, 16000, subtype="FLOAT")
    (bad / "text.wav").write_text("this is not audio, only text with a .wav name\n")
    sf.write(bad / "long.wav", np.zeros(int(long_s * 8000), np.int16), 8000, subtype="PCM_16")
    for name in ("truncated", "empty", "nan", "text", "long"):
        (bad / f"{name}.txt").write_text(f"the {name} file\n")
    sf.write(bad / "untranscribed.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    (bad / "zero.wav").write_bytes(b"")
    (bad / "zero.txt").write_text("the zero byte file\n")
    sf.write(bad / "latin1.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    (bad / "latin1.txt").write_bytes("le caf\u00e9 est ferm\u00e9\n".encode("latin-1"))
    (bad / "orphan.txt").write_text("a transcript whose recording is missing\n")

    return PlantedCorpus(
        root=root,
        good={"alice-tone": t0, "alice-stereo8k": t1, "bob-noise": t2},
        bad={"bad-truncated": "truncated", "bad-empty": "empty", "bad-nan": "non-finite",
             "bad-text": "unsupported format", "bad-long": "too long", "bad-untranscribed": "no transcript",
             "bad-zero": "empty", "bad-latin1": "not UTF-8", "bad-orphan": "no audio"},
    )
