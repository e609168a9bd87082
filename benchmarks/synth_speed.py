"""Speed of koe.synth: real-time factor per CPU core (audio seconds / CPU seconds) of `synthesize`, per voice.

    .venv/bin/python benchmarks/synth_speed.py                 # 100 TinySpeech-like sentences x 6 voices
    .venv/bin/python benchmarks/synth_speed.py --sentences 300 --json out.json

CPU time is `time.process_time()` of this single-threaded process around each call, so it counts the whole
call: a fresh libespeak-ng session (load, initialise, set voice, terminate, unload), synthesis, event parsing
and the 22.05 -> 16 kHz resampling; WAV writing is not included. Target: >= 100x real time per core. A second
column measures synthesis alone (the `espeak_Synth` call inside the session) to show the session overhead.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from koe.synth.espeak import _get_engine, _set_voice, synthesize

VOICES = ["en-us", "en+m3", "en-us+f3", "en-gb-scotland+klatt", "en-029+m5", "en-gb-x-rp+f2"]
SUBJECTS = ["the old fox", "a small bird", "the red dog", "my little sister", "the tall man", "a happy cat"]
VERBS = ["sees", "finds", "likes", "walks to", "looks at", "runs past"]
OBJECTS = ["the river", "a big tree", "the green hill", "an old house", "the blue boat", "a quiet garden"]
TAILS = ["", " in the morning", " after the rain", " with a friend", " because it is warm", " and then it sleeps"]


def sentences(n: int, seed: int = 0) -> list[str]:
    """TinySpeech-like statements and questions (koe.tinyspeech's generator when available)."""
    try:
        from koe.tinyspeech import generate_corpus

        return [item.text for item in generate_corpus(num_items=n, seed=seed)]
    except ImportError:
        rng = np.random.default_rng(seed)
        out = []
        for i in range(n):
            s, v, o, t = (str(rng.choice(x)) for x in (SUBJECTS, VERBS, OBJECTS, TAILS))
            out.append(f"Does {s} {v.replace('s ', ' ', 1) if ' ' in v else v[:-1]} {o}{t}?" if i % 4 == 3
                       else f"{s.capitalize()} {v} {o}{t}.")
        return out


def measure(texts: list[str], voice: str) -> dict:
    audio_s = cpu_s = synth_only_s = 0.0
    for text in texts:
        start = time.process_time()
        audio_s += synthesize(text, voice=voice, rate_wpm=175).duration_s
        cpu_s += time.process_time() - start
    engine = _get_engine()
    for text in texts:
        with engine.lock, engine.session() as lib:
            _set_voice(lib, voice, 175, 50)
            start = time.process_time()
            engine.synth(lib, text)
            synth_only_s += time.process_time() - start
    return {"voice": voice, "utterances": len(texts), "audio_s": round(audio_s, 1), "cpu_s": round(cpu_s, 3),
            "rtf_per_core": round(audio_s / cpu_s, 1), "rtf_synth_only": round(audio_s / synth_only_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    texts = sentences(args.sentences)
    synthesize("warm up", voice="en-us")
    rows = [measure(texts, v) for v in VOICES]
    total_audio, total_cpu = sum(r["audio_s"] for r in rows), sum(r["cpu_s"] for r in rows)
    print(f"{'voice':<24}{'utts':>6}{'audio s':>10}{'cpu s':>9}{'x RT/core':>11}{'x RT synth only':>17}")
    for r in rows:
        print(f"{r['voice']:<24}{r['utterances']:>6}{r['audio_s']:>10.1f}{r['cpu_s']:>9.2f}{r['rtf_per_core']:>11.0f}"
              f"{r['rtf_synth_only']:>17.0f}")
    print(f"{'all':<24}{sum(r['utterances'] for r in rows):>6}{total_audio:>10.1f}{total_cpu:>9.2f}"
          f"{total_audio / total_cpu:>11.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "rtf_per_core": round(total_audio / total_cpu, 1)}, f, indent=2)


if __name__ == "__main__":
    main()
