"""Resynthesis quality of unit vocoders on held-out voices: WER ratio, MCD, speaker similarity, RTF, spectrograms.

    python benchmarks/vocoder_quality.py --manifest runs/voc/data/manifest.jsonl --units runs/voc/data/units \
        --vocoder baseline=runs/voc/baseline --vocoder hifigan=runs/voc/hifigan --out runs/voc/bench
    python benchmarks/vocoder_quality.py ... --device cuda --rtf-only          # speed alone (no ASR needed)

Held-out utterances (voices the vocoders never trained on: --held-out, default the GPU config's
exclude_speakers) are resynthesised from their true units, twice per vocoder: with the true unit durations and
with the vocoder's own durations (hifigan: its duration predictor; baseline: mean training durations).
A multi-speaker vocoder cannot know an unseen voice, so it speaks in the training voice whose speaker embedding is
nearest to the original's (cosine over 3 reference utterances per voice).

Metrics, per system, averaged over utterances:
- WER: pocketsphinx (US-English acoustic model, a closed-vocabulary bigram LM of the manifest's texts: see
  Recogniser) transcript vs the manifest text; the ratio divides by the same decoder's WER on the espeak originals.
- MCD: mel-cepstral distortion (dB) of 13 cepstra c1..c13 (real cepstrum of the 80-bin log-mel; c0 = loudness out)
  after DTW alignment: 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2), mean over aligned frames.
- speaker similarity: cosine of `speaker_embedding` (mean and std of c1..c20 over speech frames, a simple
  x-vector-free embedding) between resynthesis and original. Reference rows: two originals of the same voice
  (ceiling) and of different voices (floor).
- RTF: synthesis wall time / audio duration on --device (CPU: --threads threads).
Writes results.json, table.md and spectrogram PNGs (original vs each vocoder) to --out, and prints the table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.fft import dct

from koe.audio import load_audio
from koe.corpus.manifest import read_manifest
from koe.stage import KoeInputError
from koe.units.shards import read_unit_shards
from koe.vocoder import MelSpec, UnitVocoder, log_mel, units_to_audio

HELD_OUT = ["en-gb-x-rp+f2", "en-029+m5"]
SPEC = MelSpec()


def cepstra(wav: np.ndarray, n: int) -> np.ndarray:
    """[frames, n] cepstra c1..cn: the real cepstrum of the (even-extended) natural-log mel magnitude spectrum,
    i.e. the unnormalised DCT-II divided by 2 x bins, the scale the MCD formula's 10 / ln 10 assumes."""
    mel = log_mel(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), SPEC).numpy()
    return dct(mel, type=2, axis=1)[:, 1:n + 1] / (2 * mel.shape[1])


def speech_frames(wav: np.ndarray) -> np.ndarray:
    """Frames within 35 dB of the loudest one (leaves out silence, whose cepstra say nothing of the voice)."""
    mel = log_mel(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), SPEC).numpy()
    energy = np.log(np.exp(mel).sum(1))
    return energy > energy.max() - 35 / (20 / np.log(10))


def speaker_embedding(wav: np.ndarray) -> np.ndarray:
    c = cepstra(wav, 20)
    keep = speech_frames(wav)[: len(c)]
    c = c[keep] if keep.sum() >= 5 else c
    return np.concatenate([c.mean(0), c.std(0)])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def mcd(reference: np.ndarray, test: np.ndarray) -> float:
    """DTW-aligned mel-cepstral distortion in dB (see module docstring)."""
    a, b = cepstra(reference, 13), cepstra(test, 13)
    cost = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    steps = np.zeros_like(acc)
    acc[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            k = int(np.argmin((acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])))
            prev = ((i - 1, j - 1), (i - 1, j), (i, j - 1))[k]
            acc[i, j] = cost[i - 1, j - 1] + acc[prev]
            steps[i, j] = steps[prev] + 1
    return float(10 / np.log(10) * np.sqrt(2) * acc[-1, -1] / steps[-1, -1])


class Recogniser:
    """pocketsphinx's en-us acoustic model with a closed-vocabulary bigram LM over the manifest's texts.

    The bundled general-English LM knows none of TinySpeech's invented names and scores ~0.9 WER on the clean
    espeak originals, which leaves nothing to compare; a bigram LM of the corpus (Witten-Bell backoff to add-one
    unigrams) with CMU-dictionary pronunciations, espeak-derived ones for the rest (koe.align.g2p), makes the
    originals readable, and the same decoder judges every system.
    """

    def __init__(self, texts: list[str], work_dir: Path):
        from pocketsphinx import Decoder

        sentences = [normalise(t).split() for t in texts]
        work_dir.mkdir(parents=True, exist_ok=True)
        lm, dictionary = work_dir / "asr.arpa", work_dir / "asr.dict"
        lm.write_text(bigram_arpa(sentences))
        dictionary.write_text(pronunciations(sorted({w for s in sentences for w in s})))
        self.decoder = Decoder(lm=str(lm), dict=str(dictionary), loglevel="FATAL")

    def __call__(self, wav: np.ndarray) -> str:
        pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16).tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def normalise(text: str) -> str:
    return " ".join("".join(ch if ch.isalnum() or ch.isspace() or ch == "'" else " " for ch in text.lower()).split())


def bigram_arpa(sentences: list[list[str]]) -> str:
    """ARPA text of a Witten-Bell bigram LM (add-one unigrams) over the sentences, with <s> and </s>."""
    from collections import Counter

    uni, bi = Counter(), Counter()
    for s in sentences:
        toks = ["<s>", *s, "</s>"]
        uni.update(toks)
        bi.update(itertools.pairwise(toks))
    vocab, total = sorted(uni), sum(uni.values())
    p_uni = {w: (uni[w] + 1) / (total + len(vocab)) for w in vocab}
    followers: dict[str, list[str]] = {}
    for h, w in bi:
        followers.setdefault(h, []).append(w)
    p_bi, backoff = {}, {}
    for h, ws in followers.items():
        count, types = sum(bi[(h, w)] for w in ws), len(ws)
        for w in ws:
            p_bi[(h, w)] = bi[(h, w)] / (count + types)
        backoff[h] = (types / (count + types)) / max(1e-9, 1 - sum(p_uni[w] for w in ws))
    lines = ["\\data\\", f"ngram 1={len(vocab)}", f"ngram 2={len(p_bi)}", "", "\\1-grams:"]
    for w in vocab:
        lines.append(f"{np.log10(p_uni[w]):.5f} {w} {np.log10(backoff.get(w, 1.0)):.5f}")
    lines += ["", "\\2-grams:"] + [f"{np.log10(p):.5f} {h} {w}" for (h, w), p in sorted(p_bi.items())]
    return "\n".join([*lines, "", "\\end\\", ""])


def pronunciations(words: list[str]) -> str:
    """Dictionary lines: every CMU variant of a known word, an espeak-derived one for the rest."""
    from koe.align.g2p import pronounce_word
    from koe.align.pocketsphinx import dictionary_path

    wanted, out, found = set(words) - {"<s>", "</s>"}, [], set()
    with dictionary_path().open(encoding="utf-8") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if head.split("(")[0] in wanted:
                out.append(line.rstrip("\n"))
                found.add(head.split("(")[0])
    out += [f"{w} {' '.join(pronounce_word(w))}" for w in sorted(wanted - found)]
    return "\n".join(out) + "\n"


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words) of a word-level Levenshtein alignment on lower-cased, punctuation-free words."""
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def pick_utterances(manifest: Path, held_out: list[str], num: int) -> list:
    """`num` held-out utterances, alternating between voices, in id order (deterministic)."""
    by_voice = {v: sorted((u for u in read_manifest(manifest) if u.speaker == v), key=lambda u: u.id)
                for v in held_out}
    picked = [u for group in zip(*by_voice.values(), strict=False) for u in group][:num]
    if not picked:
        raise SystemExit(f"no utterances of {held_out} in {manifest}")
    return picked


def nearest_voice(vocoder, manifest: Path, wav: np.ndarray, cache: dict) -> str | None:
    """The vocoder's training voice nearest to `wav` by speaker embedding (None for single-voice vocoders)."""
    speakers = getattr(vocoder, "speakers", None)
    if not speakers:
        return None
    if "refs" not in cache:
        utts = read_manifest(manifest)
        cache["refs"] = {}
        for s in speakers:
            mine = sorted((u for u in utts if u.speaker == s), key=lambda u: u.id)[:3]
            embs = [speaker_embedding(load_audio(u.resolve_audio(manifest.parent))) for u in mine]
            if embs:
                cache["refs"][s] = np.mean(embs, 0)
    if not cache["refs"]:
        return speakers[0]
    emb = speaker_embedding(wav)
    return max(cache["refs"], key=lambda s: cosine(emb, cache["refs"][s]))


def timed_synthesis(vocoder, units, durations, speaker, device: str) -> tuple[np.ndarray, float]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    audio = units_to_audio(vocoder, units, durations, speaker=speaker)
    if device == "cuda":
        torch.cuda.synchronize()
    return audio, time.perf_counter() - start


def plot_spectrograms(path: Path, title: str, panels: list[tuple[str, np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), sharex=True)
    for ax, (name, wav) in zip(np.atleast_1d(axes), panels, strict=True):
        mel = log_mel(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), SPEC).numpy().T
        ax.imshow(mel, origin="lower", aspect="auto", vmin=-11, vmax=mel.max(),
                  extent=(0, mel.shape[1] / SPEC.frame_rate_hz, 0, mel.shape[0]))
        ax.set_ylabel(f"{name}\nmel bin")
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--units", type=Path, required=True, help="unit shards of the manifest (the true units)")
    p.add_argument("--vocoder", action="append", required=True, help="NAME=PATH, repeatable")
    p.add_argument("--held-out", nargs="+", default=HELD_OUT, help="voices no vocoder trained on")
    p.add_argument("--num", type=int, default=40, help="held-out utterances")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for synthesis")
    p.add_argument("--rtf-only", action="store_true", help="speed alone: no ASR, MCD or similarity")
    p.add_argument("--plots", type=int, default=2, help="spectrogram figures")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    vocoders = {name: UnitVocoder.load(path, device=args.device)
                for name, _, path in (v.partition("=") for v in args.vocoder)}
    units = {r.id: r for r in read_unit_shards(args.units)}
    utts = [u for u in pick_utterances(args.manifest, args.held_out, args.num) if u.id in units]
    rows = run(args, vocoders, units, utts)
    table = render(rows, args)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                       "utterances": [u.id for u in utts], "rows": rows}, indent=2))


def run(args, vocoders: dict, units: dict, utts: list) -> list[dict]:
    systems = [(f"{name} ({dur})", name, dur) for name in vocoders for dur in ("true dur", "own dur")]
    stats = {s: {"errors": 0, "words": 0, "mcd": [], "sim": [], "synth_s": 0.0, "audio_s": 0.0, "failed": []}
             for s in ["espeak original"] + [s for s, _, _ in systems]}
    recognise = None if args.rtf_only else Recogniser([u.text for u in read_manifest(args.manifest)], args.out)
    cache: dict = {}
    originals: dict[str, list[np.ndarray]] = {}
    for v in vocoders.values():  # warm-up (first CUDA call, allocator)
        units_to_audio(v, units[utts[0].id].units[:5])
    for k, utt in enumerate(utts):
        rec = units[utt.id]
        wav = None if args.rtf_only else load_audio(utt.resolve_audio(args.manifest.parent))
        panels = [("original", wav)]
        if wav is not None:
            originals.setdefault(utt.speaker, []).append(wav)
            score_into(stats["espeak original"], utt.text, wav, None, recognise)
        for system, name, dur in systems:
            vocoder = vocoders[name]
            speaker = None if wav is None else nearest_voice(vocoder, args.manifest, wav, cache.setdefault(name, {}))
            try:
                audio, seconds = timed_synthesis(vocoder, rec.units, rec.durations if dur == "true dur" else None,
                                                 speaker, args.device)
            except KoeInputError as e:
                stats[system]["failed"].append(f"{utt.id}: {e}")
                continue
            stats[system]["synth_s"] += seconds
            stats[system]["audio_s"] += len(audio) / SPEC.sample_rate_hz
            if wav is not None:
                score_into(stats[system], utt.text, wav, audio, recognise)
                if dur == "true dur":
                    panels.append((name, audio))
        if wav is not None and k < args.plots:
            plot_spectrograms(args.out / f"spectrogram_{k}.png", f"{utt.id}: {utt.text}", panels)
    if originals and len(originals) >= 2:
        voices = list(originals)
        same = [cosine(speaker_embedding(a), speaker_embedding(b)) for v in voices
                for a, b in zip(originals[v][::2], originals[v][1::2], strict=False)]
        diff = [cosine(speaker_embedding(a), speaker_embedding(b))
                for a, b in zip(originals[voices[0]], originals[voices[1]], strict=False)]
        stats["espeak original"]["sim_same_voice"], stats["espeak original"]["sim_other_voice"] = same, diff
    return [_summary(system, s, stats["espeak original"]) for system, s in stats.items()]


def score_into(s: dict, text: str, original: np.ndarray, audio: np.ndarray | None, recognise) -> None:
    """Add one utterance to a system's running stats (WER counts, MCD, speaker similarity); `audio` None scores
    the original itself. Shared with benchmarks/codec_quality.py so both tables are scored alike."""
    test = original if audio is None else audio
    errors, words = word_errors(text, recognise(test))
    s["errors"] += errors
    s["words"] += words
    if audio is not None:
        s["mcd"].append(mcd(original, audio))
        s["sim"].append(cosine(speaker_embedding(original), speaker_embedding(audio)))


def _summary(system: str, s: dict, original: dict) -> dict:
    wer = s["errors"] / s["words"] if s["words"] else None
    base = original["errors"] / original["words"] if original["words"] else None
    row = {"system": system, "wer": wer, "wer_ratio": (wer / base if wer is not None and base else None),
           "mcd_db": float(np.mean(s["mcd"])) if s["mcd"] else None,
           "speaker_sim": float(np.mean(s["sim"])) if s["sim"] else None,
           "rtf": s["synth_s"] / s["audio_s"] if s["audio_s"] else None, "failed": s["failed"]}
    for key in ("sim_same_voice", "sim_other_voice"):
        if s.get(key):
            row[key] = float(np.mean(s[key]))
    return row


def render(rows: list[dict], args) -> str:
    def f(x, spec):
        return "-" if x is None else format(x, spec)

    lines = [f"held-out voices {', '.join(args.held_out)}; {args.num} utterances max; RTF on {args.device}"
             + (f" ({args.threads} threads)" if args.device == "cpu" else ""), "",
             "| system | WER | WER ratio | MCD (dB) | speaker sim | RTF | failed |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['system']} | {f(r['wer'], '.3f')} | {f(r['wer_ratio'], '.2f')} | {f(r['mcd_db'], '.2f')}"
                     f" | {f(r['speaker_sim'], '.3f')} | {f(r['rtf'], '.4f')} | {len(r['failed'])} |")
    ref = rows[0]
    if "sim_same_voice" in ref:
        lines.append(f"\nspeaker-sim references (originals): same voice {ref['sim_same_voice']:.3f}, "
                     f"other voice {ref['sim_other_voice']:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
