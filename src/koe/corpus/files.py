"""Importers over audio files on disk: sidecar transcripts, labels in file names, the LibriSpeech layout.

    utts = import_files(cfg, report)          # source=dir, or source=pattern with cfg.pattern
    utts = import_librispeech(cfg, report)

Each finds candidate files, reads their labels, then probes every file with `check_audio_file`; a file that fails
any step is listed in `report` with its reason and the rest go on. The audio is not copied: `audio_path` is the
absolute path of the original file.

- dir: every audio file under `path` (recursive); transcript from `name.txt`, else `name.lab` (one plain-text
  transcript in UTF-8; an Audacity-style label file of `start end label` lines is not a transcript); speaker = the
  file's folder relative to `path` ("unknown" at the top level). A transcript with no audio file beside it is
  listed as a failure (`no audio`), not ignored; one that is not UTF-8 fails its utterance (`not UTF-8`).
- pattern: the path relative to `path`, without suffix, must match `cfg.pattern`; `{text}` and `{speaker}` fill those
  fields (text via `text_map`), others go into meta; without `{text}` the sidecar transcript is read as in dir.
- librispeech: `speaker/chapter/speaker-chapter.trans.txt` lines `ID TEXT`, audio `ID.flac` beside it; a subset
  folder named dev-* or test-* (e.g. LibriSpeech/dev-clean) puts its utterances in valid or test.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from koe.corpus.checks import check_audio_file
from koe.corpus.config import PATTERN_FIELD, ImportConfig
from koe.corpus.manifest import Utterance
from koe.stage import KoeInputError, StageReport, progress, read_text_file

_TIMED_LABEL = re.compile(r"^\s*\d+(\.\d+)?\s+\d+(\.\d+)?\s+\S")


@dataclasses.dataclass
class Candidate:
    """An audio file and its labels, before the file is probed."""

    id: str
    path: Path
    text: str | None
    speaker: str
    split: str = "train"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


def list_audio_files(root: Path, extensions: list[str], glob: str | None) -> list[Path]:
    """Sorted audio files under root (or root itself when it is a file), filtered by suffix and an optional glob."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise KoeInputError(f"not found: {root}: no such folder or file")
    suffixes = {s.lower() if s.startswith(".") else f".{s.lower()}" for s in extensions}
    found = root.glob(glob) if glob else root.rglob("*")
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in suffixes)


def import_files(cfg: ImportConfig, report: StageReport) -> list[Utterance]:
    """source=dir and source=pattern."""
    root = Path(cfg.path)
    regex = compile_pattern(cfg.pattern) if cfg.source == "pattern" else None
    candidates = []
    audio = list_audio_files(root, cfg.audio_extensions, cfg.glob)
    for path in audio:
        report.items_in += 1
        try:
            candidates.append(_file_candidate(path, root, regex, cfg))
        except KoeInputError as e:
            report.fail(_rel_id(path, root), str(e), path)
    if regex is None or "text" not in regex.groupindex:  # transcripts come from sidecar files
        for orphan in orphan_transcripts(root, audio, cfg.glob is not None):
            report.items_in += 1
            report.fail(_rel_id(orphan, root), f"no audio: {orphan}: no {orphan.stem}.* audio file beside this "
                        f"transcript (audio_extensions={cfg.audio_extensions})", orphan)
    return probe_candidates(candidates, cfg, report)


def orphan_transcripts(root: Path, audio: list[Path], globbed: bool) -> list[Path]:
    """Sidecar transcripts (.txt, .lab) that no imported audio file claims: under `root` (recursively), or, when a
    glob chose the audio, in the folders holding that audio. Listed so a missing recording is never silent."""
    if root.is_file():
        return []
    claimed = {a.with_suffix("") for a in audio}
    folders = sorted({a.parent for a in audio}) if globbed else [root]
    found = {p for d in folders for suffix in (".txt", ".lab")
             for p in (d.glob(f"*{suffix}") if globbed else d.rglob(f"*{suffix}"))}
    return sorted(p for p in found if p.is_file() and p.with_suffix("") not in claimed)


def _file_candidate(path: Path, root: Path, regex: re.Pattern | None, cfg: ImportConfig) -> Candidate:
    rel = path.relative_to(root) if path != root else Path(path.name)
    fields: dict[str, str] = {}
    if regex is not None:
        m = regex.fullmatch(rel.with_suffix("").as_posix())
        if m is None:
            raise KoeInputError(f"pattern mismatch: {path}: {rel.with_suffix('').as_posix()!r} !~ {cfg.pattern!r}")
        fields = m.groupdict()
    text = fields.pop("text", None)
    if text is not None:
        text = {str(k): str(v) for k, v in cfg.text_map.items()}.get(text, text)
    else:
        text = read_sidecar_text(path)
    if text is None and cfg.require_text:
        raise KoeInputError(f"no transcript: {path}: expected {path.with_suffix('.txt').name} or .lab beside it")
    folder = rel.parent.as_posix()
    speaker = fields.pop("speaker", None) or (folder if folder != "." else "unknown")
    return Candidate(_rel_id(path, root), path, text, speaker, meta=fields)


def read_sidecar_text(audio: Path) -> str | None:
    """Transcript from name.txt, else name.lab; None when neither holds one. Raises on an empty transcript file."""
    for sidecar in (audio.with_suffix(".txt"), audio.with_suffix(".lab")):
        if not sidecar.is_file():
            continue
        raw = read_text_file(sidecar, kind="bad-transcript")
        if sidecar.suffix == ".lab" and _TIMED_LABEL.match(raw):
            continue
        text = " ".join(raw.split())
        if not text:
            raise KoeInputError(f"empty transcript: {sidecar}: the file holds no text")
        return text
    return None


def compile_pattern(pattern: str) -> re.Pattern:
    """'{text}_{speaker}_{take}' -> a regex with one named group per field; a field never spans a '/'."""
    parts, pos = [], 0
    for m in PATTERN_FIELD.finditer(pattern):
        parts.append(re.escape(pattern[pos : m.start()]))
        parts.append(f"(?P<{m.group(1)}>[^/]+?)")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("".join(parts))


def import_librispeech(cfg: ImportConfig, report: StageReport) -> list[Utterance]:
    root = Path(cfg.path)
    if not root.is_dir():
        raise KoeInputError(f"not found: {root}: no such folder")
    candidates: list[Candidate] = []
    transcribed: set[Path] = set()
    unreadable: set[Path] = set()  # folders whose transcript file failed: their audio is not "untranscribed"
    for trans in sorted(root.rglob("*.trans.txt")):
        try:
            lines = read_text_file(trans, kind="bad-transcript").splitlines()
        except KoeInputError as e:
            report.items_in += 1
            report.fail(trans.name.removesuffix(".trans.txt"), str(e), trans)
            unreadable.add(trans.parent)
            continue
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            report.items_in += 1
            utt_id, _, text = line.strip().partition(" ")
            audio = next((a for a in (trans.parent / f"{utt_id}.flac", trans.parent / f"{utt_id}.wav")
                          if a.is_file()), None)
            if audio is None:
                report.fail(utt_id, f"missing audio: {trans}:{lineno}: no {utt_id}.flac beside it", trans)
                continue
            transcribed.add(audio)
            if not text.strip():
                report.fail(utt_id, f"empty transcript: {trans}:{lineno}: no text after the id", trans)
                continue
            candidates.append(_librispeech_candidate(utt_id, audio, " ".join(text.split())))
    for audio in list_audio_files(root, [".flac"], None):
        if audio not in transcribed and audio.parent not in unreadable:
            report.items_in += 1
            report.fail(audio.stem, f"no transcript: {audio}: its id is in no *.trans.txt beside it", audio)
    return probe_candidates(candidates, cfg, report)


def _librispeech_candidate(utt_id: str, audio: Path, text: str) -> Candidate:
    speaker, chapter = [*utt_id.split("-"), "", ""][:2]
    subset = audio.parents[2].name  # the folder above speaker/chapter: dev-clean, train-clean-100, ...
    split = "valid" if subset.startswith("dev") else "test" if subset.startswith("test") else "train"
    meta = {"chapter": chapter, "subset": subset}
    return Candidate(utt_id, audio, text, speaker or "unknown", split, meta)


def probe_candidates(candidates: list[Candidate], cfg: ImportConfig, report: StageReport) -> list[Utterance]:
    """Probe each file; keep those that pass, list the others with their reason."""
    utts = []
    for c in progress(candidates, desc=f"probe {cfg.source}", unit="file"):
        try:
            info = check_audio_file(c.path, cfg.max_duration_s, cfg.check_samples)
        except KoeInputError as e:
            report.fail(c.id, str(e), c.path)
            continue
        utts.append(Utterance(
            id=c.id, audio_path=str(c.path.resolve()), sample_rate_hz=info.sample_rate_hz,
            duration_s=round(info.duration_s, 4), speaker=c.speaker, text=c.text, split=c.split, meta=c.meta,
        ))
    return utts


def _rel_id(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if path != root else Path(path.name)
    return rel.with_suffix("").as_posix().replace("/", "-")
