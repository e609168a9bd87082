"""Pauses an acoustic model absorbed into words, found from the audio's energy and cut back out of the words.

    quiet = quiet_frames(audio, 16000, frame_s=0.01, offset_s=0.0078)  # per 10 ms frame: far below the speech
    split_at_quiet(words, phones, quiet_runs(quiet, 0.01, 0.0078))     # in place: word edges inside a pause move out
    stops_start_at_burst(words, phones, quiet, 0.01, 0.0078)            # in place: closures join the word before

pocketsphinx lets a word run on into a following pause, or start early inside a preceding one, when the pause does
not look like its silence model: espeak's breathy voices (`en-us+f3`) fill pauses and the end of the audio with
noise 40-60 dB below the vowels, which a nasal or a vowel fits better than silence ("flame [pause] and": "flame"
ended 95 ms late; "pants, and": "and" started 92 ms early), and on clean studio speech (cathy_arctic) the last word
of an utterance sometimes ends 40-100 ms into the trailing silence. A stretch of audio far below the utterance's loud
frames and longer than a stop closure is a pause, whatever the acoustic model says; one that reaches the start or
the end of the audio is silence before or after the speech. Measured effect: docs/align.md.
"""

from __future__ import annotations

import numpy as np

from koe.corpus.manifest import Span

QUIET_BELOW_DB = 35.0  # a frame is quiet when its energy is this far below the utterance's loud frames (95th pct)
LOUD_PERCENTILE = 95
# Runs shorter than this inside the speech are left alone: stop closures are quiet too (espeak 40-60 ms of digital
# silence). At the audio's start or end any run of EDGE_RUN_S is leading or trailing silence.
MIN_RUN_S = 0.08
EDGE_RUN_S = 0.03
MIN_PHONE_S = 0.01  # a trimmed word keeps at least this much of its first / last phone
STOP_PHONES = frozenset({"p", "b", "t", "d", "k", "g"})  # pocketsphinx's (lower-case ARPAbet) stops
# A stop's closure: its first run of at least this many quiet frames (a single quiet 10 ms frame inside an aspirated
# or mis-aligned "stop" is not one: espeak's closures last 40-60 ms).
MIN_CLOSURE_FRAMES = 2
# Speech outside the aligned words (words missing from the transcript): frames within this of the loud frames.
LOUD_WITHIN_DB = 15.0
_EPS = 1e-6


def frame_energy_db(audio: np.ndarray, sample_rate_hz: int, frame_s: float, offset_s: float) -> np.ndarray:
    """Energy (dB) of each frame k = the audio between grid points `k * frame_s + offset_s` and the next."""
    hop = round(frame_s * sample_rate_hz)
    first = round(offset_s * sample_rate_hz)
    n = max(0, (len(audio) - first) // hop)
    frames = audio[first:first + n * hop].astype(np.float64).reshape(n, hop)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def loud_frames(audio: np.ndarray, sample_rate_hz: int, frame_s: float, offset_s: float) -> np.ndarray:
    """Whether each frame (on the aligner's grid, as in frame_energy_db) is within LOUD_WITHIN_DB of the utterance's
    loud frames (95th percentile): speech, not silence or noise."""
    energy_db = frame_energy_db(audio, sample_rate_hz, frame_s, offset_s)
    if energy_db.size == 0:
        return np.zeros(0, bool)
    return energy_db > np.percentile(energy_db, LOUD_PERCENTILE) - LOUD_WITHIN_DB


def speech_outside(loud: np.ndarray, frame_s: float, offset_s: float, start_s: float, end_s: float
                   ) -> tuple[float, float]:
    """Seconds of loud frames (`loud_frames`) before `start_s` and after `end_s`: speech the aligner had to leave to
    silence because the transcript has no words for it."""
    frame_start = np.arange(loud.size) * frame_s + offset_s
    before = loud & (frame_start + frame_s <= start_s + _EPS)
    after = loud & (frame_start >= end_s - _EPS)
    return round(float(before.sum()) * frame_s, 4), round(float(after.sum()) * frame_s, 4)


def quiet_frames(audio: np.ndarray, sample_rate_hz: int, frame_s: float, offset_s: float) -> np.ndarray:
    """Whether each frame (on the aligner's grid, as in frame_energy_db) is more than QUIET_BELOW_DB below the
    utterance's loud frames: a pause, or a stop's closure."""
    energy_db = frame_energy_db(audio, sample_rate_hz, frame_s, offset_s)
    if energy_db.size == 0:
        return np.zeros(0, bool)
    return energy_db < np.percentile(energy_db, LOUD_PERCENTILE) - QUIET_BELOW_DB


def quiet_runs(quiet: np.ndarray, frame_s: float, offset_s: float) -> list[tuple[float, float]]:
    """Runs of `quiet_frames` long enough to be pauses, in seconds on the aligner's boundary grid
    `k * frame_s + offset_s` (0 for k = 0, where the aligner's first word can start).

    Frame k is the audio between grid points k and k + 1, so a run's ends are times an aligner boundary can take.
    """
    n = quiet.size
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    runs = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        at_edge = a == 0 or b == n
        if (b - a) * frame_s >= (EDGE_RUN_S if at_edge else MIN_RUN_S) - _EPS:
            runs.append((_grid_time(a, frame_s, offset_s), _grid_time(b, frame_s, offset_s)))
    return runs


def stops_start_at_burst(words: list[Span], phones: list[Span], quiet: np.ndarray, frame_s: float, offset_s: float
                         ) -> None:
    """Where a word starting with a stop follows the word before without a pause, move their boundary from the
    stop's closure to its burst (the end of the first run of MIN_CLOSURE_FRAMES quiet frames inside the stop), in
    place: the closure's silence goes to the word before.

    Why: koe's word spans follow `koe synth`'s (espeak's) convention, where a word starts at its first phone's event
    and a stop's event is its burst; pocketsphinx puts the closure in the stop when it labels it part of the phone,
    and koe already gave it to the word before when pocketsphinx labelled it silence (min_pause_s). Now the
    convention holds either way. A closure that is not quiet (a voiced closure, a noisy recording) is left alone.
    Measured effect: docs/align.md."""
    spans = _phone_ranges(words, phones)
    for i in range(1, len(words)):
        first = spans[i][0]
        label, start, end = phones[first]
        if label not in STOP_PHONES or abs(words[i - 1][2] - words[i][1]) > _EPS:
            continue
        a, b = (round((t - offset_s) / frame_s) for t in (start, end))
        closure_end = _end_of_first_run(quiet[a:min(b, quiet.size)], MIN_CLOSURE_FRAMES)
        if closure_end is None:
            continue
        burst = min(_grid_time(a + closure_end, frame_s, offset_s), round(end - MIN_PHONE_S, 4))
        if burst <= start:
            continue
        last = spans[i - 1][1]
        words[i - 1] = (words[i - 1][0], words[i - 1][1], burst)
        phones[last] = (phones[last][0], phones[last][1], burst)
        words[i] = (words[i][0], burst, words[i][2])
        phones[first] = (label, burst, end)


def _end_of_first_run(flags: np.ndarray, min_length: int) -> int | None:
    """Index just past the first run of at least `min_length` True values, None without one."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return next((int(b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_length), None)


def _grid_time(k: int, frame_s: float, offset_s: float) -> float:
    return round(float(k) * frame_s + offset_s, 4) if k > 0 else 0.0


def split_at_quiet(words: list[Span], phones: list[Span], runs: list[tuple[float, float]]) -> None:
    """Move a word's end back to the start of a quiet run its tail lies in, and its start forward to the end of one
    its head lies in; the first / last phone moves with it. A run inside a word (not touching either edge) and a
    word wholly inside a run are left alone. `phones` lists each word's phones in order, within the word's span."""
    spans = _phone_ranges(words, phones)
    for run_start, run_end in runs:
        for i, (label, start, end) in enumerate(words):
            first, last = spans[i]
            if start < run_start < end <= run_end + _EPS:
                new_end = max(run_start, round(phones[last][1] + MIN_PHONE_S, 4))
                if new_end < end:
                    words[i] = (label, start, new_end)
                    phones[last] = (phones[last][0], phones[last][1], new_end)
            elif run_start - _EPS <= start < run_end < end:
                new_start = min(run_end, round(phones[first][2] - MIN_PHONE_S, 4))
                if new_start > start:
                    words[i] = (label, new_start, end)
                    phones[first] = (phones[first][0], new_start, phones[first][2])


def _phone_ranges(words: list[Span], phones: list[Span]) -> list[tuple[int, int]]:
    """(first, last) index into `phones` of each word's phones."""
    ranges, p = [], 0
    for _, _, end in words:
        first = p
        while p < len(phones) and phones[p][2] <= end + _EPS:
            p += 1
        if p == first:
            raise ValueError(f"word ending at {end} s has no phones")
        ranges.append((first, p - 1))
    return ranges
