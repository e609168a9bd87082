"""Read alignments made by other tools: Praat TextGrid (Montreal Forced Aligner), CTM, WhisperX JSON.

    found = load_alignments("textgrid", "mfa_out/")     # {"utt1": Imported(words, phones, path), ...}
    words, phones = place_alignment(utt, found["utt1"], by_file=False)

Each reader returns `Imported` spans keyed by name: a TextGrid or WhisperX file by its file stem, a CTM line by its
first column. `koe align` looks an utterance up by its id first, then by its audio file's stem; times found under
the id are taken as relative to the utterance, times found under the file stem as relative to the file (and shifted
by the utterance's `offset_s`, keeping the words inside its segment). Silence labels ("", sil, sp, <eps>) are not
words; every other label is kept, so a transcript the tool changed shows up as a text mismatch instead of vanishing.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from koe.corpus.manifest import Span, Utterance
from koe.stage import KoeInputError

SILENCE_LABELS = {"", "sil", "<sil>", "sp", "<eps>", "silence"}
END_TOLERANCE_S = 0.05  # aligners round times to 10 ms frames; allow that much past the segment end


@dataclasses.dataclass
class Imported:
    """Spans read from one alignment file (or one CTM utterance)."""

    words: list[Span]
    phones: list[Span] | None
    path: Path


# ---- Praat TextGrid (long and short text formats) ----

_TG_TOKEN = re.compile(
    r'"(?P<str>(?:[^"]|"")*)"'  # quoted string, "" escapes a quote
    r"|(?P<exists><exists>)"
    r"|[A-Za-z_][\w ?]*\[\s*\d*\s*\]\s*:"  # long-format headers: item [1]:, intervals [3]:
    r"|(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|[A-Za-z_][\w?]*|[=:]|\S"
)


def read_textgrid(path: str | Path) -> Imported:
    """Words and phones tiers of a TextGrid in Praat's long or short text format (UTF-8 or UTF-16)."""
    path = Path(path)
    tiers = _parse_textgrid(path)
    words = _find_tier(tiers, "words", path)
    phones = _find_tier(tiers, "phones", path, required=False)
    return Imported(_spans(words), _spans(phones) if phones is not None else None, path)


def _parse_textgrid(path: Path) -> dict[str, list[Span]]:
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
    values: list[str | float] = []
    for m in _TG_TOKEN.finditer(text):
        if m.group("str") is not None:
            values.append(m.group("str").replace('""', '"'))
        elif m.group("num") is not None:
            values.append(float(m.group("num")))
        elif m.group("exists"):
            values.append("<exists>")
    try:
        return _tiers_from_values(values)
    except (IndexError, TypeError, ValueError) as e:
        raise KoeInputError(f"bad-alignment: {path}: not a readable TextGrid ({type(e).__name__}: {e})") from None


def _tiers_from_values(values: list[str | float]) -> dict[str, list[Span]]:
    if values[:2] != ["ooTextFile", "TextGrid"]:
        raise ValueError("missing the 'ooTextFile' / 'TextGrid' header")
    pos = 4  # header strings, then xmin, xmax
    if values[pos] != "<exists>":
        return {}
    num_tiers = int(values[pos + 1])
    pos += 2
    tiers = {}
    for _ in range(num_tiers):
        kind, name, _xmin, _xmax, count = values[pos:pos + 5]
        pos += 5
        width = 3 if kind == "IntervalTier" else 2
        rows = values[pos:pos + width * int(count)]
        pos += width * int(count)
        if kind == "IntervalTier":
            tiers[str(name)] = [(str(rows[i + 2]), float(rows[i]), float(rows[i + 1])) for i in range(0, len(rows), 3)]
    return tiers


def _find_tier(tiers: dict[str, list[Span]], kind: str, path: Path, required: bool = True) -> list[Span] | None:
    """MFA names tiers "words"/"phones", or "<speaker> - words" when it keeps speakers apart."""
    for name, spans in tiers.items():
        low = name.strip().lower()
        if low == kind or low.endswith(f" - {kind}"):
            return spans
    if required:
        raise KoeInputError(f"bad-alignment: {path}: no '{kind}' interval tier (tiers: {sorted(tiers)})")
    return None


def _spans(spans: list[Span]) -> list[Span]:
    return [(label.strip(), s, e) for label, s, e in spans if label.strip().lower() not in SILENCE_LABELS]


# ---- CTM ----

def read_ctm(path: str | Path) -> dict[str, Imported]:
    """`utt channel start dur word [conf]` lines, grouped by utterance; `;;` lines are comments."""
    path = Path(path)
    out: dict[str, Imported] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith(";;"):
            continue
        fields = line.split()
        if len(fields) not in (5, 6):
            raise KoeInputError(f"bad-alignment: {path}:{lineno}: expected 'utt channel start dur word [conf]'")
        try:
            start, dur = float(fields[2]), float(fields[3])
        except ValueError:
            raise KoeInputError(f"bad-alignment: {path}:{lineno}: start/dur are not numbers") from None
        entry = out.setdefault(fields[0], Imported([], None, path))
        if fields[4].lower() not in SILENCE_LABELS:
            entry.words.append((fields[4], start, start + dur))
    for entry in out.values():
        entry.words.sort(key=lambda s: s[1])
    return out


# ---- WhisperX JSON ----

def read_whisperx(path: str | Path) -> Imported:
    """`segments[].words[]` with `word`, `start`, `end` (as whisperx.align writes); a word without times is an error."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        segments = data["segments"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise KoeInputError(f"bad-alignment: {path}: not WhisperX JSON with 'segments' ({e})") from None
    words: list[Span] = []
    for seg in segments:
        for w in seg.get("words", []):
            if "start" not in w or "end" not in w:
                raise KoeInputError(f"untimed-word: {path}: word {w.get('word')!r} has no start/end")
            words.append((str(w["word"]).strip(), float(w["start"]), float(w["end"])))
    return Imported(words, None, path)


# ---- finding files and placing spans on an utterance ----

def load_alignments(method: str, path: str | Path) -> dict[str, Imported | KoeInputError]:
    """All alignments under `path` (a file or a folder searched recursively), keyed by utterance id or file stem.

    A file that cannot be read is kept as its KoeInputError, so the utterance it belongs to fails with that reason.
    """
    path = Path(path)
    if not path.exists():
        raise KoeInputError(f"{path}: alignments not found")
    if method == "ctm":
        files = sorted(path.rglob("*.ctm")) if path.is_dir() else [path]
        found: dict[str, Imported | KoeInputError] = {}
        for f in files:
            found.update(read_ctm(f))
        return found
    reader, suffix = {"textgrid": (read_textgrid, ".textgrid"), "whisperx": (read_whisperx, ".json")}[method]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() == suffix) if path.is_dir() else [path]
    found = {}
    for f in files:
        try:
            found[f.stem] = reader(f)
        except KoeInputError as e:
            found[f.stem] = e
        except (OSError, UnicodeDecodeError) as e:
            found[f.stem] = KoeInputError(f"unreadable: {f}: {e}")
    return found


def place_alignment(utt: Utterance, imported: Imported, by_file: bool) -> tuple[list[Span], list[Span] | None]:
    """Spans relative to the utterance: shifted by offset_s and cut to the segment when found by file stem.

    Raises KoeInputError when the spans run past the audio or overlap backwards, which means the file belongs to
    other audio.
    """
    shift = utt.offset_s if by_file else 0.0
    placed = []
    for spans in (imported.words, imported.phones):
        if spans is None:
            placed.append(None)
            continue
        moved = [(label, s - shift, e - shift) for label, s, e in spans]
        if by_file:
            moved = [(lb, max(s, 0.0), min(e, utt.duration_s)) for lb, s, e in moved
                     if 0.0 <= (s + e) / 2 < utt.duration_s]
        _check_spans(moved, utt, imported.path)
        placed.append(moved)
    return placed[0], placed[1]


def _check_spans(spans: list[Span], utt: Utterance, path: Path) -> None:
    prev_start = 0.0
    for label, s, e in spans:
        if s < -END_TOLERANCE_S or e > utt.duration_s + END_TOLERANCE_S or e < s:
            raise KoeInputError(
                f"bad-alignment: {path}: span {label!r} [{s:.3f}, {e:.3f}] s is outside the "
                f"{utt.duration_s:.3f} s utterance"
            )
        if s < prev_start:
            raise KoeInputError(f"bad-alignment: {path}: span {label!r} at {s:.3f} s starts before the one before it")
        prev_start = s
