"""`koe align`: add word and phone times to a manifest, by forced alignment or by importing another tool's output.

    koe align data/manifest.jsonl num_workers=2                      # pocketsphinx -> data/manifest.aligned.jsonl
    koe align data/manifest.jsonl method=textgrid alignments=mfa_out/
    koe align data/manifest.jsonl method=ctm alignments=kaldi.ctm out=data/aligned.jsonl

Only utterances with a trustworthy alignment are written; every other one is listed in align_failures.jsonl with
its reason (unreadable audio, no text, OOV word espeak cannot pronounce, no alignment found, transcript that does
not fit the audio). Word labels are `koe.synth.espeak.normalize_text` of the transcript, the same rule `koe synth`
uses, so aligned and synthesized manifests label words alike.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from pathlib import Path

from koe.align.config import AlignConfig
from koe.align.g2p import pronounce_word
from koe.align.importers import Imported, load_alignments, place_alignment
from koe.align.mismatch import MismatchRule, detect_mismatches
from koe.align.pocketsphinx import AlignResult, Beams, PocketsphinxAligner, dictionary_words
from koe.audio import load_audio, probe_audio
from koe.config import save_config, to_dict
from koe.corpus.manifest import Utterance, read_manifest, write_manifest
from koe.stage import (
    KoeInputError,
    StageReport,
    atomic_write_text,
    done_key,
    map_in_workers,
    mark_done,
    progress,
    skip_if_done,
)
from koe.synth.espeak import normalize_text, normalize_word

_aligner: PocketsphinxAligner | None = None  # one per worker process


def run_align(cfg: AlignConfig) -> StageReport:
    """Align (or import alignments for) every utterance of `cfg.manifest`; write the aligned ones to `cfg.out_path`."""
    out = cfg.out_path
    utts = read_manifest(cfg.manifest)
    key = done_key(to_dict(cfg), [cfg.manifest, cfg.alignments])
    marker = out.name + ".done"
    if (earlier := skip_if_done("align", out.parent, key, cfg.force, marker, outputs=[out])) is not None:
        return earlier
    report = StageReport("align", out.parent, items_in=len(utts))
    align = align_manifest if cfg.method == "pocketsphinx" else import_manifest
    aligned = align(utts, cfg, report)
    write_manifest(out, [_rebase(u, cfg.manifest.parent, out.parent) for u in aligned])
    save_config(cfg, out.parent, "align_config.yaml")
    mark_done(out.parent, key, marker)
    report.ok(len(aligned))
    report.extra = {"method": cfg.method, "output": str(out),
                    "coverage": round(len(aligned) / max(len(utts), 1), 4), **report.extra}
    return report.finish()


# ---- pocketsphinx ----

def align_manifest(utts: list[Utterance], cfg: AlignConfig, report: StageReport) -> list[Utterance]:
    """Forced-align every utterance with text; OOV words get espeak pronunciations; mismatches are failures."""
    words_of: dict[str, list[str]] = {}
    for u in utts:
        words = _words(u)
        if words:
            words_of[u.id] = words
        else:
            report.fail(u.id, "no-text: the utterance has no transcript to align", u.audio_path)
    lexicon, g2p_errors = build_oov_lexicon(words_of.values(), cfg.voice)
    _write_lexicon(cfg.out_path.with_name("align_oov.dict"), lexicon)
    report.extra.update({"num_oov_words": len(lexicon) + len(g2p_errors),
                         "oov_handling": f"espeak-ng ({cfg.voice}) phonemes mapped to ARPAbet, see align_oov.dict",
                         "num_oov_unpronounceable": len(g2p_errors)})
    jobs = []
    for u in utts:
        if u.id not in words_of:
            continue
        bad = [g2p_errors[w] for w in words_of[u.id] if w in g2p_errors]
        if bad:
            report.fail(u.id, bad[0], u.audio_path)
        else:
            jobs.append((u, words_of[u.id]))
    results = _run_jobs(jobs, cfg, lexicon, report)
    rule = MismatchRule(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(MismatchRule)})
    mismatched = detect_mismatches(results, rule, {u.id: u.speaker for u in utts})
    if results:
        median = statistics.median(r.score_per_frame for r in results.values())
        report.extra["median_score_per_frame"] = round(median, 2)
        deficits = [r.fit_deficit for r in results.values() if r.fit_deficit is not None]
        report.extra["median_fit_deficit"] = round(statistics.median(deficits), 2) if deficits else None
        # the fit rules cannot judge these; the edge and squeeze rules still apply
        report.extra["num_no_free_decode"] = len(results) - len(deficits)
    by_id = {u.id: u for u in utts}
    aligned = []
    for utt_id, res in results.items():
        u = by_id[utt_id]
        if utt_id in mismatched:
            report.fail(utt_id, mismatched[utt_id], u.audio_path)
            continue
        deficit = None if res.fit_deficit is None else round(res.fit_deficit, 2)
        meta = {**u.meta, "align": {"method": "pocketsphinx", "score_per_frame": round(res.score_per_frame, 2),
                                    "fit_deficit": deficit}}
        aligned.append(_with_spans(u, res.words, res.phones, meta))
    return aligned


def build_oov_lexicon(word_lists, voice: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """ARPAbet pronunciations of the words the CMU dictionary lacks, and the reason for each one espeak can't give."""
    known = dictionary_words()
    oov = sorted({w for words in word_lists for w in words if w not in known})
    lexicon, errors = {}, {}
    for w in oov:
        try:
            lexicon[w] = pronounce_word(w, voice)
        except KoeInputError as e:
            errors[w] = str(e)
    return lexicon, errors


def _run_jobs(jobs, cfg: AlignConfig, lexicon: dict[str, list[str]], report: StageReport) -> dict[str, AlignResult]:
    beams = Beams(cfg.beam, cfg.wbeam, cfg.pbeam, cfg.lpbeam, cfg.lponlybeam)
    tasks = [(u, words, str(cfg.manifest.parent), cfg.max_duration_s) for u, words in jobs]
    results: dict[str, AlignResult] = {}
    edge_loops = cfg.max_edge_gain_start > 0 or cfg.max_edge_gain_end > 0
    outcomes = map_in_workers(_align_one, tasks, cfg.num_workers, _init_worker,
                              (beams, lexicon, cfg.min_pause_s, edge_loops))
    for (u, _), outcome in progress(zip(jobs, outcomes, strict=True), desc="align", total=len(jobs), unit="utt"):
        if isinstance(outcome, str):
            report.fail(u.id, outcome, u.audio_path)
        else:
            results[u.id] = outcome
    return results


def _init_worker(beams: Beams, lexicon: dict[str, list[str]], min_pause_s: float, edge_loops: bool) -> None:
    global _aligner
    _aligner = PocketsphinxAligner(beams, extra_words=lexicon, min_pause_s=min_pause_s, edge_loops=edge_loops)


def _align_one(task) -> AlignResult | str:
    """Load and align one utterance in a worker; a KoeInputError comes back as its message."""
    utt, words, manifest_dir, max_duration_s = task
    try:
        path = utt.resolve_audio(manifest_dir)
        info = probe_audio(path)
        to_end = abs(info.duration_s - utt.offset_s - utt.duration_s) < 0.02  # whole rest of file: no rounding trap
        audio = load_audio(path, utt.offset_s, None if to_end else utt.duration_s, max_duration_s)
        return _aligner.align(audio, words)
    except KoeInputError as e:
        return str(e)


# ---- importers ----

def import_manifest(utts: list[Utterance], cfg: AlignConfig, report: StageReport) -> list[Utterance]:
    """Fill words/phones from TextGrid / CTM / WhisperX files matched by utterance id, then by audio file stem."""
    found = load_alignments(cfg.method, cfg.alignments)
    used: set[str] = set()
    aligned = []
    for u in progress(utts, desc=f"import {cfg.method}", unit="utt"):
        stem = Path(u.audio_path).stem
        name = u.id if u.id in found else stem if stem in found else None
        if name is None:
            report.fail(u.id, f"no-alignment: nothing in {cfg.alignments} named {u.id!r} or {stem!r}", u.audio_path)
            continue
        used.add(name)
        try:
            aligned.append(_imported_utterance(u, found[name], by_file=name != u.id, method=cfg.method))
        except KoeInputError as e:
            report.fail(u.id, str(e), u.audio_path)
    report.extra["unused_alignments"] = len(set(found) - used)
    return aligned


def _imported_utterance(u: Utterance, entry: Imported | KoeInputError, by_file: bool, method: str) -> Utterance:
    if isinstance(entry, KoeInputError):
        raise entry
    words, phones = place_alignment(u, entry, by_file)
    labelled = [(normalize_word(w), s, e) for w, s, e in words]
    labelled = [span for span in labelled if span[0]]
    if not labelled:
        raise KoeInputError(f"no-alignment: {entry.path}: no words for this utterance")
    expected = _words(u)
    got = [w for w, _, _ in labelled]
    if expected is not None and got != expected:
        pairs = enumerate(zip(expected, got, strict=False))
        i = next((i for i, (a, b) in pairs if a != b), min(len(expected), len(got)))
        raise KoeInputError(
            f"mismatch: {entry.path}: aligned words differ from the transcript at word {i} "
            f"({' '.join(expected[i:i + 3])!r} vs {' '.join(got[i:i + 3])!r})"
        )
    text = u.text if u.text is not None else " ".join(got)
    meta = {**u.meta, "align": {"method": method, "source": str(entry.path)}}
    return _with_spans(dataclasses.replace(u, text=text), labelled, phones, meta)


# ---- helpers ----

def _words(u: Utterance) -> list[str] | None:
    return normalize_text(u.text).split() if u.text and u.text.strip() else None


def _with_spans(u: Utterance, words, phones, meta) -> Utterance:
    return dataclasses.replace(u, words=list(words), phones=list(phones) if phones else None, meta=meta)


def _rebase(u: Utterance, src_dir: Path, dst_dir: Path) -> Utterance:
    """Keep a relative audio_path valid when the output manifest lives in another folder."""
    if Path(u.audio_path).is_absolute() or src_dir.resolve() == dst_dir.resolve():
        return u
    return dataclasses.replace(u, audio_path=os.path.relpath(src_dir / u.audio_path, dst_dir))


def _write_lexicon(path: Path, lexicon: dict[str, list[str]]) -> None:
    atomic_write_text(path, "".join(f"{w} {' '.join(p)}\n" for w, p in sorted(lexicon.items())))
