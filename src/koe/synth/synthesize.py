"""`koe synth`: speak text items with espeak-ng voices; write 16 kHz WAVs and a manifest with word/phone timings.

    koe synth out_dir=data/synth num_items=2000
    koe synth source=texts.jsonl out_dir=data/mine voices=[en-us,en+m3] voices_per_item=2 num_workers=4

Writes, under out_dir: `wav/<id>.wav` (16 kHz PCM16), `manifest.jsonl` (docs/formats.md#manifest; speaker = voice,
split from the text item, meta = the text item's meta + item_id, voice, rate_wpm, pitch, kind), `config.yaml`,
`synth_summary.json` (items, failures, total audio seconds, real-time factor per core, number of voices) and
`synth_failures.jsonl` (empty text, symbols espeak would read aloud, unknown voices, bad splits...).

Each utterance's voice, rate and pitch come from `rng_for(seed, item_id)`, so the output is the same for any
`num_workers`; espeak itself is made reproducible by koe.synth.espeak (a fresh library session per call).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path

import soundfile as sf

from koe.config import save_config, to_dict
from koe.corpus.manifest import SPLITS, Utterance, write_manifest
from koe.corpus.text import TextItem, read_text_items
from koe.seed import rng_for
from koe.stage import KoeInputError, StageReport, done_key, map_in_workers, mark_done, progress, skip_if_done
from koe.synth.config import SynthConfig

WAV_DIR = "wav"
MANIFEST = "manifest.jsonl"


@dataclasses.dataclass(frozen=True)
class Job:
    """One utterance to synthesize: everything a worker needs, drawn up front so workers make no choices."""

    utt_id: str
    item: TextItem
    voice: str
    rate_wpm: int
    pitch: int
    wav_path: Path


@dataclasses.dataclass
class JobResult:
    utt_id: str
    utterance: Utterance | None
    error: str | None
    cpu_s: float


def run_synth(cfg: SynthConfig) -> StageReport:
    """Synthesize every text item with `voices_per_item` voices; failed items are listed, never dropped."""
    out = Path(cfg.out_dir)
    report = StageReport("synth", out)
    key = done_key({k: v for k, v in to_dict(cfg).items() if k not in ("force", "num_workers")}, _input_files(cfg))
    if (earlier := skip_if_done("synth", out, key, cfg.force, outputs=[out / MANIFEST])) is not None:
        return earlier
    for old in (out / WAV_DIR).glob("*.wav"):
        old.unlink()  # a smaller rerun must not leave WAVs the manifest no longer names
    save_config(cfg, out)
    items = load_items(cfg)
    spoken = [i for i in items if i.meta.get("fact_split") not in cfg.skip_fact_splits]
    report.extra["items_kept_text_only"] = len(items) - len(spoken)
    jobs = plan_jobs(cfg, spoken, out, report)
    report.items_in = len(jobs) + len(report.failures)
    utterances, cpu_s = [], 0.0
    for result in progress(map_in_workers(synth_job, jobs, cfg.num_workers), desc="synth", total=len(jobs), unit="utt"):
        cpu_s += result.cpu_s
        if result.utterance is None:
            report.fail(result.utt_id, result.error or "unknown", path=_source_name(cfg))
            continue
        utterances.append(result.utterance)
        report.ok()
    write_manifest(out / MANIFEST, utterances)
    audio_s = sum(u.duration_s for u in utterances)
    report.extra.update({
        "text_items": len(items),
        "num_voices": len({u.speaker for u in utterances}),
        "total_audio_s": round(audio_s, 2),
        "worker_cpu_s": round(cpu_s, 2),
        "realtime_factor_per_core": round(audio_s / cpu_s, 1) if cpu_s > 0 else None,
    })
    mark_done(out, key)
    return report.finish()


def _input_files(cfg: SynthConfig) -> list[str]:
    return [] if cfg.source == "tinyspeech" else [cfg.source]


def load_items(cfg: SynthConfig) -> list[TextItem]:
    """The text items to speak: generated TinySpeech, or read from a .txt/.jsonl file."""
    if cfg.source == "tinyspeech":
        from koe.tinyspeech import generate_corpus

        return generate_corpus(num_items=cfg.num_items, seed=cfg.seed)
    return read_text_items(cfg.source)


def plan_jobs(cfg: SynthConfig, items: list[TextItem], out: Path, report: StageReport) -> list[Job]:
    """Draw voice, rate and pitch per item from its own seed; list items that cannot become utterances."""
    jobs, seen, files = [], set(), set()
    (lo_rate, hi_rate), (lo_pitch, hi_pitch) = cfg.rate_wpm_range, cfg.pitch_range
    for item in items:
        if item.id in seen:
            report.fail(item.id, f"duplicate-id: {_source_name(cfg)}: text item id {item.id!r} appears twice")
            continue
        seen.add(item.id)
        if item.split not in SPLITS:
            report.fail(item.id, f"bad-split: {item.id}: split {item.split!r} is not one of {SPLITS}")
            continue
        rng = rng_for(cfg.seed, item.id)
        picks = rng.choice(len(cfg.voices), size=cfg.voices_per_item, replace=False)
        for v in sorted(int(p) for p in picks):
            voice = cfg.voices[v]
            utt_id = f"{item.id}-{voice}"
            rate, pitch = int(rng.integers(lo_rate, hi_rate + 1)), int(rng.integers(lo_pitch, hi_pitch + 1))
            name = _file_name(utt_id)
            if name in files:
                report.fail(utt_id, f"duplicate-id: {utt_id}: its WAV name {name}.wav is taken by another item")
                continue
            files.add(name)
            jobs.append(Job(utt_id, item, voice, rate, pitch, out / WAV_DIR / f"{name}.wav"))
    return jobs


def synth_job(job: Job) -> JobResult:
    """Synthesize one utterance and write its WAV; a KoeInputError becomes the result's error."""
    from koe.synth.espeak import synthesize

    start = time.process_time()
    try:
        syn = synthesize(job.item.text, voice=job.voice, rate_wpm=job.rate_wpm, pitch=job.pitch)
    except KoeInputError as e:
        return JobResult(job.utt_id, None, str(e), time.process_time() - start)
    job.wav_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.wav_path.with_name(job.wav_path.name + f".tmp{os.getpid()}")
    sf.write(str(tmp), syn.audio, syn.sample_rate_hz, subtype="PCM_16", format="WAV")
    os.replace(tmp, job.wav_path)
    meta = {**job.item.meta, "item_id": job.item.id, "voice": job.voice, "rate_wpm": job.rate_wpm,
            "pitch": job.pitch, "kind": job.item.kind}
    utt = Utterance(
        id=job.utt_id, audio_path=f"{WAV_DIR}/{job.wav_path.name}", sample_rate_hz=syn.sample_rate_hz,
        duration_s=round(syn.duration_s, 4), speaker=job.voice, text=syn.text, words=syn.words, phones=syn.phones,
        split=job.item.split, meta=meta,
    )
    return JobResult(job.utt_id, utt, None, time.process_time() - start)


def _file_name(utt_id: str) -> str:
    return re.sub(r"[^\w.+-]", "_", utt_id)


def _source_name(cfg: SynthConfig) -> str:
    return "tinyspeech" if cfg.source == "tinyspeech" else str(cfg.source)
