"""Import a Hugging Face `datasets` dataset from local disk: decoded to out_dir/wav/ID.wav (16 kHz mono).

    koe corpus import hf path=saved_ds out_dir=corpus/hf            # a save_to_disk folder (Dataset or DatasetDict)
    koe corpus import hf path=data/train.parquet out_dir=corpus/hf  # local parquet/json/csv files, or their folder

The audio column is cast to `Audio(decode=False)` and decoded here with soundfile: datasets 5.x decodes audio only
through torchcodec, which is not usable in koe's environments. Each row's `{"bytes", "path"}` is read from the bytes
when present, else from the path (as stored, or relative to the dataset folder). A column of plain path strings
works too. Dataset splits map by name: names containing "valid" or "dev" -> valid, "test" -> test, others -> train.
Ids come from `hf_id_column` when the dataset has it, else `{split}-{index:06d}`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import soundfile as sf

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.corpus.checks import decoded_to_16k
from koe.corpus.config import ImportConfig
from koe.corpus.manifest import Utterance
from koe.stage import KoeInputError, StageReport, progress

_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "csv", ".arrow": "arrow"}


def load_local_dataset(path: Path) -> dict[str, Any]:
    """{split name: Dataset} from a save_to_disk folder, a local data file, or a folder of data files."""
    import datasets

    if not path.exists():
        raise KoeInputError(f"not found: {path}: no such dataset folder or file")
    try:
        if path.is_file():
            builder = _BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise KoeInputError(f"unsupported format: {path}: expected one of {sorted(_BUILDERS)}")
            extra = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
            ds = datasets.load_dataset(builder, data_files=str(path), **extra)
        elif (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            ds = datasets.load_from_disk(str(path))
        else:
            ds = datasets.load_dataset(str(path))
    except KoeInputError:
        raise
    except Exception as e:  # datasets raises many types (FileNotFoundError, DatasetNotFoundError, ValueError...)
        raise KoeInputError(f"unreadable: {path}: datasets could not load it: {e}") from None
    return dict(ds) if isinstance(ds, datasets.DatasetDict) else {"train": ds}


def koe_split(name: str) -> str:
    low = name.lower()
    return "valid" if ("valid" in low or "dev" in low) else "test" if "test" in low else "train"


def import_hf(cfg: ImportConfig, report: StageReport) -> list[Utterance]:
    from datasets import Audio

    root = Path(cfg.path)
    wav_dir = Path(cfg.out_dir) / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    utts: list[Utterance] = []
    seen: set[str] = set()
    for split_name, ds in load_local_dataset(root).items():
        if cfg.hf_audio_column not in ds.column_names:
            raise KoeInputError(f"missing column: {root}: split {split_name} has no {cfg.hf_audio_column!r} "
                                f"(columns: {ds.column_names}); set hf_audio_column")
        if isinstance(ds.features[cfg.hf_audio_column], Audio):
            ds = ds.cast_column(cfg.hf_audio_column, Audio(decode=False))
        for index, row in enumerate(progress(ds, desc=f"hf {split_name}", total=len(ds), unit="row")):
            report.items_in += 1
            utt_id = _row_id(row, cfg.hf_id_column, split_name, index)
            if utt_id in seen:  # checked before writing, so a repeat never overwrites the first one's wav
                report.fail(utt_id, f"duplicate id: {root}[{split_name}][{index}]: {utt_id!r} came before", root)
                continue
            seen.add(utt_id)
            try:
                utts.append(_row_utterance(row, utt_id, (split_name, index), root, wav_dir, cfg))
            except KoeInputError as e:
                report.fail(utt_id, str(e), root)
    return utts


def _row_utterance(
    row: dict, utt_id: str, split_index: tuple[str, int], root: Path, wav_dir: Path, cfg: ImportConfig
) -> Utterance:
    split_name, index = split_index
    where = f"{root}[{split_name}][{index}]"
    text = row.get(cfg.hf_text_column)
    text = " ".join(str(text).split()) if text is not None else None
    if not text and cfg.require_text:
        raise KoeInputError(f"no transcript: {where}: column {cfg.hf_text_column!r} is missing or empty")
    data, sr = _decode(row[cfg.hf_audio_column], where, root)
    wav = decoded_to_16k(data, sr, where, cfg.max_duration_s)
    out = wav_dir / f"{utt_id}.wav"
    sf.write(str(out), wav, TARGET_SAMPLE_RATE_HZ, subtype="PCM_16")
    speaker = row.get(cfg.hf_speaker_column)
    return Utterance(
        id=utt_id, audio_path=str(out.relative_to(cfg.out_dir)), sample_rate_hz=TARGET_SAMPLE_RATE_HZ,
        duration_s=round(len(wav) / TARGET_SAMPLE_RATE_HZ, 4),
        speaker=str(speaker) if speaker is not None else "unknown", text=text or None, split=koe_split(split_name),
        meta={"hf_split": split_name, "hf_index": index, "source_sample_rate_hz": sr},
    )


def _decode(value: Any, where: str, root: Path) -> tuple[Any, int]:
    """Decode an undecoded Audio value ({'bytes', 'path'}) or a path string with soundfile."""
    if isinstance(value, dict) and value.get("bytes"):
        source: Any = io.BytesIO(value["bytes"])
    else:
        path = value.get("path") if isinstance(value, dict) else value
        if not path:
            raise KoeInputError(f"empty: {where}: the audio cell has neither bytes nor a path")
        base = root.parent if root.is_file() else root  # paths in a metadata file are relative to its folder
        source = next((p for p in (Path(path), base / path) if p.is_file()), None)
        if source is None:
            raise KoeInputError(f"missing audio: {where}: {path} not found (as is or under {base})")
        source = str(source)
    try:
        data, sr = sf.read(source, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError or TypeError by format
        kind = "unsupported format" if "Format not recognised" in str(e) else "unreadable"
        raise KoeInputError(f"{kind}: {where}: {str(e).strip()[:200] or type(e).__name__}") from None
    return data, int(sr)


def _row_id(row: dict, id_column: str, split_name: str, index: int) -> str:
    raw = row.get(id_column)
    raw = str(raw) if raw is not None and str(raw).strip() else f"{split_name}-{index:06d}"
    return re.sub(r"[^\w.+-]", "_", raw)
