"""How well a phonetic tokenizer reads isolated words, beside sentences; one table for a finished tiny run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/phonetic_isolated.py --run runs/tiny

`--run` is the out_dir of `koe run tiny` (synth/manifest.jsonl, phonetic/, tokenizer/, units/, bench/lexical-tiny/).
The tokenizer must be phonetic with `quantizer=classes`, so each unit is one phone class. Phone error rate (PER:
substitutions + deletions + insertions of a minimum edit-distance alignment, over reference phones; silences
dropped on both sides) of the tokenizer's units, as `koe units encode` makes them (argmax, `min_run_frames`):

- held-out sentences: TinySpeech utterances of 3+ words the classifier never trained on (phonetic/heldout_ids.txt),
  against the manifest's phones;
- lexical benchmark words: every candidate WAV of bench/lexical-tiny (a word or pseudo-word said alone), against
  espeak's phonemes of its text in its voice (koe.synth.espeak.phonemize);
- word in its sentence: the middle word of each held-out sentence, read from the units of the whole sentence;
- same word, cut out: that word's audio alone, against the same reference. This row against the one above
  separates "citation form sounds different" from "the classifier lacks context". No padding by default, as the
  benchmark's WAVs have none; `--pad-s` adds digital silence each side, which inflates the error (the utterance
  normalisation then sees log-mel frames at the log floor).

Then a Witten-Bell interpolated unit 4-gram trained on the run's unit shards (units/) scores each lexical pair by
mean log-probability per token (word vs pseudo-word: ties count 0.5; accuracy averaged over voices per pair, then
over pairs), once on the benchmark's cached units and once on espeak's true phones of the same words: the gap is what
the tokenizer's errors on isolated words cost a small LM.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import time
from pathlib import Path

import numpy as np

from koe.audio import TARGET_SAMPLE_RATE_HZ, load_audio
from koe.bench.items import BenchItem, read_items
from koe.bench.tokens import cache_path, read_cache
from koe.corpus.manifest import Utterance, read_manifest
from koe.stage import KoeInputError, progress
from koe.synth.espeak import phonemize
from koe.units.phonetic import SILENCE, phone_class
from koe.units.phonetic_training import HELDOUT_FILE
from koe.units.shards import read_unit_shards
from koe.units.tokenizer import UnitTokenizer, dedup_units

BENCH, ORDER = "bench/lexical-tiny", 4


class PhoneErrors:
    """Substitution, deletion and insertion counts summed over utterances."""

    def __init__(self) -> None:
        self.items = self.ref = self.sub = self.dele = self.ins = 0

    def add(self, ref: list[str], hyp: list[str]) -> None:
        # d[i][j]: edits turning ref[:i] into hyp[:j]; the backtrace prefers a match/substitution, then a deletion
        d = [[i + j if i == 0 or j == 0 else 0 for j in range(len(hyp) + 1)] for i in range(len(ref) + 1)]
        for i in range(1, len(ref) + 1):
            for j in range(1, len(hyp) + 1):
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
        i, j = len(ref), len(hyp)
        while i or j:
            if i and j and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
                self.sub += ref[i - 1] != hyp[j - 1]
                i, j = i - 1, j - 1
            elif i and d[i][j] == d[i - 1][j] + 1:
                self.dele, i = self.dele + 1, i - 1
            else:
                self.ins, j = self.ins + 1, j - 1
        self.items, self.ref = self.items + 1, self.ref + len(ref)

    def row(self, name: str) -> str:
        n = max(self.ref, 1)
        return (f"| {name} | {self.items} | {self.ref} | {(self.sub + self.dele + self.ins) / n:.3f} "
                f"| {self.sub / n:.3f} | {self.dele / n:.3f} | {self.ins / n:.3f} |")


class WittenBell:
    """Interpolated Witten-Bell n-gram: each order's estimate is mixed with the lower one's by c / (c + types)."""

    def __init__(self, seqs: list[list[str]], order: int = ORDER) -> None:
        self.order = order
        self.counts: collections.Counter[tuple[str, ...]] = collections.Counter()  # history + token, every order
        self.context: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.followers: dict[tuple[str, ...], set[str]] = collections.defaultdict(set)
        vocab = set()
        for seq in seqs:
            s = ["<s>"] * (order - 1) + seq + ["</s>"]
            vocab.update(s)
            for i in range(order - 1, len(s)):
                for n in range(order):
                    h = tuple(s[i - n:i])
                    self.counts[(*h, s[i])] += 1
                    self.context[h] += 1
                    self.followers[h].add(s[i])
        self.uniform = 1.0 / (len(vocab) + 1)

    def mean_logprob(self, seq: list[str]) -> float:
        s = ["<s>"] * (self.order - 1) + seq
        return float(np.mean([math.log(self.prob(s[i - self.order + 1:i], s[i]))
                              for i in range(self.order - 1, len(s))]))

    def prob(self, history: list[str], token: str) -> float:
        p = self.uniform
        for n in range(self.order):
            h = tuple(history[len(history) - n:]) if n else ()
            c = self.context.get(h, 0)
            if c:
                lam = c / (c + len(self.followers[h]))
                p = lam * self.counts.get((*h, token), 0) / c + (1 - lam) * p
        return p


def heldout_sentences(run: Path, tok: UnitTokenizer, limit: int) -> list[Utterance]:
    """The classifier's held-out utterances (phonetic/heldout_ids.txt, written by `koe units train-phonetic`) with
    3+ words."""
    spec = json.loads((run / "phonetic/phonetic.json").read_text())
    if spec["weights_sha256"] != tok.spec.features.params.get("weights_sha256"):
        raise KoeInputError(f"{run / 'tokenizer'}: its classifier is not {run / 'phonetic'}; held-out set unknown")
    ids_path = run / "phonetic" / HELDOUT_FILE
    if not ids_path.exists():
        raise KoeInputError(f"{ids_path}: missing (a classifier trained before koe wrote it): rerun the tiny recipe")
    held = ids_path.read_text().split()
    by_id = {u.id: u for u in read_manifest(run / "synth/manifest.jsonl")}
    return [by_id[i] for i in held if len(by_id[i].words or []) >= 3][:limit]


def tokenize(tok: UnitTokenizer, wavs: list[np.ndarray], desc: str) -> list[np.ndarray]:
    """Frame-level unit labels (after the tokenizer's min_run smoothing) of each waveform, in batches of 50."""
    return [lab for i in progress(range(0, len(wavs), 50), desc) for lab in tok.frame_units(wavs[i:i + 50])]


def names(tok: UnitTokenizer, labels: np.ndarray) -> list[str]:
    """Phone names of the dedup units of frame labels, silence dropped."""
    phones = tok.spec.features.params["phones"]
    return [phones[u] for u in dedup_units(labels, tok.spec.min_run_frames)[0] if phones[u] != SILENCE]


def ref_phones(labels: list[str]) -> list[str]:
    return [p for p in map(phone_class, labels) if p != SILENCE]


def sentence_rows(run: Path, tok: UnitTokenizer, limit: int, pad_s: float) -> list[str]:
    """PER on held-out sentences, on their middle words in context and on the same words cut out."""
    utts = heldout_sentences(run, tok, limit)
    base, rate = run / "synth", tok.frame_rate_hz
    wavs = [load_audio(u.resolve_audio(base), u.offset_s, u.duration_s if u.offset_s else None) for u in utts]
    sr = TARGET_SAMPLE_RATE_HZ
    pad = np.zeros(round(pad_s * sr), np.float32)
    words = [u.words[len(u.words) // 2] for u in utts]
    crops = [np.concatenate([pad, w[round(a * sr):round(b * sr)], pad])
             for w, (_, a, b) in zip(wavs, words, strict=True)]
    whole, in_context, cut = PhoneErrors(), PhoneErrors(), PhoneErrors()
    for u, lab, (_, a, b), lab_cut in zip(utts, tokenize(tok, wavs, "sentences"), words,
                                         tokenize(tok, crops, "cut words"), strict=True):
        whole.add(ref_phones([p for p, _, _ in u.phones]), names(tok, lab))
        ref = ref_phones([p for p, s, e in u.phones if s >= a - 1e-6 and e <= b + 1e-6])
        in_context.add(ref, names(tok, lab[round(a * rate):round(b * rate)]))
        cut.add(ref, names(tok, lab_cut))
    return [whole.row("held-out sentences"), in_context.row("middle word, read in its sentence"),
            cut.row("same word cut out, read alone")]


def bench_rows(run: Path, tok: UnitTokenizer, items: list[BenchItem]) -> tuple[str, dict[str, list[str]]]:
    """PER on the lexical benchmark's words; returns the row and espeak's phones of each WAV."""
    sides = [(c.text, it.voice, c.audio) for it in items for c in it.candidates]
    wavs = [load_audio(run / BENCH / audio) for _, _, audio in sides]
    errors, truth = PhoneErrors(), {}
    for (text, voice, audio), lab in zip(sides, tokenize(tok, wavs, "bench words"), strict=True):
        truth[audio] = ref_phones([p for word in phonemize(text, voice) for p in word])
        errors.add(truth[audio], names(tok, lab))
    return errors.row("lexical benchmark words (alone)"), truth


def lexical_accuracy(lm: WittenBell, items: list[BenchItem], seqs: dict[str, list[str]]) -> float:
    """Word beats pseudo-word by mean log-prob per token; averaged over voices per pair, then over pairs."""
    groups: dict[str, list[float]] = collections.defaultdict(list)
    for it in items:
        good, bad = (lm.mean_logprob(seqs[it.candidates[k].audio]) for k in (it.label, 1 - it.label))
        groups[it.group].append(1.0 if good > bad else 0.5 if good == bad else 0.0)
    return float(np.mean([np.mean(v) for v in groups.values()]))


def ngram_rows(run: Path, tok: UnitTokenizer, items: list[BenchItem], truth: dict[str, list[str]]) -> list[str]:
    phones = tok.spec.features.params["phones"]
    path = cache_path(run / BENCH, tok)
    cached = read_cache(path)
    if missing := truth.keys() - cached.keys():
        raise KoeInputError(f"{path}: no units for {len(missing)} WAVs (run `koe eval` on the benchmark)")
    lm = WittenBell([[phones[u] for u in r.units] for r in read_unit_shards(run / "units")])
    units = {a: [phones[u] for u in us] for a, us in cached.items()}
    n = len({it.group for it in items})
    return [f"| unit {ORDER}-gram lexical accuracy, {name} | {n} pairs | | {lexical_accuracy(lm, items, seqs):.3f} "
            "| | | |" for name, seqs in (("bench units", units), ("bench true phones", truth))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="out_dir of a finished `koe run tiny`")
    ap.add_argument("--max-sentences", type=int, default=200, help="held-out sentences to read (and cut words from)")
    ap.add_argument("--pad-s", type=float, default=0.0, help="digital silence each side of a cut-out word")
    args = ap.parse_args()
    start = time.perf_counter()
    tok = UnitTokenizer.load(args.run / "tokenizer")
    if tok.spec.features.backend != "phonetic" or tok.spec.fit.get("quantizer") != "classes":
        raise KoeInputError(f"{args.run / 'tokenizer'}: not a phonetic tokenizer with quantizer=classes")
    items = [it for it in read_items(args.run / BENCH) if it.task == "pair"]
    bench_row, truth = bench_rows(args.run, tok, items)
    sentences, in_context, cut = sentence_rows(args.run, tok, args.max_sentences, args.pad_s)
    rows = [sentences, bench_row, in_context, cut, *ngram_rows(args.run, tok, items, truth)]
    print("| set | items | ref phones | PER / accuracy | sub | del | ins |\n|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{args.run}: tokenizer {tok.content_hash}, min_run_frames {tok.spec.min_run_frames}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
