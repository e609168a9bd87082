"""`koe data build`: unit shards + manifest + text corpora -> token shards of four kinds, mixed by token budget.

    koe data build units_dir=out/units manifest=out/manifest.jsonl text=[tiny/text.jsonl] \
        text_tokenizer=train:2000 out_dir=out/data

Steps: read the unit shards and join them to the manifest (split, speaker, word times); read and split the text
corpora; build the vocabulary (text tokenizer + units + markers, saved to out_dir/tokenizer); make a pool of
documents per split and kind (text-only, speech-only, interleaved with `num_epochs_variants` draws per train
utterance, paired speech-then-transcript); draw from the pools by token weights; write shards, meta.json,
token_stats.png and the summary.
Formats and rules: docs/sequences.md.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from koe.config import save_config, to_dict
from koe.corpus.manifest import Utterance, read_manifest
from koe.corpus.text import TextItem
from koe.data.config import BuildConfig
from koe.data.documents import Doc, render, split_segments
from koe.data.interleave import Segment, align_units, choose_speech_words, interleaved_segments
from koe.data.mixture import mix_pools, realised_weights
from koe.data.plot import plot_token_stats
from koe.data.shards import (
    INTERLEAVED,
    KINDS,
    PAIRED,
    SPEECH,
    SPEECH_ONLY,
    TEXT,
    TEXT_ONLY,
    TOKENIZER_DIR,
    DataMeta,
    TokenShardWriter,
    write_data_meta,
)
from koe.data.sources import load_text_tokenizer, read_text_corpus, text_split
from koe.data.speech_tokens import SpeechTokens, check_unit_tokenizer, write_speech_vocab
from koe.data.vocab import SpeechVocab, extend_tokenizer, unit_token, units_only_tokenizer
from koe.data.words import training_text_words, write_text_vocab
from koe.seed import rng_for
from koe.stage import KoeInputError, StageReport, done_key, mark_done, progress, skip_if_done

SPLITS = ("train", "valid")
KIND_IDS = {"text": TEXT_ONLY, "speech": SPEECH_ONLY, "interleaved": INTERLEAVED, "paired": PAIRED}


@dataclasses.dataclass
class SpeechUtt:
    """One encoded utterance joined to its manifest line: its dedup units and, once the vocabulary exists, its model
    token ids with their frames (`SpeechTokens.from_units`: BPE applied when the unit tokenizer has it)."""

    utt: Utterance
    units: np.ndarray
    durations: np.ndarray
    tokens: np.ndarray | None = None


def run_build(cfg: BuildConfig) -> StageReport:
    out = Path(cfg.out_dir)
    report = StageReport("data build", out)
    key = done_key({k: v for k, v in to_dict(cfg).items() if k != "force"}, build_inputs(cfg))
    if (earlier := skip_if_done("data build", out, key, cfg.force, outputs=[out / "meta.json"])) is not None:
        return earlier
    for split in SPLITS:
        for old in (out / split).glob("shard-*.npz"):
            old.unlink()  # a smaller rebuild must not leave stale shards behind
    save_config(cfg, out)
    counts: Counter = Counter()
    unit_tok, units_meta = _unit_tokenizer(cfg)
    speech = _load_speech(cfg, unit_tok.num_units, report, counts)
    texts = _load_text(cfg, report, counts)
    tokenizer, vocab = _make_vocab(cfg, unit_tok, speech, texts)
    tokenizer.save_pretrained(str(out / TOKENIZER_DIR))
    write_speech_vocab(unit_tok, out)
    speech = _speech_tokens(SpeechTokens(vocab, unit_tok), speech, report)
    weights = cfg.mixture.weights()
    pools: dict[str, dict[str, list[Doc]]] = {s: {k: [] for k in weights} for s in SPLITS}
    if "text" in weights:
        _text_docs(cfg, tokenizer, vocab, texts, pools, report, counts)
    if "speech" in weights:
        _speech_docs(cfg, vocab, speech, pools, counts)
    if "paired" in weights:
        _paired_docs(cfg, tokenizer, vocab, speech, pools, counts)
    if "interleaved" in weights:
        _interleaved_docs(cfg, tokenizer, vocab, float(units_meta.frame_rate_hz), speech, pools, report, counts)
    elif "speech" in weights or "paired" in weights:
        report.ok(len(speech))  # every utterance went into a speech-only document
    unused = report.items_in - report.items_out - len(report.failures)
    if unused:  # e.g. utterances of a text-only build: not failures, but said rather than silently dropped
        report.extra["inputs_unused_by_mixture"] = unused
    splits, lengths, mixing = {}, {}, {}
    for split in SPLITS:
        splits[split], lengths[split], mixing[split] = _write_split(cfg, vocab, split, pools[split], weights, counts)
    meta = DataMeta(vocab=vocab, splits=splits, seed=cfg.seed, unit_tokenizer_hash=units_meta.tokenizer_hash,
                    config=to_dict(cfg))
    write_data_meta(out, meta)
    write_text_vocab(out, training_text_words(weights, (t.text for t in texts["train"]),  # for eval's OOV shares
                                              (s.utt.text for s in speech if s.utt.split == "train" and s.utt.text)))
    plot_token_stats(lengths["train"], splits["train"].tokens_by_kind, out / "token_stats.png")
    report.extra.update(dict(sorted(counts.items())))
    if counts["interleaved_words"]:
        report.extra["interleaved_speech_word_fraction"] = round(
            counts["interleaved_speech_words"] / counts["interleaved_words"], 4)
    for split in SPLITS:
        tokens = {k: sum(v.values()) for k, v in splits[split].tokens_by_kind.items()}
        report.extra[f"{split}_tokens"] = splits[split].num_tokens
        report.extra[f"{split}_tokens_by_kind"] = tokens
        report.extra[f"{split}_tokens_by_modality"] = splits[split].tokens_by_modality
        report.extra[f"{split}_realised_weights"] = realised_weights(tokens)
        report.extra[f"{split}_mixture"] = mixing[split]
    report.extra["vocab"] = vocab.to_dict()
    mark_done(out, key)
    return report.finish()


def build_inputs(cfg: BuildConfig) -> list[str]:
    """The files a build reads, for its done key: unit shards and their meta, the manifest, and text corpora given
    as paths, and a text tokenizer given as a local folder (tinyspeech:N is fixed by the config; hub ids and hf:
    datasets are identified by their names only)."""
    texts = [t for t in cfg.text if not t.startswith(("tinyspeech:", "hf:"))]
    tokenizer = [cfg.text_tokenizer] if Path(cfg.text_tokenizer).is_dir() else []
    return [p for p in (cfg.units_dir, cfg.manifest, *texts, *tokenizer) if p]


def _unit_tokenizer(cfg: BuildConfig):
    """The unit tokenizer the shards were encoded with: `unit_tokenizer=`, else the dir their meta.json records
    (as written there, no guessing); its content hash must be the shards'. It fixes the unit vocabulary and BPE."""
    from koe.units.shards import META_FILE, load_units_meta
    from koe.units.tokenizer import SPEC_FILE, UnitTokenizer

    units_meta = load_units_meta(cfg.units_dir)
    path = Path(cfg.unit_tokenizer or units_meta.tokenizer_dir)
    if not (path / SPEC_FILE).exists():
        where = "unit_tokenizer=" if cfg.unit_tokenizer else f"{Path(cfg.units_dir) / META_FILE}"
        raise KoeInputError(f"no-unit-tokenizer: {path} (from {where}) holds no {SPEC_FILE}; the shards were encoded "
                            f"with unit tokenizer {units_meta.tokenizer_hash}: pass unit_tokenizer=DIR with that "
                            "tokenizer (a relative path in meta.json is relative to where `koe units encode` ran)")
    tok = UnitTokenizer.load(path)
    check_unit_tokenizer(units_meta.tokenizer_hash, tok, Path(cfg.units_dir) / META_FILE)
    return tok, units_meta


def _load_speech(cfg: BuildConfig, num_units: int, report: StageReport, counts: Counter) -> list[SpeechUtt]:
    from koe.units.shards import read_unit_shards

    if not cfg.manifest:
        return []
    manifest = {u.id: u for u in read_manifest(cfg.manifest)}
    speech, seen = [], set()
    for rec in progress(read_unit_shards(cfg.units_dir), desc="data build: units", unit="utt"):
        report.items_in += 1
        utt = manifest.get(rec.id)
        if utt is None:
            report.fail(rec.id, f"unknown-utterance: {cfg.units_dir}: {rec.id} is not in {cfg.manifest}",
                        path=cfg.units_dir)
            continue
        seen.add(rec.id)
        if utt.split not in SPLITS:
            counts[f"utterances_{utt.split}_excluded"] += 1
            continue
        units = np.asarray(rec.units, dtype=np.int64)
        if len(units) == 0 or units.min() < 0 or units.max() >= num_units:
            report.fail(rec.id, f"bad-units: {cfg.units_dir}: {rec.id} has {len(units)} units, expected 1 or more "
                        f"in [0, {num_units})", path=cfg.units_dir)
            continue
        speech.append(SpeechUtt(utt, units, np.asarray(rec.durations, dtype=np.int64)))
    counts["utterances_without_units"] = sum(1 for i in manifest if i not in seen)
    return speech


def _speech_tokens(speech_tokens: SpeechTokens, speech: list[SpeechUtt], report: StageReport) -> list[SpeechUtt]:
    """Every utterance's model token ids, through the one units -> ids function (eval and generate use it too)."""
    kept = []
    for s in speech:
        try:
            s.tokens, s.durations = speech_tokens.from_units(s.units, s.durations)
        except ValueError as e:
            report.fail(s.utt.id, f"bad-units: {s.utt.id}: {e}")
            continue
        kept.append(s)
    return kept


def _load_text(cfg: BuildConfig, report: StageReport, counts: Counter) -> dict[str, list[TextItem]]:
    texts: dict[str, list[TextItem]] = {s: [] for s in SPLITS}
    if "text" not in cfg.mixture.weights() and not cfg.text_tokenizer.startswith("train:"):
        return texts
    for source in cfg.text:
        try:
            items = read_text_corpus(source, cfg.text_column)
        except KoeInputError as e:
            report.fail(source, str(e), path=source)
            continue
        for item in items:
            report.items_in += 1
            split = text_split(item, cfg.text_valid_fraction, cfg.seed)
            if split is None:
                counts["text_items_test_excluded"] += 1
            else:
                texts[split].append(item)
    return texts


def _make_vocab(cfg: BuildConfig, unit_tok, speech: list[SpeechUtt], texts: dict[str, list[TextItem]]):
    num_units, num_bpe = unit_tok.num_units, unit_tok.vocab_size - unit_tok.num_units
    training = [i.text for i in texts["train"]]
    training += [s.utt.text or " ".join(w for w, _, _ in s.utt.words or []) for s in speech if s.utt.split == "train"]
    tokenizer = load_text_tokenizer(cfg.text_tokenizer, training)
    if tokenizer is None:
        tokenizer = units_only_tokenizer(num_units, num_bpe)
        return tokenizer, SpeechVocab.from_tokenizer(tokenizer)
    if unit_token(0) in tokenizer.get_vocab():
        # a koe tokenizer from an earlier build (e.g. the text LM's): reuse it if its units match these shards
        vocab = SpeechVocab.from_tokenizer(tokenizer)
        if (vocab.num_units, vocab.num_bpe_units) != (num_units, num_bpe):
            raise KoeInputError(
                f"text-tokenizer: {cfg.text_tokenizer} holds {vocab.num_units}+{vocab.num_bpe_units} unit tokens, "
                f"but {cfg.units_dir} has {num_units}+{num_bpe}"
            )
        return tokenizer, vocab
    return tokenizer, extend_tokenizer(tokenizer, num_units, num_bpe)


def _encoder(tokenizer):
    return lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"]


def _add(pool: list[Doc], segments: list[Segment], cfg: BuildConfig, vocab: SpeechVocab, counts: Counter) -> None:
    pieces, cut = split_segments(segments, cfg.max_seq_len)
    counts["spans_cut"] += cut
    counts["documents_split"] += len(pieces) > 1
    pool.extend(render(p, vocab) for p in pieces)


def _text_docs(cfg, tokenizer, vocab, texts, pools, report, counts) -> None:
    encode = _encoder(tokenizer)
    for split in SPLITS:
        items = texts[split]
        for start in progress(range(0, len(items), 512), desc=f"data build: text {split}", unit="batch"):
            batch = items[start:start + 512]
            for item, ids in zip(batch, encode([cfg.text_span_prefix + i.text for i in batch]), strict=True):
                if not item.text.strip():
                    report.fail(item.id, f"empty-text: text item {item.id} has no text")
                    continue
                report.ok()
                _add(pools[split]["text"], [Segment(TEXT, 0, 0, np.asarray(ids))], cfg, vocab, counts)


def _speech_docs(cfg, vocab, speech: list[SpeechUtt], pools, counts) -> None:
    """Speech-only documents: `speech_utts_per_doc` consecutive utterances of one speaker (by id) joined."""
    by_speaker: dict[tuple[str, str], list[SpeechUtt]] = defaultdict(list)
    for s in speech:
        by_speaker[(s.utt.split, s.utt.speaker)].append(s)
    for (split, _), group in sorted(by_speaker.items()):
        group.sort(key=lambda s: s.utt.id)
        for i in range(0, len(group), cfg.speech_utts_per_doc):
            tokens = np.concatenate([s.tokens for s in group[i:i + cfg.speech_utts_per_doc]])
            _add(pools[split]["speech"], [Segment(SPEECH, 0, 0, tokens)], cfg, vocab, counts)


def _paired_docs(cfg, tokenizer, vocab, speech: list[SpeechUtt], pools, counts) -> None:
    """Paired documents: an utterance's units, then its words as text (`<speech> units <text> words</s>`), the
    ASR-style pairing that ties each spoken word to its written form more directly than word-level interleaving.
    Needs no alignment: the words are the manifest's word spans (silences dropped), else its `text`; utterances with
    neither are counted (`paired_without_words`)."""
    silence = set(cfg.silence_words)
    with_words = [(s, [w for w, _, _ in s.utt.words or [] if w not in silence] or (s.utt.text or "").split())
                  for s in speech]
    with_words = [(s, words) for s, words in with_words if words]
    counts["paired_without_words"] += len(speech) - len(with_words)
    encode = _encoder(tokenizer)
    texts = encode([cfg.text_span_prefix + " ".join(words) for _, words in with_words]) if with_words else []
    for (s, _), text in zip(with_words, texts, strict=True):
        segments = [Segment(SPEECH, 0, 0, s.tokens), Segment(TEXT, 0, 0, np.asarray(text, np.int64))]
        _add(pools[s.utt.split]["paired"], segments, cfg, vocab, counts)


def _interleaved_docs(cfg, tokenizer, vocab, frame_rate: float, speech: list[SpeechUtt], pools, report,
                      counts) -> None:
    encode = _encoder(tokenizer)
    silence = set(cfg.silence_words)
    for s in progress(speech, desc="data build: interleave", unit="utt"):
        spans = [w for w in s.utt.words or [] if w[0] not in silence]
        aligned = align_units(s.durations, spans, frame_rate, cfg.unaligned_units) if spans else None
        if aligned is None or not aligned.speakable.any():
            counts["utterances_unaligned"] += 1  # no words, or no word holds a unit: nothing to interleave
            if cfg.no_alignment == "fail":
                report.fail(s.utt.id, f"no-alignment: {cfg.manifest}: {s.utt.id} has no word holding a unit")
            continue
        for name in ("units_leading", "units_inner", "units_trailing", "units_dropped"):
            counts[name] += getattr(aligned, name)
        counts["words_forced_text"] += int((~aligned.speakable).sum())
        epochs = cfg.num_epochs_variants if s.utt.split == "train" else 1
        for epoch in range(epochs):
            rng = rng_for(cfg.seed, s.utt.id, epoch)
            mask = choose_speech_words(aligned.num_words, cfg.interleave_method, cfg.speech_fraction,
                                       cfg.poisson_lambda, rng, speakable=aligned.speakable, words=aligned.words)
            segments = interleaved_segments(aligned, s.tokens, mask, encode, cfg.text_span_prefix)
            counts["interleaved_words"] += aligned.num_words
            counts["interleaved_speech_words"] += int(mask.sum())
            counts["interleaved_speech_spans"] += sum(seg.modality == SPEECH for seg in segments)
            _add(pools[s.utt.split]["interleaved"], segments, cfg, vocab, counts)
        report.ok()


def _write_split(cfg, vocab, split, pools, weights, counts):
    """Mix this split's pools and write its shards. Valid drops kinds it has no documents of, and never repeats."""
    rng = rng_for(cfg.seed, "mixture", split)
    if split == "train":
        chosen, info = mix_pools(pools, weights, rng, cfg.mixture.fill, cfg.mixture.budget_tokens)
    else:
        present = {k: w for k, w in weights.items() if pools[k]}
        counts["valid_kinds_missing"] = len(weights) - len(present)
        total = sum(present.values())
        chosen, info = mix_pools(pools, {k: w / total for k, w in present.items()}, rng) if present else ([], {})
    lengths: dict[str, list[int]] = {k: [] for k in KINDS}
    with TokenShardWriter(cfg.out_dir, split, vocab.eos_id, cfg.shard_tokens) as writer:
        for kind, doc in progress(chosen, desc=f"data build: write {split}", unit="doc"):
            writer.add(doc.tokens, doc.modality, KIND_IDS[kind])
            lengths[kind].append(len(doc))
    return writer.stats, lengths, info
