"""Spot transcripts that do not belong to their audio, so a wrong text never becomes a confident-looking alignment.

    reasons = detect_mismatches({"utt1": result1, "utt2": result2, ...}, MismatchRule(), speakers)
    # {"utt2": "mismatch: fit deficit 41.3/frame: the transcript explains the audio far worse than ..."}

A forced aligner always returns *some* path, so a wrong transcript is found from how badly that path fits. How well
even the right transcript fits depends on the voice (accent, synthesis method, speaking rate: pocketsphinx's score per
frame ranged -54 to -102 over koe synth's 12 default voices at 140-220 wpm), so no fixed score floor works for every
voice. The rules compare the audio with itself instead:

- fit relative to the audio's own best guess: `fit_deficit` = the score per frame of a free phone-loop decode of the
  same audio minus that of the forced alignment (koe.align.pocketsphinx). Correct transcripts sit near 0 (the
  transcript explains the audio about as well as the model's own phone string), other sentences 20-60 above;
  above `max_fit_deficit` is a mismatch;
- relative to the speaker: once a speaker (or, failing that, the run) has `min_corpus_size` aligned utterances, a
  deficit more than `max_score_drop` above that speaker's median is a mismatch (a voice whose accent the dictionary
  fits badly has a high deficit throughout);
- speech outside the words: more than `max_edge_speech_s` of loud audio before the first or after the last aligned
  word means words are missing from the transcript's start or end (the aligner had to leave speech to silence; read
  from the alignment where silence was free to take it, see koe.align.pocketsphinx);
- speech the transcript leaves out at its edges: the transcript is decoded alone, with free phones allowed before its
  first word, and with free phones allowed after its last (koe.align.pocketsphinx, `edge_loops`); when a loop raises
  the path score by more than `max_edge_gain_start` / `max_edge_gain_end`, words are missing there (the aligner had
  stretched the first / last word over their speech, which the utterance's fit deficit hardly sees);
- squeezed words: when the words are not in the audio, the aligner crams many of them into the minimum duration
  their phones allow (3 frames per phone); more than `max_squeezed_fraction` of the words so squeezed, and at least
  `min_squeezed_words` of them, is a mismatch.

Alignment failures (no path at all) are reported by the aligner itself. docs/align.md gives the measured rates.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict

from koe.align.pocketsphinx import AlignResult


@dataclasses.dataclass(frozen=True)
class MismatchRule:
    """Thresholds; the defaults are set from the espeak voices x rates measured in docs/align.md."""

    max_fit_deficit: float = 30.0
    max_score_drop: float = 22.0
    min_corpus_size: int = 20
    max_squeezed_fraction: float = 0.3
    max_edge_speech_s: float = 0.03
    # score gained by free phones before the first / after the last word (pocketsphinx log units, as word_score;
    # about 10,000 per nat); 0: off. Set on the calibration set of docs/align.md (720 right transcripts): right
    # transcripts of the espeak voices gain up to ~450 before and ~900 after (98th percentiles), missing edge words
    # a median of ~730 and ~1730
    max_edge_gain_start: float = 400.0
    max_edge_gain_end: float = 1000.0
    # the squeezed rule needs at least this many squeezed words: in a six-word window, 2 squeezed words are > 0.3
    min_squeezed_words: int = 3


def detect_mismatches(
    results: dict[str, AlignResult], rule: MismatchRule, speakers: dict[str, str] | None = None
) -> dict[str, str]:
    """Map utterance id -> reason for every alignment whose transcript does not fit its audio."""
    medians = reference_medians(results, rule, speakers or {})
    reasons = {}
    for utt_id, res in results.items():
        reason = mismatch_reason(res, rule, medians.get(utt_id))
        if reason:
            reasons[utt_id] = reason
    return reasons


def reference_medians(
    results: dict[str, AlignResult], rule: MismatchRule, speakers: dict[str, str]
) -> dict[str, tuple[str, float]]:
    """Utterance id -> (what, median fit deficit) it is compared with: its speaker's, else the whole run's, else
    none."""
    by_speaker: dict[str, list[float]] = defaultdict(list)
    for utt_id, res in results.items():
        if res.fit_deficit is not None:
            by_speaker[speakers.get(utt_id, "")].append(res.fit_deficit)
    everyone = [d for ds in by_speaker.values() for d in ds]
    overall = statistics.median(everyone) if len(everyone) >= rule.min_corpus_size else None
    out = {}
    for utt_id in results:
        speaker = speakers.get(utt_id, "")
        deficits = by_speaker[speaker]
        if len(deficits) >= rule.min_corpus_size:
            out[utt_id] = (f"speaker {speaker}" if speaker else "run", statistics.median(deficits))
        elif overall is not None:
            out[utt_id] = ("run", overall)
    return out


def mismatch_reason(res: AlignResult, rule: MismatchRule, reference: tuple[str, float] | None) -> str | None:
    """The first rule `res` breaks, as a failure reason, or None when the alignment looks sound."""
    deficit = res.fit_deficit
    if deficit is not None and deficit > rule.max_fit_deficit:
        return (f"mismatch: fit deficit {deficit:.1f}/frame (free phone-loop decode minus forced alignment) is above "
                f"max_fit_deficit={rule.max_fit_deficit:g}: the transcript explains the audio far worse than the "
                "model's own guess")
    if deficit is not None and reference is not None and deficit > reference[1] + rule.max_score_drop:
        return (f"mismatch: fit deficit {deficit:.1f}/frame is {deficit - reference[1]:.1f} above the median of the "
                f"{reference[0]} ({reference[1]:.1f}; max_score_drop={rule.max_score_drop:g})")
    before, after = res.edge_speech_s
    if max(before, after) > rule.max_edge_speech_s:
        where = "before the first" if before >= after else "after the last"
        return (f"mismatch: {max(before, after):.2f} s of speech {where} aligned word "
                f"(> max_edge_speech_s={rule.max_edge_speech_s:g}): words missing from the transcript")
    if res.edge_loops is not None:
        for loop, limit, where, name in (
            (res.edge_loops[0], rule.max_edge_gain_start, "before the first", "max_edge_gain_start"),
            (res.edge_loops[1], rule.max_edge_gain_end, "after the last", "max_edge_gain_end"),
        ):
            if limit > 0 and loop.gain > limit:
                return (f"mismatch: free phones {where} word ({loop.phones} phones, {loop.seconds:.2f} s) explain the "
                        f"audio better than the transcript by {loop.gain:.0f} (> {name}={limit:g}): words missing from "
                        "the transcript")
    if res.squeezed_fraction > rule.max_squeezed_fraction and res.squeezed_words >= rule.min_squeezed_words:
        return (
            f"mismatch: {res.squeezed_words} of {len(res.words)} words squeezed to their minimum duration "
            f"(> max_squeezed_fraction={rule.max_squeezed_fraction:g}, at least {rule.min_squeezed_words})"
        )
    return None
