"""Cut long recordings into utterances with silero-vad; manifest lines point into the original file.

    koe corpus import vad path=lectures/ out_dir=corpus/lectures min_segment_s=1 max_segment_s=15 merge_gap_s=0.3

No audio is re-encoded: each segment is `offset_s`/`duration_s` into the recording (loaders seek there), at the
file's own sample rate. Silero runs on 16 kHz mono (`load_audio`) with the model the `silero_vad` package ships, so it
works offline. Pauses shorter than `merge_gap_s` do not end a segment (silero's min_silence_duration); segments longer
than `max_segment_s` are cut by silero at their longest pause; segments shorter than `min_segment_s` are dropped and
counted in the summary (`vad_segments_dropped`, `vad_dropped_s`). A recording with no segment left is listed as
failed ("no speech"). Speaker is the recording's file stem (one recording, one speaker); text is null.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from koe.audio import TARGET_SAMPLE_RATE_HZ, load_audio
from koe.corpus.checks import check_audio_file
from koe.corpus.config import ImportConfig
from koe.corpus.files import list_audio_files
from koe.corpus.manifest import Utterance
from koe.stage import KoeInputError, StageReport, progress


def detect_speech(audio: np.ndarray, cfg: ImportConfig, model=None) -> list[tuple[float, float]]:
    """Speech segments [(start_s, end_s)] of 16 kHz mono audio, before the min_segment_s filter."""
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    stamps = get_speech_timestamps(
        torch.from_numpy(audio),
        model if model is not None else load_silero_vad(),
        threshold=cfg.vad_threshold,
        sampling_rate=TARGET_SAMPLE_RATE_HZ,
        min_speech_duration_ms=0,  # short segments are dropped below, where they are counted
        max_speech_duration_s=cfg.max_segment_s,
        min_silence_duration_ms=int(cfg.merge_gap_s * 1000),
        speech_pad_ms=int(cfg.vad_pad_s * 1000),
    )
    return [(s["start"] / TARGET_SAMPLE_RATE_HZ, s["end"] / TARGET_SAMPLE_RATE_HZ) for s in stamps]


def import_vad(cfg: ImportConfig, report: StageReport) -> list[Utterance]:
    from silero_vad import load_silero_vad

    root = Path(cfg.path)
    model = load_silero_vad()
    utts: list[Utterance] = []
    dropped, dropped_s = 0, 0.0
    for path in progress(list_audio_files(root, cfg.audio_extensions, cfg.glob), desc="vad", unit="file"):
        report.items_in += 1
        stem = path.stem if path == root else path.relative_to(root).with_suffix("").as_posix().replace("/", "-")
        try:
            info = check_audio_file(path, None, check_samples=False)  # load_audio checks the samples anyway
            spans = detect_speech(load_audio(path), cfg, model)
        except KoeInputError as e:
            report.fail(stem, str(e), path)
            continue
        # one frame of margin, so that offset + duration (rounded to 1 us) never reads past the end
        last_s = (info.num_frames - 1) / info.sample_rate_hz
        kept = [(s, min(e, last_s)) for s, e in spans if e - s >= cfg.min_segment_s]
        dropped += len(spans) - len(kept)
        dropped_s += sum(e - s for s, e in spans if e - s < cfg.min_segment_s)
        if not kept:
            report.fail(stem, f"no speech: {path}: no segment of >= {cfg.min_segment_s:g} s found", path)
            continue
        for i, (start, end) in enumerate(kept):
            utts.append(Utterance(
                id=f"{stem}-{i:04d}", audio_path=str(path.resolve()), sample_rate_hz=info.sample_rate_hz,
                duration_s=round(end - start, 6), offset_s=round(start, 6), speaker=path.stem,
                meta={"recording": stem, "segment": i},
            ))
    report.extra["vad_segments_dropped"] = dropped
    report.extra["vad_dropped_s"] = round(dropped_s, 2)
    return utts
