"""`koe units fit`: features of a seeded sample of frames -> faiss k-means [-> BPE] -> a tokenizer directory.

    koe units fit data/manifest.jsonl out_dir=tok/mfcc100                       # MFCC, k=100 (HuBERT iteration 1)
    koe units fit data/manifest.jsonl out_dir=tok/h500 features=hf:facebook/hubert-base-ls960@9 k=500
    koe units fit data/manifest.jsonl out_dir=tok/h500bpe features=hf:facebook/hubert-base-ls960@9 k=500 \
        bpe_vocab_size=4000
    koe units fit data/manifest.jsonl out_dir=tok/syl features=mfcc segmentation=mincut k=500 reduce_to=200

The manifest's `split` utterances are visited in a seeded random order and featurised, whole, until `max_frames`
frames are in hand; those are subsampled (seeded) to exactly `max_frames`, so the sample spans many files without
featurising the whole corpus. BPE, when asked for, is trained on the dedup unit sequences of the same utterances.
The summary (units_fit_summary.json) reports the k-means inertia, frames used, codebook usage on the fit sample
and the dedup ratio (units per frame).

With `segmentation=mincut|greedy` every featurised utterance (all of them, not the max_frames subsample) is cut
into syllable-like segments (koe.units.segment); k-means (then, with reduce_to, Ward agglomeration) runs on the
segments' mean features, and the summary adds the number of segments, tokens per second and segment lengths.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from koe.config import save_config, to_dict
from koe.corpus.manifest import read_manifest
from koe.seed import rng_for, seed_everything
from koe.stage import KoeInputError, StageReport, done_key, mark_done, progress, skip_if_done
from koe.units.config import FitConfig, parse_features
from koe.units.encode import duration_groups, iter_loaded, split_loaded
from koe.units.features import FeatureExtractor, build_extractor
from koe.units.kmeans import assign_units, codebook_usage, fit_kmeans
from koe.units.tokenizer import UnitTokenizer, UnitTokenizerSpec, dedup_units

STAGE = "units fit"


def run_fit(cfg: FitConfig) -> StageReport:
    report = StageReport(STAGE, cfg.out_dir)
    ignored = ("device", "force") + (("segmentation", "syllables", "reduce_to") if cfg.segmentation == "none" else ())
    ignored += tuple(k for k, default in (("quantizer", "kmeans"), ("min_run_frames", 1)) if getattr(cfg, k) == default)
    _, feature_source, _ = parse_features(cfg.features)  # a local encoder/classifier dir is an input too
    inputs = [cfg.manifest, *([feature_source] if feature_source and Path(feature_source).is_dir() else [])]
    key = done_key({k: v for k, v in to_dict(cfg).items() if k not in ignored}, inputs)
    if (earlier := skip_if_done(STAGE, cfg.out_dir, key, cfg.force)) is not None:
        return earlier
    seed_everything(cfg.seed)
    utts = [u for u in read_manifest(cfg.manifest) if cfg.split is None or u.split == cfg.split]
    if not utts:
        raise KoeInputError(f"{cfg.manifest}: no utterances in split {cfg.split!r} (split=null uses all)")
    extractor = build_extractor(cfg.features, cfg.device, batch_s=cfg.batch_s, chunk_s=cfg.chunk_s)
    feats, ids = _collect_features(cfg, utts, extractor, report)
    fit_info = {"manifest": str(cfg.manifest), "split": cfg.split, "num_utterances": len(ids), "seed": cfg.seed,
                "iterations": cfg.iterations, "max_points_per_centroid": cfg.max_points_per_centroid,
                "init": cfg.init, "nredo": cfg.nredo}
    fitted = _fit_frames(cfg, feats) if cfg.segmentation == "none" else _fit_syllables(cfg, feats, extractor)
    bpe_json = None
    if cfg.bpe_vocab_size:
        from koe.units.bpe import train_bpe

        bpe_json = train_bpe((u for u, _ in fitted.sequences), fitted.num_units, cfg.bpe_vocab_size).to_str()
    features = extractor.spec
    if features.backend == "phonetic":
        from koe.units.phonetic import bundle_classifier

        features = dataclasses.replace(features, source=bundle_classifier(str(features.source), cfg.out_dir))
    spec = UnitTokenizerSpec(
        features=features, num_units=fitted.num_units, dedup=fitted.segmentation is None,
        min_run_frames=cfg.min_run_frames,
        bpe={"vocab_size": cfg.bpe_vocab_size, "file": "bpe.json"} if bpe_json is not None else None,
        fit={**fit_info, **fitted.fit}, segmentation=fitted.segmentation,
    )
    tok = UnitTokenizer(spec, fitted.centroids, bpe_json)
    tok.save(cfg.out_dir)
    save_config(cfg, cfg.out_dir)
    num_frames = sum(len(f) for f in feats)
    report.extra.update({
        "features": extractor.spec.name, "k": cfg.k, "num_units": fitted.num_units, "frames_featurised": num_frames,
        **fitted.extra,
        "dedup_ratio": round(sum(len(u) for u, _ in fitted.sequences) / num_frames, 4),
        "content_hash": tok.content_hash,
    })
    mark_done(cfg.out_dir, key)
    return report.finish()


@dataclasses.dataclass
class Fitted:
    """What a codebook fit hands to run_fit: centroids, the fit sample's token sequences, spec and summary parts."""

    centroids: np.ndarray
    num_units: int
    sequences: list[tuple[np.ndarray, np.ndarray]]  # (units, durations) of each featurised utterance
    fit: dict
    extra: dict
    segmentation: dict | None = None


def _fit_frames(cfg: FitConfig, feats: list[np.ndarray]) -> Fitted:
    """k-means on a seeded subsample of max_frames frames; sequences are the dedup frame labels."""
    import torch

    frames = np.concatenate(feats)
    if len(frames) > cfg.max_frames:
        frames = frames[np.sort(rng_for(cfg.seed, "fit-frames").choice(len(frames), cfg.max_frames, replace=False))]
    if len(frames) < cfg.k:
        raise KoeInputError(f"{cfg.manifest}: only {len(frames)} frames could be featurised, fewer than k={cfg.k}")
    if cfg.quantizer == "classes":
        return _fit_classes(cfg, feats, frames)
    km = fit_kmeans(frames, cfg.k, cfg.iterations, cfg.seed, cfg.max_points_per_centroid, cfg.init, cfg.nredo)
    centroids = torch.from_numpy(km.centroids)
    sample_labels = assign_units(torch.from_numpy(frames), centroids).numpy()
    sequences = [dedup_units(assign_units(torch.from_numpy(f), centroids).numpy(), cfg.min_run_frames) for f in feats]
    return Fitted(km.centroids, cfg.k, sequences, {"num_frames": len(frames), "inertia": km.inertia},
                  {"frames_used": len(frames), "kmeans_points": km.num_points, "inertia": km.inertia,
                   "inertia_per_frame": km.inertia / len(frames), "kmeans_objective": km.objective,
                   **codebook_usage(sample_labels, cfg.k)})


def _fit_classes(cfg: FitConfig, feats: list[np.ndarray], frames: np.ndarray) -> Fitted:
    """One unit per posterior class: identity centroids, since the nearest one-hot vector to a posterior is its
    argmax (|p - e_i|^2 = |p|^2 - 2 p_i + 1). Nothing is fitted; the sample only reports codebook usage."""
    num_units = frames.shape[1]
    sequences = [dedup_units(f.argmax(1), cfg.min_run_frames) for f in feats]
    return Fitted(np.eye(num_units, dtype=np.float32), num_units, sequences,
                  {"num_frames": len(frames), "quantizer": "classes"},
                  {"frames_used": len(frames), **codebook_usage(frames.argmax(1), num_units)})


def _fit_syllables(cfg: FitConfig, feats: list[np.ndarray], extractor: FeatureExtractor) -> Fitted:
    """Segment every featurised utterance, cluster the segments' mean features (k-means [+ Ward])."""
    import torch

    from koe.units.segment import SegmentParams, segment_features
    from koe.units.syllables import fit_syllable_codebook, syllable_tokens

    params = SegmentParams(method=cfg.segmentation, **dataclasses.asdict(cfg.syllables))
    rate = extractor.spec.frame_rate_hz
    n_mels = extractor.spec.params.get("n_mels", 40)
    cut = [segment_features(f, extractor.spec.backend, rate, params, n_mels)
           for f in progress(feats, desc=f"{STAGE}: segment", unit="utt")]
    pooled = np.concatenate([p for _, p in cut])
    if len(pooled) < cfg.k:
        raise KoeInputError(f"{cfg.manifest}: only {len(pooled)} segments were found, fewer than k={cfg.k}")
    centroids, km = fit_syllable_codebook(pooled, cfg.k, cfg.reduce_to, cfg.iterations, cfg.seed,
                                          cfg.max_points_per_centroid, cfg.init, cfg.nredo)
    num_units = len(centroids)
    labels = assign_units(torch.from_numpy(pooled), torch.from_numpy(centroids)).numpy()
    per_utt = np.split(labels, np.cumsum([len(p) for _, p in cut])[:-1])
    sequences = [syllable_tokens(segs, lab, len(f)) for (segs, _), lab, f in zip(cut, per_utt, feats, strict=True)]
    lengths = np.concatenate([segs[:, 1] - segs[:, 0] for segs, _ in cut]) / rate
    seconds = sum(len(f) for f in feats) / rate
    return Fitted(centroids, num_units, sequences,
                  {"num_segments": len(pooled), "kmeans_k": cfg.k, "reduce_to": cfg.reduce_to,
                   "inertia": km.inertia},
                  {"segments": len(pooled), "tokens_per_s": round(len(pooled) / seconds, 3),
                   "segment_s": {"mean": round(float(lengths.mean()), 4),
                                 "p5": round(float(np.percentile(lengths, 5)), 4),
                                 "p95": round(float(np.percentile(lengths, 95)), 4)},
                   "speech_fraction": round(float(lengths.sum()) / seconds, 4),
                   "kmeans_points": km.num_points, "inertia": km.inertia, **codebook_usage(labels, num_units)},
                  segmentation=params.to_dict())


def _collect_features(cfg: FitConfig, utts: list, extractor: FeatureExtractor,
                      report: StageReport) -> tuple[list[np.ndarray], list[str]]:
    """Features of utterances in seeded random order until max_frames; failures listed, not fatal."""
    order = [utts[i] for i in rng_for(cfg.seed, "fit-order").permutation(len(utts))]
    groups = duration_groups(order, cfg.batch_s, sort=False)  # extract() sorts each group by length
    feats: list[np.ndarray] = []
    ids: list[str] = []
    num_frames = 0
    loaded_groups = iter_loaded(order, groups, Path(cfg.manifest).parent, cfg.max_duration_s, threads=4)
    for loaded, _ in progress(loaded_groups, desc=STAGE, total=len(groups), unit="batch"):
        report.items_in += len(loaded)
        good, failed = split_loaded(loaded, order)
        report.failures.extend(failed)
        for (i, _), f in zip(good, extractor.extract([w for _, w in good]), strict=True):
            feats.append(f.cpu().numpy())
            num_frames += len(f)
            ids.append(order[i].id)
            report.ok()
        if num_frames >= cfg.max_frames:
            loaded_groups.close()
            break
    if not feats:
        raise KoeInputError(f"{cfg.manifest}: no utterance could be loaded ({len(report.failures)} failed)")
    return feats, ids
