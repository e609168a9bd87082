"""Multi-level codec codes of a manifest: written by `koe units encode-codec`, read by `koe units stats`.

    koe units encode-codec runs/tiny/synth/manifest.jsonl codec=runs/codec out_dir=runs/codes
    koe units stats runs/codes          # bitrate, usage and perplexity per level

    out_dir/meta.json   {"schema_version": 1, "kind": "codec-codes", "codec": "runs/codec", "model_type": "koe_codec",
                         "num_levels": 4, "codebook_size": 256, "frame_rate_hz": 50.0, "manifest": "...",
                         "num_utterances": 600}
    out_dir/codes.npz   ids (unicode [N]), offsets (int64 [N+1] frame offsets), codes (int32 [levels, total frames])

Codes are frame-level (no dedup: every level changes nearly every frame). How they become LM tokens is
koe.units.codec_layout's job.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from koe.stage import KoeInputError, StageReport, progress, write_json

KIND = "codec-codes"
CODES_FILE = "codes.npz"


@dataclasses.dataclass
class CodesMeta:
    """meta.json of a codec-codes folder."""

    codec: str
    model_type: str
    num_levels: int
    codebook_size: int
    frame_rate_hz: float
    manifest: str
    num_utterances: int
    kind: str = KIND
    schema_version: int = 1

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> CodesMeta:
        try:
            return cls(**d)
        except TypeError as e:
            raise KoeInputError(f"{where}: not codec-codes metadata ({e})") from None


def is_codes_dir(directory: str | Path) -> bool:
    f = Path(directory) / "meta.json"
    return f.is_file() and json.loads(f.read_text()).get("kind") == KIND


def write_codes(out_dir: Path, meta: CodesMeta, ids: list[str], codes: list[np.ndarray]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    offsets = np.concatenate([[0], np.cumsum([c.shape[1] for c in codes])]).astype(np.int64)
    joined = np.concatenate(codes, 1).astype(np.int32) if codes else np.zeros((meta.num_levels, 0), np.int32)
    tmp = out_dir / f".{CODES_FILE}.tmp{os.getpid()}"
    with tmp.open("wb") as f:
        np.savez(f, ids=np.array(ids, dtype=np.str_), offsets=offsets, codes=joined)
    os.replace(tmp, out_dir / CODES_FILE)
    write_json(out_dir / "meta.json", dataclasses.asdict(meta))


def read_codes(directory: str | Path) -> tuple[CodesMeta, dict[str, np.ndarray]]:
    """(meta, {utterance id: int64 [levels, frames]})."""
    directory = Path(directory)
    meta = CodesMeta.from_dict(json.loads((directory / "meta.json").read_text()), str(directory / "meta.json"))
    try:
        with np.load(directory / CODES_FILE) as z:
            ids, offsets, codes = z["ids"], z["offsets"], z["codes"]
    except (OSError, KeyError, ValueError) as e:
        raise KoeInputError(f"unreadable: {directory / CODES_FILE}: not a codes file ({e})") from None
    if codes.shape[0] != meta.num_levels or offsets[-1] != codes.shape[1]:
        raise KoeInputError(f"corrupt: {directory}: codes {codes.shape} disagree with meta.json / offsets")
    return meta, {str(i): codes[:, a:b].astype(np.int64) for i, a, b in zip(ids, offsets[:-1], offsets[1:],
                                                                               strict=True)}


def run_encode_codec(cfg) -> StageReport:
    """Encode every utterance of cfg.manifest with cfg.codec into out_dir (a bad item is listed, the rest go on)."""
    from koe.audio import load_audio
    from koe.config import save_config
    from koe.corpus.manifest import read_manifest
    from koe.units.codec import CodecTokenizer

    report = StageReport("units encode-codec", cfg.out_dir)
    save_config(cfg, cfg.out_dir)
    codec = CodecTokenizer.load(cfg.codec, device=cfg.device)
    ids, codes = [], []
    utts = read_manifest(cfg.manifest)
    for utt in progress(utts[: cfg.max_utterances or None], desc="encode-codec", unit="utt"):
        report.items_in += 1
        try:
            wav = load_audio(utt.resolve_audio(cfg.manifest.parent), utt.offset_s,
                             utt.duration_s if utt.offset_s else None)
            codes.append(codec.encode(wav))
            ids.append(utt.id)
            report.ok()
        except KoeInputError as e:
            report.fail(utt.id, str(e), utt.audio_path)
    meta = CodesMeta(str(cfg.codec), codec.model_type, codec.num_levels, codec.codebook_size, codec.frame_rate_hz,
                     str(cfg.manifest), len(ids))
    write_codes(cfg.out_dir, meta, ids, codes)
    report.items_out = len(ids)
    report.extra.update(bitrate_bps=codec.bitrate_bps, frame_rate_hz=codec.frame_rate_hz, levels=codec.num_levels)
    return report.finish()


def codes_stats(directory: str | Path) -> dict[str, Any]:
    """Per level: usage, perplexity, bits/s; totals: bitrate, seconds, frames (what `koe units stats` reports)."""
    from koe.units.rvq import codebook_stats

    meta, by_id = read_codes(directory)
    if not by_id or not sum(c.shape[1] for c in by_id.values()):
        raise KoeInputError(f"empty: {directory}: no codes to measure")
    codes = np.concatenate(list(by_id.values()), 1)
    bad = (codes < 0) | (codes >= meta.codebook_size)
    if bad.any():
        raise KoeInputError(f"codes out of range: {directory}: {int(bad.sum())} codes outside "
                            f"[0, {meta.codebook_size})")
    levels = codebook_stats(codes, meta.codebook_size, meta.frame_rate_hz)
    return {"units_dir": str(directory), "kind": KIND, "codec": meta.codec, "model_type": meta.model_type,
            "num_utterances": len(by_id), "num_levels": meta.num_levels, "codebook_size": meta.codebook_size,
            "frame_rate_hz": meta.frame_rate_hz, "frames": int(codes.shape[1]),
            "audio_hours": codes.shape[1] / meta.frame_rate_hz / 3600,
            "token_rate_hz": meta.frame_rate_hz * meta.num_levels,
            "bitrate_bps": meta.frame_rate_hz * meta.num_levels * math.log2(meta.codebook_size),
            "codebook_usage": float(np.mean([s["usage"] for s in levels])),
            "perplexity": float(np.mean([s["perplexity"] for s in levels])), "levels": levels}


def render_codes_markdown(stats: dict[str, Any]) -> str:
    head = (f"# Codec code statistics: {stats['units_dir']}\n\ncodec {stats['codec']} ({stats['model_type']}), "
            f"{stats['num_utterances']} utterances, {stats['audio_hours']:.3f} h, {stats['num_levels']} levels x "
            f"{stats['codebook_size']} codes at {stats['frame_rate_hz']:g} Hz = {stats['bitrate_bps']:.0f} bit/s\n\n"
            "| level (1 = coarsest) | usage | perplexity | bit/s |\n|---|---|---|---|\n")
    return head + "".join(f"| {s['level'] + 1} | {s['usage']:.3f} | {s['perplexity']:.1f} | {s['bitrate_bps']:.0f} |\n"
                          for s in stats["levels"])
