"""koe's own codec and the coarse-to-fine path on held-out voices: bitrate, usage per level, WER ratio, speaker sim.

    python benchmarks/codec_quality.py --manifest runs/c2f/data/manifest.jsonl --units runs/c2f/data/units \
        --codec runs/c2f/codec --c2f runs/c2f/c2f --num 30 --out runs/c2f/bench

Systems, each scored like benchmarks/vocoder_quality.py (pocketsphinx WER with the corpus bigram LM and its ratio to
the originals' WER, DTW mel-cepstral distortion, cepstral speaker similarity):
- espeak original;
- mel + Griffin-Lim: the true log-mel inverted by Griffin-Lim, the ceiling of a mel codec (koe's codec codes mel,
  its waveform comes from Griffin-Lim too);
- codec resynthesis: decode(encode(audio)) with all levels, and with the first level only (the coarse code);
- control: uniformly random codes of the same length through the codec (what the ASR's corpus LM makes of noise);
- coarse-to-fine: the held-out utterance's phonetic units and true durations -> codes -> codec decoder, in the
  training voice nearest to the original (the voice is unseen) and, as a control, the codec's first training voice.
Codebook usage and perplexity per level are over the codes of the scored utterances (held-out voices) and, from the
codec folder, its held-out training-voice evaluation. Writes results.json and table.md to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark: one WER/MCD/similarity
from vocoder_quality import (
    HELD_OUT,
    SPEC,
    Recogniser,
    cosine,
    nearest_voice,
    pick_utterances,
    score_into,
    speaker_embedding,
)

from koe.audio import load_audio
from koe.corpus.manifest import read_manifest
from koe.stage import KoeInputError
from koe.units.codec import CodecTokenizer
from koe.units.rvq import codebook_stats
from koe.units.shards import read_unit_shards
from koe.vocoder import UnitVocoder, griffin_lim, log_mel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--units", type=Path, required=True, help="phonetic unit shards of the manifest")
    p.add_argument("--codec", required=True, help="codec folder (or hub id)")
    p.add_argument("--c2f", type=Path, help="coarse-to-fine vocoder folder (kind unit-codec-c2f)")
    p.add_argument("--held-out", nargs="+", default=HELD_OUT)
    p.add_argument("--num", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    codec = CodecTokenizer.load(args.codec)
    c2f = UnitVocoder.load(args.c2f) if args.c2f else None
    units = {r.id: r for r in read_unit_shards(args.units)}
    utts = [u for u in pick_utterances(args.manifest, args.held_out, args.num) if u.id in units]
    recognise = Recogniser([u.text for u in read_manifest(args.manifest)], args.out)
    systems = ["espeak original", "mel + Griffin-Lim", "codec (all levels)", "codec (level 1 only)",
               "control: random codes"]
    if c2f is not None:
        systems += ["c2f (nearest voice)", "c2f (first voice)"]
    stats = {s: {"errors": 0, "words": 0, "mcd": [], "sim": [], "failed": []} for s in systems}
    all_codes, cache, originals = [], {}, {}
    rng = np.random.default_rng(0)
    for utt in utts:
        wav = load_audio(utt.resolve_audio(args.manifest.parent))
        originals.setdefault(utt.speaker, []).append(wav)
        codes = codec.encode(wav)
        all_codes.append(codes)
        audio = {"espeak original": None,
                 "mel + Griffin-Lim": griffin_lim(log_mel(torch.from_numpy(wav), SPEC), SPEC).numpy(),
                 "codec (all levels)": codec.decode(codes),
                 "codec (level 1 only)": _decode_levels(codec, codes, 1),
                 "control: random codes": codec.decode(rng.integers(0, codec.codebook_size, codes.shape))}
        if c2f is not None:
            rec = units[utt.id]
            for name, voice in (("c2f (nearest voice)", nearest_voice(c2f, args.manifest, wav, cache)),
                                ("c2f (first voice)", c2f.speakers[0])):
                try:
                    audio[name] = c2f.synthesize(rec.units, rec.durations, voice)
                except KoeInputError as e:
                    stats[name]["failed"].append(f"{utt.id}: {e}")
        for name, test in audio.items():
            if name in stats and (test is not None or name == "espeak original"):
                score_into(stats[name], utt.text, wav, test, recognise)
    base = stats["espeak original"]["errors"] / max(stats["espeak original"]["words"], 1)
    rows = [_row(name, s, base) for name, s in stats.items()]
    levels = codebook_stats(np.concatenate(all_codes, 1), codec.codebook_size, codec.frame_rate_hz)
    codec_cfg = json.loads((Path(args.codec) / "config.json").read_text()) if Path(args.codec).is_dir() else {}
    result = {"codec": str(args.codec), "bitrate_bps": codec.bitrate_bps, "levels": codec.num_levels,
              "codebook_size": codec.codebook_size, "frame_rate_hz": codec.frame_rate_hz,
              "usage_heldout_voices": levels, "codec_training_eval": codec_cfg.get("heldout"),
              "c2f_eval": json.loads((args.c2f / "vocoder.json").read_text()).get("heldout") if args.c2f else None,
              "utterances": [u.id for u in utts], "rows": rows, **similarity_references(originals)}
    table = render(result, args)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps(result, indent=2))


def similarity_references(originals: dict[str, list[np.ndarray]]) -> dict:
    """Speaker similarity of two originals of one voice (ceiling) and of two voices (floor), as vocoder_quality."""
    voices = list(originals)
    same = [cosine(speaker_embedding(a), speaker_embedding(b)) for v in voices
            for a, b in zip(originals[v][::2], originals[v][1::2], strict=False)]
    other = [cosine(speaker_embedding(a), speaker_embedding(b))
             for a, b in zip(originals[voices[0]], originals[voices[-1]], strict=False)] if len(voices) > 1 else []
    return {"sim_same_voice": float(np.mean(same)) if same else None,
            "sim_other_voice": float(np.mean(other)) if other else None}


def _decode_levels(codec: CodecTokenizer, codes: np.ndarray, n: int) -> np.ndarray:
    """Audio from the first n levels alone (koe's codec: sum of n codewords; other families: not supported)."""
    model = codec.model
    if codec.model_type != "koe_codec":
        return codec.decode(codes)
    c = torch.from_numpy(codes[:n])[:, None]
    with torch.no_grad():
        mel = model.reconstruct(model.quantizer.decode(c))[0]
    return griffin_lim(mel, model.mel).numpy()


def _row(name: str, s: dict, base: float) -> dict:
    wer = s["errors"] / s["words"] if s["words"] else None
    return {"system": name, "wer": wer, "wer_ratio": wer / base if wer is not None and base else None,
            "mcd_db": float(np.mean(s["mcd"])) if s["mcd"] else None,
            "speaker_sim": float(np.mean(s["sim"])) if s["sim"] else None, "failed": s["failed"]}


def render(result: dict, args) -> str:
    def f(x, spec):
        return "-" if x is None else format(x, spec)

    lines = [f"codec {result['codec']}: {result['levels']} levels x {result['codebook_size']} codes at "
             f"{result['frame_rate_hz']:g} Hz = {result['bitrate_bps']:.0f} bit/s; held-out voices "
             f"{', '.join(args.held_out)}, {len(result['utterances'])} utterances", "",
             "| level | usage (scored utterances) | perplexity |", "|---|---|---|"]
    lines += [f"| {s['level'] + 1} | {s['usage']:.3f} | {s['perplexity']:.1f} |"
              for s in result["usage_heldout_voices"]]
    lines += ["", "| system | WER | WER ratio | MCD (dB) | speaker sim | failed |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['system']} | {f(r['wer'], '.3f')} | {f(r['wer_ratio'], '.2f')} | "
                     f"{f(r['mcd_db'], '.2f')} | {f(r['speaker_sim'], '.3f')} | {len(r['failed'])} |")
    if result["sim_same_voice"] is not None and result["sim_other_voice"] is not None:
        lines.append(f"\nspeaker-sim references (originals): same voice {result['sim_same_voice']:.3f}, "
                     f"other voice {result['sim_other_voice']:.3f}")
    if result["c2f_eval"]:
        e = result["c2f_eval"]
        lines.append(f"\nc2f held-out (training voices) code accuracy per level: teacher-forced "
                     f"{e['teacher_forced_accuracy']}, generated {e['generated_accuracy']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
