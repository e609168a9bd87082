"""Training pairs of the neural vocoder: each utterance's audio, speaker and units, at both rates it needs.

    utts = load_utterances(cfg, unit_frame_rate_hz=100.0, spec=MelSpec(), report=report)
    batch = sample_batch(utts, speakers, seed=0, step=12, batch_size=16, segment_frames=32, hop=160)

A batch is a pure function of (seed, step), so a resumed run draws the same crops as an uninterrupted one with no
data-loader state in the checkpoint.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from koe.audio import load_audio
from koe.audio.mel import MelSpec
from koe.corpus.manifest import read_manifest
from koe.stage import KoeInputError, StageReport, progress
from koe.vocoder.config import VocoderConfig
from koe.vocoder.requests import to_mel_rate


@dataclasses.dataclass
class Utterance:
    id: str
    speaker: str
    wav: np.ndarray  # float32 [mel_frames * hop]
    mel_units: np.ndarray  # int64 [mel_frames]: one unit id per 10 ms frame
    units: np.ndarray  # int64 [M] dedup units
    durations: np.ndarray  # int64 [M] unit frames of each


def load_utterances(cfg: VocoderConfig, unit_frame_rate_hz: float, spec: MelSpec,
                    report: StageReport) -> list[Utterance]:
    """Utterances of the manifest that have units, minus excluded speakers; missing/unreadable ones go to report."""
    from koe.units.shards import read_unit_shards

    manifest_dir = cfg.manifest.parent
    by_id = {u.id: u for u in read_manifest(cfg.manifest)}
    excluded = set(cfg.exclude_speakers)
    out, skipped = [], 0
    for rec in progress(read_unit_shards(cfg.units_dir), desc="vocoder data"):
        if len(out) >= cfg.max_utterances:
            break
        utt = by_id.get(rec.id)
        if utt is not None and utt.speaker in excluded:
            skipped += 1
            continue
        report.items_in += 1
        if utt is None:
            report.fail(rec.id, f"missing: {cfg.manifest}: no utterance with this id")
            continue
        try:
            wav = load_audio(utt.resolve_audio(manifest_dir), utt.offset_s, utt.duration_s if utt.offset_s else None)
        except KoeInputError as e:
            report.fail(rec.id, str(e), utt.audio_path)
            continue
        units, durations = rec.units.astype(np.int64), rec.durations.astype(np.int64)
        mel_units = to_mel_rate(np.repeat(units, durations), unit_frame_rate_hz, spec.frame_rate_hz)
        n = min(len(mel_units), len(wav) // spec.hop_length)
        out.append(Utterance(rec.id, utt.speaker, wav[: n * spec.hop_length].astype(np.float32), mel_units[:n],
                             units, durations))
    report.extra["excluded_speaker_utterances"] = skipped
    return out


@dataclasses.dataclass
class Batch:
    units: torch.Tensor  # [B, T] mel-rate unit ids
    speakers: torch.Tensor  # [B]
    wav: torch.Tensor  # [B, T * hop]
    dedup_units: torch.Tensor  # [B, M] (padded with 0)
    log_durations: torch.Tensor  # [B, M] log(1 + frames)
    dedup_mask: torch.Tensor  # [B, M] True on real units

    def to(self, device: str) -> Batch:
        return Batch(*(t.to(device) for t in dataclasses.astuple(self)))


def sample_batch(utts: list[Utterance], speakers: list[str], seed: int, step: int, batch_size: int,
                 segment_frames: int, hop: int) -> Batch:
    """Random crops of `segment_frames` frames (utterances shorter than that are zero-padded, units edge-padded)."""
    rng = np.random.default_rng([seed, step])
    chosen = [utts[i] for i in rng.integers(0, len(utts), batch_size)]
    units, wavs = [], []
    for u in chosen:
        start = int(rng.integers(0, max(1, len(u.mel_units) - segment_frames + 1)))
        seg = u.mel_units[start:start + segment_frames]
        wav = u.wav[start * hop:(start + len(seg)) * hop]
        units.append(np.pad(seg, (0, segment_frames - len(seg)), mode="edge"))
        wavs.append(np.pad(wav, (0, segment_frames * hop - len(wav))))
    longest = max(len(u.units) for u in chosen)
    dedup = np.zeros((batch_size, longest), np.int64)
    log_d = np.zeros((batch_size, longest), np.float32)
    mask = np.zeros((batch_size, longest), bool)
    for i, u in enumerate(chosen):
        dedup[i, : len(u.units)], log_d[i, : len(u.units)], mask[i, : len(u.units)] = u.units, np.log1p(u.durations), 1
    return Batch(torch.from_numpy(np.stack(units)), torch.tensor([speakers.index(u.speaker) for u in chosen]),
                 torch.from_numpy(np.stack(wavs)), torch.from_numpy(dedup), torch.from_numpy(log_d),
                 torch.from_numpy(mask))
