"""`koe units encode`: a manifest -> unit shards, split over processes and torchrun ranks.

    koe units encode data/manifest.jsonl tokenizer=tok/hubert500 out_dir=units/hubert500
    koe units encode data/manifest.jsonl tokenizer=tok/mfcc100 out_dir=units/mfcc100 num_workers=4 device=cpu
    torchrun --nproc-per-node 8 -m koe units encode data/manifest.jsonl tokenizer=tok/h500 out_dir=units/h500

Shard i always holds manifest lines [i * shard_size, (i + 1) * shard_size) that encoded without error, in manifest
order, whatever the number of ranks and workers: rank r takes shards i with i % world_size == r, and its worker w of
n takes every n-th of those. Every process writes its own shards; after a gather of the per-rank reports (which is
the barrier), rank 0 alone writes meta.json, config.yaml, the summary and the failure list, so meta.json appearing
means every shard is complete. Within a shard, utterances are sorted by duration into groups of ~batch_s seconds
while threads decode the next groups' audio.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from accelerate.utils import gather_object

from koe.audio import TARGET_SAMPLE_RATE_HZ, load_audio, probe_audio
from koe.config import save_config
from koe.corpus.manifest import Utterance, read_manifest
from koe.stage import Failure, KoeInputError, StageReport, done_key, mark_done, progress, skip_if_done
from koe.units.config import EncodeConfig
from koe.units.features import default_batch_s
from koe.units.shards import UnitRecord, UnitsMeta, shard_name, write_unit_shard, write_units_meta
from koe.units.tokenizer import UnitTokenizer

STAGE = "units encode"


def load_utterance(utt: Utterance, manifest_dir: Path, max_duration_s: float | None) -> np.ndarray:
    """The utterance's segment as 16 kHz float32; a segment reaching the file's end (10 ms slack) is read whole."""
    path = utt.resolve_audio(manifest_dir)
    info = probe_audio(path)
    to_end = utt.offset_s + utt.duration_s >= info.duration_s - 0.01
    return load_audio(path, utt.offset_s, None if to_end else utt.duration_s, max_duration_s)


def duration_groups(utts: list[Utterance], batch_s: float, sort: bool = True) -> list[list[int]]:
    """Indices cut into groups; sorted (longest first), a group is one encoder batch: count x longest <= batch_s.

    Unsorted (fit's random order), a group holds about batch_s seconds and the extractor batches it further.
    """
    order = sorted(range(len(utts)), key=lambda i: -utts[i].duration_s) if sort else list(range(len(utts)))
    groups: list[list[int]] = []
    total = 0.0
    for i in order:
        if groups:  # sorted: padded seconds, the group's first item being its longest
            size = (len(groups[-1]) + 1) * utts[groups[-1][0]].duration_s if sort else total + utts[i].duration_s
        if not groups or size > batch_s:
            groups.append([])
            total = 0.0
        groups[-1].append(i)
        total += utts[i].duration_s
    return groups


Loaded = list[tuple[int, "np.ndarray | KoeInputError"]]


def split_loaded(loaded: Loaded, utts: list[Utterance]) -> tuple[list[tuple[int, np.ndarray]], list[Failure]]:
    """The (index, waveform) pairs of a loaded group that decoded, and a Failure for each file that did not."""
    good = [(i, w) for i, w in loaded if not isinstance(w, KoeInputError)]
    failed = [Failure(utts[i].id, str(w), str(utts[i].audio_path)) for i, w in loaded if isinstance(w, KoeInputError)]
    return good, failed


def iter_loaded(utts: list[Utterance], groups: list[list[int]], manifest_dir: Path, max_duration_s: float | None,
                threads: int, collate: Callable[[list[np.ndarray]], Any] | None = None, lookahead: int = 2
                ) -> Iterator[tuple[Loaded, Any]]:
    """Per group: ((index, waveform or its KoeInputError), ...) and collate(good waveforms) or None.

    `threads` decode files and one more thread collates whole groups, `lookahead` groups ahead of the consumer, so
    the device never waits for decoding or padding.
    """

    def load(i: int) -> np.ndarray | KoeInputError:
        try:
            return load_utterance(utts[i], manifest_dir, max_duration_s)
        except KoeInputError as e:
            return e

    def gather(futures: list) -> tuple[Loaded, Any]:
        loaded = [(i, f.result()) for i, f in futures]
        good = [w for _, w in loaded if not isinstance(w, KoeInputError)]
        return loaded, collate(good) if collate is not None and good else None

    with ThreadPoolExecutor(threads) as loaders, ThreadPoolExecutor(1) as collator:
        def submit(group: list[int]):
            return collator.submit(gather, [(i, loaders.submit(load, i)) for i in group])

        pending = [submit(g) for g in groups[:lookahead]]
        for g in groups[lookahead:] + [None] * lookahead:
            if g is not None:
                pending.append(submit(g))
            if pending:
                yield pending.pop(0).result()


@dataclasses.dataclass
class PartJob:
    """One process's share: which shards, which utterances, how to encode them."""

    shards: dict[int, list[Utterance]]
    tokenizer_dir: str
    manifest_dir: str
    out_dir: str
    device: str
    batch_s: float
    max_duration_s: float | None
    loader_threads: int
    torch_threads: int | None = None


@dataclasses.dataclass
class PartResult:
    failures: list[Failure]
    num_written: int = 0
    audio_s: float = 0.0
    frames: int = 0
    units: int = 0


def encode_part(job: PartJob, tok: UnitTokenizer | None = None) -> PartResult:
    """Encode and write the job's shards; per-file KoeInputErrors become failures, the rest go on."""
    if job.torch_threads:
        import torch

        torch.set_num_threads(job.torch_threads)
    tok = tok or UnitTokenizer.load(job.tokenizer_dir, device=job.device, batch_s=job.batch_s)
    _ = tok.extractor  # load the encoder here, not lazily inside a loader thread
    result = PartResult(failures=[])
    bar = progress(range(sum(len(u) for u in job.shards.values())), desc=STAGE, unit="utt")
    for index, utts in job.shards.items():
        records: dict[int, UnitRecord] = {}
        groups = duration_groups(utts, job.batch_s)
        batches = iter_loaded(utts, groups, Path(job.manifest_dir), job.max_duration_s, job.loader_threads,
                              collate=tok.prepare)
        for loaded, prepared in batches:
            good, failed = split_loaded(loaded, utts)
            result.failures.extend(failed)
            encoded = tok.tokenize_prepared(prepared) if good else []
            for (i, wav), t in zip(good, encoded, strict=True):
                records[i] = UnitRecord(utts[i].id, t.units, t.durations, t.segments)
                result.audio_s += len(wav) / TARGET_SAMPLE_RATE_HZ
                result.frames += int(t.durations.sum())
                result.units += len(t.units)
            for _ in loaded:
                next(bar, None)
        result.num_written += write_unit_shard(Path(job.out_dir) / shard_name(index),
                                               [records[i] for i in sorted(records)])
    return result


def _dist_state():
    """accelerate's PartialState: torchrun's rank, world size and local rank (0, 1, 0 in a plain process). On the
    CPU, `cpu=True` makes it honour torchrun's WORLD_SIZE through a gloo group."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def plan_parts(num_utts: int, shard_size: int, rank: int, world: int, workers: int) -> list[list[int]]:
    """Shard indices per worker of this rank: disjoint across ranks and workers, covering every shard once."""
    num_shards = max(1, -(-num_utts // shard_size))
    mine = list(range(rank, num_shards, world))
    return [mine[w::workers] for w in range(workers) if mine[w::workers]]


def run_encode(cfg: EncodeConfig) -> StageReport:
    state = _dist_state()
    rank, world = state.process_index, state.num_processes
    report = StageReport(STAGE, cfg.out_dir if rank == 0 else None)
    utts = read_manifest(cfg.manifest)
    device = cfg.device
    if world > 1 and device in ("auto", "cuda"):
        device = str(state.device)  # cuda:LOCAL_RANK, or cpu
    batch_s = cfg.batch_s or default_batch_s(device)
    tok = UnitTokenizer.load(cfg.tokenizer, device=device, batch_s=batch_s)
    output_settings = ("manifest", "tokenizer", "out_dir", "shard_size", "max_duration_s")
    key = done_key({**{k: str(getattr(cfg, k)) for k in output_settings}, "tokenizer_hash": tok.content_hash},
                   inputs=[cfg.manifest])  # the manifest's contents: a changed corpus is re-encoded
    if (earlier := skip_if_done(STAGE, cfg.out_dir, key, cfg.force)) is not None:
        return earlier
    num_shards = max(1, -(-len(utts) // cfg.shard_size))
    parts = plan_parts(len(utts), cfg.shard_size, rank, world, cfg.num_workers)
    jobs = [PartJob({i: utts[i * cfg.shard_size : (i + 1) * cfg.shard_size] for i in part}, str(cfg.tokenizer),
                    str(Path(cfg.manifest).parent), str(cfg.out_dir), device, batch_s, cfg.max_duration_s,
                    cfg.loader_threads) for part in parts]
    started = time.perf_counter()
    if len(jobs) <= 1:
        _ = tok.extractor  # load the encoder before the clock starts
        started = time.perf_counter()
        results = [encode_part(job, tok) for job in jobs]
    else:
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // len(jobs))
        jobs = [dataclasses.replace(j, torch_threads=threads) for j in jobs]
        with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(encode_part, jobs))
    encode_s = time.perf_counter() - started
    everyone = gather_object(results) if world > 1 else results  # every rank's results, rank order; a barrier
    report.items_in = len(utts) if rank == 0 else sum(len(u) for j in jobs for u in j.shards.values())
    for r in everyone if rank == 0 else results:
        report.ok(r.num_written)
        report.failures.extend(r.failures)
    if rank == 0:
        _finish(cfg, report, tok, everyone, num_shards, encode_s, key)
    return report.finish(quiet=rank != 0)


def _finish(cfg: EncodeConfig, report: StageReport, tok: UnitTokenizer, results: list[PartResult],
            num_shards: int, encode_s: float, key: str) -> None:
    audio_s = sum(r.audio_s for r in results)
    frames, units = sum(r.frames for r in results), sum(r.units for r in results)
    report.extra.update({
        "audio_hours": round(audio_s / 3600, 4),
        "num_shards": num_shards,
        "units_per_s": round(units / audio_s, 3) if audio_s else 0.0,
        "dedup_ratio": round(units / frames, 4) if frames else 0.0,
        "encode_s": round(encode_s, 3),
        "audio_s_per_s": round(audio_s / encode_s, 2) if encode_s else 0.0,
    })
    write_units_meta(cfg.out_dir, UnitsMeta(
        tokenizer_hash=tok.content_hash, tokenizer_dir=str(cfg.tokenizer), num_units=tok.num_units,
        frame_rate_hz=tok.frame_rate_hz, manifest=str(cfg.manifest), num_shards=num_shards,
        num_utterances=report.items_out, dedup=tok.spec.dedup,
        segmentation=tok.spec.segmentation["method"] if tok.spec.segmentation else None))
    save_config(cfg, cfg.out_dir)
    mark_done(cfg.out_dir, key)
