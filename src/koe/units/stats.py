"""`koe units stats`: how fast, how dense and how phonetic a unit stream is.

    koe units stats units/hubert500                                  # manifest from meta.json, if it exists
    koe units stats units/hubert500 manifest=aligned/manifest.jsonl out_dir=reports/hubert500

Writes out_dir/stats.json, stats.md (a table), stats.png (unit frequencies; per-utterance token rates),
stats_config.yaml and units_stats_summary.json. Numbers:

- rates: token rate before dedup (frames per second of audio: the encoder's real frame rate) and after dedup
  (what a language model reads), mean dedup run length (frames per token), bitrate = token rate x log2(num_units)
  (FIELD.md). Seconds of audio come from the manifest's `duration_s` when it is known, else from frames / frame rate.
- codebook: usage (fraction of the num_units ids that occur) and perplexity exp(H) of the unit distribution, over
  dedup tokens (the LM's view) and over frames.
- with alignments in the manifest (phones and/or words): dedup units are expanded to frames by their durations and
  each frame gets the label of the span holding its centre, (i + 0.5) / frame_rate_hz; frames outside every span are
  left out (their share is reported). With counts n(label, unit) over the labelled frames:
  purity = sum_u max_l n(l, u) / N (mean over units of max_l P(l|u), weighted by P(u)); cluster purity =
  sum_l max_u n(l, u) / N; PNMI = I(label; unit) / H(label), as in the HuBERT paper. Syllable units label only
  the frames of their true segments (silence between syllables is left out), and syllables derived from the phones
  (koe.units.boundaries) are a third label kind.
- boundaries (koe.units.boundaries): precision, recall, F1, over-segmentation and R-value of the unit boundaries
  against word and syllable boundaries (50 ms tolerance) and phone boundaries (20 ms). Syllable units' boundaries
  are the starts and ends of their segments; frame units' are the edges of their dedup runs.
- speaker invariance (koe.units.invariance): with several speakers per text in the manifest, the mean normalised
  edit distance between the unit sequences of the same text spoken by different speakers, beside the same for
  different texts.

An utterance missing from the manifest, or whose frames disagree with its manifest duration (a sign the manifest
is not the one that was encoded), is listed as failed; its units still count for rates and codebook, with frame
durations. Labels are used as written (e.g. ARPAbet stress digits are kept).

A folder of multi-level codec codes (`koe units encode-codec`, koe.units.codec_codes) gets its own report instead:
bitrate = frame rate x levels x log2(codebook size), and usage and perplexity per level.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from koe.config import save_config
from koe.corpus.manifest import Span, Utterance, iter_manifest
from koe.stage import KoeInputError, StageReport, atomic_write_text, progress, write_json
from koe.units.boundaries import BoundaryCounts, span_boundaries, syllable_spans
from koe.units.codec_codes import codes_stats, is_codes_dir, render_codes_markdown
from koe.units.config import StatsConfig
from koe.units.invariance import normalize_text, speaker_invariance
from koe.units.shards import UnitRecord, load_units_meta, read_unit_shards

STAGE = "units stats"


def distribution_stats(counts: np.ndarray) -> tuple[float, float]:
    """(usage, perplexity) of a count vector over the codebook: fraction of ids used, exp of the entropy (nats)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    p = counts[counts > 0] / total
    return float((counts > 0).mean()), float(np.exp(-(p * np.log(p)).sum()))


def frame_span_index(spans: list[Span], num_frames: int, frame_rate_hz: float) -> np.ndarray:
    """For each frame, the index of the span (in `spans` order) holding the frame centre, or -1."""
    idx = np.full(num_frames, -1, dtype=np.int64)
    if not spans or num_frames == 0:
        return idx
    order = np.argsort([s for _, s, _ in spans], kind="stable")
    starts = np.array([spans[i][1] for i in order])
    ends = np.array([spans[i][2] for i in order])
    centres = (np.arange(num_frames) + 0.5) / frame_rate_hz
    pos = np.searchsorted(starts, centres, side="right") - 1
    inside = (pos >= 0) & (centres < ends[np.clip(pos, 0, None)])
    idx[inside] = order[pos[inside]]
    return idx


def pair_counts(labels: np.ndarray, units: np.ndarray) -> Counter:
    """Counter of (label id, unit id) over frames whose label is >= 0."""
    keep = labels >= 0
    pairs, counts = np.unique(np.stack([labels[keep], units[keep]]), axis=1, return_counts=True)
    return Counter({(int(a), int(b)): int(c) for (a, b), c in zip(pairs.T, counts, strict=True)})


def alignment_scores(pairs: Counter) -> dict[str, float | None]:
    """purity, cluster purity and PNMI from joint counts {(label, unit): n}; PNMI is None when H(label) = 0."""
    if not pairs:
        return {"purity": None, "cluster_purity": None, "pnmi": None}
    keys = np.array(list(pairs.keys()), dtype=np.int64)
    n = np.array(list(pairs.values()), dtype=np.float64)
    lab, unit = keys[:, 0], keys[:, 1]
    total = n.sum()
    max_per_unit = np.zeros(unit.max() + 1)
    np.maximum.at(max_per_unit, unit, n)
    max_per_label = np.zeros(lab.max() + 1)
    np.maximum.at(max_per_label, lab, n)
    n_label = np.bincount(lab, weights=n)
    n_unit = np.bincount(unit, weights=n)
    mutual = float((n / total * np.log(n * total / (n_label[lab] * n_unit[unit]))).sum())
    p_label = n_label[n_label > 0] / total
    h_label = float(-(p_label * np.log(p_label)).sum())
    return {
        "purity": float(max_per_unit.sum() / total),
        "cluster_purity": float(max_per_label.sum() / total),
        "pnmi": mutual / h_label if h_label > 0 else None,
    }


class _Labels:
    """Joint (label, unit) frame counts for one kind of alignment (phones or words), over many utterances."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.pairs: Counter = Counter()
        self.labelled = 0
        self.frames = 0

    def add(self, spans: list[Span], frame_units: np.ndarray, frame_rate_hz: float) -> None:
        """Count the frames of one utterance; frames whose unit is -1 (between syllables) are left out."""
        span_idx = frame_span_index(spans, len(frame_units), frame_rate_hz)
        ids = np.array([self.vocab.setdefault(label, len(self.vocab)) for label, _, _ in spans] or [0])
        labels = np.where((span_idx >= 0) & (frame_units >= 0), ids[np.clip(span_idx, 0, None)], -1)
        self.pairs.update(pair_counts(labels, frame_units))
        self.labelled += int((labels >= 0).sum())
        self.frames += len(frame_units)

    def result(self) -> dict[str, Any] | None:
        if not self.frames:
            return None
        return {**alignment_scores(self.pairs), "num_labels": len(self.vocab), "labelled_frames": self.labelled,
                "labelled_fraction": self.labelled / self.frames}


class UnitStats:
    """Streaming accumulator: add records one by one, then `result()`."""

    def __init__(self, num_units: int, frame_rate_hz: float, invariance_ids: set[str] | None = None) -> None:
        """invariance_ids: utterances whose units are kept for speaker invariance (texts with several speakers)."""
        self.num_units, self.frame_rate_hz = num_units, frame_rate_hz
        self.invariance_ids = invariance_ids or set()
        self.kept: list[tuple[np.ndarray, str, str | None]] = []  # (units, text, speaker) for speaker invariance
        self.syllables = _Labels()
        self.boundaries = {"words": BoundaryCounts(0.05), "syllables": BoundaryCounts(0.05),
                           "phones": BoundaryCounts(0.02)}
        self.frame_counts = np.zeros(num_units, dtype=np.int64)
        self.token_counts = np.zeros(num_units, dtype=np.int64)
        self.seconds = 0.0
        self.num_utterances = 0
        self.utt_rates: list[float] = []
        self.phones, self.words = _Labels(), _Labels()

    def add(self, rec: UnitRecord, seconds: float | None = None, utt: Utterance | None = None) -> None:
        """Count one utterance; `seconds` is its audio length (frames / frame rate when None)."""
        frames = int(rec.durations.sum())
        seconds = frames / self.frame_rate_hz if seconds is None else seconds
        self.token_counts += np.bincount(rec.units, minlength=self.num_units)
        self.frame_counts += np.bincount(rec.units, weights=rec.durations, minlength=self.num_units).astype(np.int64)
        self.seconds += seconds
        self.num_utterances += 1
        if seconds > 0:
            self.utt_rates.append(len(rec.units) / seconds)
        if utt is not None and rec.id in self.invariance_ids and utt.text:
            self.kept.append((rec.units, utt.text, utt.speaker))
        if utt is not None and (utt.phones or utt.words):
            self._add_alignments(rec, utt, frames)

    def _add_alignments(self, rec: UnitRecord, utt: Utterance, frames: int) -> None:
        if rec.segments is None:
            frame_units = np.repeat(rec.units, rec.durations)
            edges = np.concatenate([[0], np.cumsum(rec.durations)])
        else:
            frame_units = np.full(frames, -1, dtype=np.int64)
            for u, (a, b) in zip(rec.units, rec.segments, strict=True):
                frame_units[a:b] = u
            edges = np.unique(rec.segments)
        syllables = syllable_spans(utt.words, utt.phones)
        for kind, spans in (("phones", utt.phones), ("words", utt.words), ("syllables", syllables)):
            if spans:
                getattr(self, kind).add(spans, frame_units, self.frame_rate_hz)
                self.boundaries[kind].add(edges / self.frame_rate_hz, span_boundaries(spans))

    def result(self) -> dict[str, Any]:
        """All numbers as a JSON-ready dict; KoeInputError when no audio was counted (nothing to measure)."""
        frames, tokens = int(self.frame_counts.sum()), int(self.token_counts.sum())
        if self.seconds <= 0 or not frames:
            raise KoeInputError(f"empty: {self.num_utterances} utterance(s) with no frames: nothing to measure")
        seconds = self.seconds
        bits = math.log2(self.num_units)
        usage, perplexity = distribution_stats(self.token_counts)
        _, frame_perplexity = distribution_stats(self.frame_counts)
        rates = np.array(self.utt_rates)
        return {
            "num_utterances": self.num_utterances,
            "num_units": self.num_units,
            "frame_rate_hz": self.frame_rate_hz,
            "audio_hours": self.seconds / 3600,
            "frames": frames,
            "tokens": tokens,
            "token_rate_before_dedup_hz": frames / seconds,
            "token_rate_hz": tokens / seconds,
            "dedup_ratio": tokens / frames,
            "mean_run_length_frames": frames / tokens,
            "bitrate_before_dedup_bps": frames / seconds * bits,
            "bitrate_bps": tokens / seconds * bits,
            "codebook_usage": usage,
            "units_used": int((self.token_counts > 0).sum()),
            "perplexity": perplexity,
            "frame_perplexity": frame_perplexity,
            "utterance_token_rate_hz": {k: float(np.percentile(rates, q)) for k, q in
                                        (("p5", 5), ("p50", 50), ("p95", 95))} | {"mean": float(rates.mean())},
            "phones": self.phones.result(),
            "words": self.words.result(),
            "syllables": self.syllables.result(),
            "boundaries": {kind: b.result() for kind, b in self.boundaries.items()},
            "speaker_invariance": speaker_invariance(*map(list, zip(*self.kept, strict=True))) if self.kept else None,
        }


def run_stats(cfg: StatsConfig) -> StageReport:
    """Read every unit record once, count, then write stats.json, stats.md and stats.png."""
    units_dir = Path(cfg.units_dir)
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else units_dir
    if is_codes_dir(units_dir):  # multi-level codec codes (`koe units encode-codec`): per-level numbers
        return _run_codes_stats(cfg, units_dir, out_dir)
    meta = load_units_meta(units_dir)
    save_config(cfg, out_dir, name="stats_config.yaml")
    report = StageReport(STAGE, out_dir)
    manifest_path = _manifest_path(cfg, meta.manifest)
    utts = {u.id: u for u in iter_manifest(manifest_path)} if manifest_path else {}
    acc = UnitStats(meta.num_units, meta.frame_rate_hz, multi_speaker_texts(utts.values()))
    for rec in progress(read_unit_shards(units_dir), desc="units stats", total=meta.num_utterances, unit="utt"):
        report.items_in += 1
        if len(rec.units) and (rec.units.min() < 0 or rec.units.max() >= meta.num_units):
            report.fail(rec.id, f"bad unit: {units_dir}: ids outside [0, {meta.num_units})", units_dir)
            continue
        try:
            utt = _matching_utterance(rec, utts, manifest_path, meta.frame_rate_hz)
            report.ok()
        except KoeInputError as e:  # still counted for rates and codebook, with frame durations
            report.fail(rec.id, str(e), manifest_path)
            utt = None
        acc.add(rec, utt.duration_s if utt is not None else None, utt)
    stats = {"units_dir": str(units_dir), "manifest": str(manifest_path) if manifest_path else None, **acc.result()}
    write_json(out_dir / "stats.json", stats)
    atomic_write_text(out_dir / "stats.md", render_markdown(stats))
    plot_stats(acc, stats, out_dir / "stats.png")
    report.extra.update({k: stats[k] for k in ("token_rate_hz", "bitrate_bps", "codebook_usage", "perplexity")})
    if stats["phones"]:
        report.extra["phone_pnmi"] = stats["phones"]["pnmi"]
    for kind in ("words", "syllables"):
        if stats["boundaries"][kind]:
            report.extra[f"{kind}_boundary_f1"] = stats["boundaries"][kind]["f1"]
    if stats["speaker_invariance"]:
        report.extra["same_text_ned"] = stats["speaker_invariance"]["same_text_ned"]
    return report.finish()


def _run_codes_stats(cfg: StatsConfig, units_dir: Path, out_dir: Path) -> StageReport:
    """stats.json / stats.md of a codec-codes folder: bitrate, and usage and perplexity per level."""
    report = StageReport(STAGE, out_dir)
    save_config(cfg, out_dir, name="stats_config.yaml")
    stats = codes_stats(units_dir)
    write_json(out_dir / "stats.json", stats)
    atomic_write_text(out_dir / "stats.md", render_codes_markdown(stats))
    report.items_in = report.items_out = stats["num_utterances"]
    report.extra.update(bitrate_bps=stats["bitrate_bps"], num_levels=stats["num_levels"],
                        usage_per_level=[round(s["usage"], 3) for s in stats["levels"]],
                        perplexity_per_level=[round(s["perplexity"], 1) for s in stats["levels"]])
    return report.finish()


def multi_speaker_texts(utts) -> set[str]:
    """Ids of utterances whose normalised text is spoken by at least two speakers (speaker invariance pairs)."""
    speakers: dict[str, set] = {}
    for u in utts:
        if u.text:
            speakers.setdefault(normalize_text(u.text), set()).add(u.speaker)
    return {u.id for u in utts if u.text and len(speakers[normalize_text(u.text)]) > 1}


def _manifest_path(cfg: StatsConfig, encoded_from: str) -> Path | None:
    """The config's manifest, else the one meta.json says was encoded, when it still exists."""
    if cfg.manifest is not None:
        return Path(cfg.manifest)
    return Path(encoded_from) if encoded_from and Path(encoded_from).is_file() else None


def _matching_utterance(
    rec: UnitRecord, utts: dict[str, Utterance], manifest_path: Path | None, frame_rate_hz: float
) -> Utterance | None:
    """The record's manifest line, checked against the record's length (2 frames or 5 % of slack)."""
    if manifest_path is None:
        return None
    utt = utts.get(rec.id)
    if utt is None:
        raise KoeInputError(f"not in manifest: {manifest_path}: no utterance {rec.id!r}")
    units_s = float(rec.durations.sum()) / frame_rate_hz
    if abs(units_s - utt.duration_s) > max(2 / frame_rate_hz, 0.05 * utt.duration_s):
        raise KoeInputError(f"length mismatch: {manifest_path}: {rec.id} is {utt.duration_s:.2f} s in the manifest "
                            f"but its units cover {units_s:.2f} s; is this the manifest that was encoded?")
    return utt


def render_markdown(stats: dict[str, Any]) -> str:
    rows = [
        ("utterances", f"{stats['num_utterances']}"),
        ("audio (h)", f"{stats['audio_hours']:.3f}"),
        ("codebook size", f"{stats['num_units']}"),
        ("frame rate, nominal (Hz)", f"{stats['frame_rate_hz']:g}"),
        ("token rate before dedup (Hz)", _fmt(stats["token_rate_before_dedup_hz"])),
        ("token rate after dedup (Hz)", _fmt(stats["token_rate_hz"])),
        ("mean run length (frames)", _fmt(stats["mean_run_length_frames"])),
        ("bitrate before dedup (bit/s)", _fmt(stats["bitrate_before_dedup_bps"], 1)),
        ("bitrate after dedup (bit/s)", _fmt(stats["bitrate_bps"], 1)),
        ("codebook usage", f"{_fmt(stats['codebook_usage'], 3)} ({stats['units_used']} units)"),
        ("perplexity over dedup tokens", _fmt(stats["perplexity"], 1)),
        ("perplexity over frames", _fmt(stats["frame_perplexity"], 1)),
    ]
    for kind in ("phones", "words", "syllables"):
        s = stats[kind]
        if s:
            rows += [
                (f"{kind}: purity", _fmt(s["purity"], 3)),
                (f"{kind}: cluster purity", _fmt(s["cluster_purity"], 3)),
                (f"{kind}: PNMI", _fmt(s["pnmi"], 3)),
                (f"{kind}: labelled frames", f"{_fmt(s['labelled_fraction'], 3)} of frames, {s['num_labels']} labels"),
            ]
    for kind, b in stats["boundaries"].items():
        if b:
            rows.append((f"{kind}: boundaries P / R / F1 / R-value (+-{b['tolerance_s'] * 1000:g} ms)",
                         " / ".join(_fmt(b[k], 3) for k in ("precision", "recall", "f1", "r_value"))))
    inv = stats["speaker_invariance"]
    if inv:
        rows.append(("speaker invariance: edit distance same text / different text",
                     f"{_fmt(inv['same_text_ned'], 3)} / {_fmt(inv['different_text_ned'], 3)} ({inv['pairs']} pairs)"))
    body = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"# Unit statistics: {stats['units_dir']}\n\n| metric | value |\n|---|---|\n{body}\n"


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def plot_stats(acc: UnitStats, stats: dict[str, Any], path: Path) -> None:
    """Left: dedup-token frequency of every unit by rank (codebook usage); right: per-utterance token rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    freq = np.sort(acc.token_counts)[::-1] / max(acc.token_counts.sum(), 1)
    left.bar(np.arange(len(freq)), freq, width=1.0)
    left.set_yscale("log")
    left.set(xlabel="unit rank", ylabel="share of dedup tokens",
             title=f"usage {stats['units_used']}/{stats['num_units']}, perplexity {_fmt(stats['perplexity'], 1)}")
    right.hist(acc.utt_rates, bins=min(40, max(5, len(acc.utt_rates) // 5)))
    right.axvline(stats["token_rate_hz"], color="k", linestyle="--", label="corpus rate")
    right.set(xlabel="dedup tokens per second", ylabel="utterances",
              title=f"token rate {_fmt(stats['token_rate_hz'], 1)} Hz ({_fmt(stats['bitrate_bps'], 0)} bit/s)")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
