"""Spot transcripts that do not belong to their audio, so a wrong text never becomes a confident-looking alignment.

    reasons = detect_mismatches({"utt1": result1, "utt2": result2, ...}, MismatchRule(), speakers)
    # {"utt2": "mismatch: acoustic score -71.3/frame is 60.1 below the median of speaker cathy (-11.2) ..."}

A forced aligner always returns *some* path, so a wrong transcript is found from how badly that path fits:

- acoustic fit relative to the speaker: pocketsphinx's per-frame-normalised score over the frames inside words
  depends strongly on the voice (real speech -7 to -22 per frame on cathy_arctic, espeak voices -31 to -46), but a
  transcript of another sentence falls far below its own speaker's median (cathy -37 to -108, espeak -65 to -94).
  Once a speaker has `min_corpus_size` aligned utterances, one more than `max_score_drop` below that speaker's median
  is a mismatch (speakers with fewer utterances are compared with the median of the whole run, when that is large
  enough);
- acoustic fit, absolute: below `min_score_per_frame` nothing is a plausible fit, whatever the corpus (this catches
  a corpus whose transcripts are shifted throughout, where the median itself is bad);
- squeezed words: when the words are not in the audio, the aligner crams many of them into the minimum duration
  their phones allow (3 frames per phone); more than `max_squeezed_fraction` of the words so squeezed is a mismatch.

Alignment failures (no path at all) are reported by the aligner itself. docs/align.md gives the measured rates.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict

from koe.align.pocketsphinx import AlignResult


@dataclasses.dataclass(frozen=True)
class MismatchRule:
    """Thresholds; the defaults separate the matched and swapped transcripts measured in docs/align.md."""

    min_score_per_frame: float = -60.0
    max_score_drop: float = 18.0
    min_corpus_size: int = 20
    max_squeezed_fraction: float = 0.3


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
    """Utterance id -> (what, median score) it is compared with: its speaker's, else the whole run's, else none."""
    by_speaker: dict[str, list[float]] = defaultdict(list)
    for utt_id, res in results.items():
        by_speaker[speakers.get(utt_id, "")].append(res.score_per_frame)
    everyone = [r.score_per_frame for r in results.values()]
    overall = statistics.median(everyone) if len(everyone) >= rule.min_corpus_size else None
    out = {}
    for utt_id in results:
        speaker = speakers.get(utt_id, "")
        scores = by_speaker[speaker]
        if len(scores) >= rule.min_corpus_size:
            out[utt_id] = (f"speaker {speaker}" if speaker else "run", statistics.median(scores))
        elif overall is not None:
            out[utt_id] = ("run", overall)
    return out


def mismatch_reason(res: AlignResult, rule: MismatchRule, reference: tuple[str, float] | None) -> str | None:
    """The first rule `res` breaks, as a failure reason, or None when the alignment looks sound."""
    score = res.score_per_frame
    if score < rule.min_score_per_frame:
        return f"mismatch: acoustic score {score:.1f}/frame is below min_score_per_frame={rule.min_score_per_frame:g}"
    if reference is not None and score < reference[1] - rule.max_score_drop:
        return (
            f"mismatch: acoustic score {score:.1f}/frame is {reference[1] - score:.1f} below the median of the "
            f"{reference[0]} ({reference[1]:.1f}; max_score_drop={rule.max_score_drop:g})"
        )
    if res.squeezed_fraction > rule.max_squeezed_fraction:
        return (
            f"mismatch: {res.squeezed_words} of {len(res.words)} words squeezed to their minimum duration "
            f"(> max_squeezed_fraction={rule.max_squeezed_fraction:g})"
        )
    return None
