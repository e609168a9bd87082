"""Supervised phonetic units: min-run dedup, the phone classifier stage, `quantizer=classes`, encode round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from koe.corpus.manifest import Utterance, write_manifest
from koe.stage import KoeInputError
from koe.units.config import FitConfig, PhoneticConfig
from koe.units.phonetic import SILENCE, phone_class
from koe.units.tokenizer import UnitTokenizer, dedup_units

SR = 16000
TONES = {"a": 300.0, "i": 700.0, "u": 1500.0}  # "phones" the classifier must tell apart


def tone_utterance(labels: list[str], seed: int, tone_s: float = 0.2, gap_s: float = 0.1):
    """Tones separated by silences, with their [label, start_s, end_s] spans as phones."""
    rng = np.random.default_rng(seed)
    parts, phones, t = [np.zeros(int(gap_s * SR))], [], gap_s
    for label in labels:
        n = int(tone_s * SR)
        parts += [0.4 * np.sin(2 * np.pi * TONES[label] * np.arange(n) / SR), np.zeros(int(gap_s * SR))]
        phones.append([label, round(t, 4), round(t + tone_s, 4)])
        t += tone_s + gap_s
    wav = np.concatenate(parts) + 0.005 * rng.standard_normal(sum(map(len, parts)))
    return wav.astype(np.float32), phones


def write_tones(root: Path, n: int, with_phones: bool = True) -> Path:
    rng = np.random.default_rng(7)
    utts = []
    for i in range(n):
        labels = list(rng.choice(list(TONES), size=4))
        wav, phones = tone_utterance(labels, seed=i)
        sf.write(root / f"u{i}.wav", wav, SR)
        utts.append(Utterance(id=f"u{i}", audio_path=f"u{i}.wav", sample_rate_hz=SR, duration_s=len(wav) / SR,
                              phones=phones if with_phones or i else None, split="train"))
    write_manifest(root / "manifest.jsonl", utts)
    return root / "manifest.jsonl"


def test_dedup_min_run_gives_flicker_to_the_unit_before():
    frames = np.array([5, 5, 5, 1, 5, 5, 5, 2, 2, 2, 2, 7])
    units, durations = dedup_units(frames, min_run_frames=3)
    assert units.tolist() == [5, 2] and durations.tolist() == [7, 5]
    units, durations = dedup_units(np.array([3, 4, 4, 4, 9, 9, 9]), min_run_frames=3)  # leading flicker
    assert units.tolist() == [4, 9] and durations.tolist() == [4, 3]
    units, durations = dedup_units(np.array([1, 2]), min_run_frames=3)  # nothing long enough: plain dedup
    assert units.tolist() == [1, 2] and durations.tolist() == [1, 1]
    assert dedup_units(frames)[0].tolist() == [5, 1, 5, 2, 7]


def test_phone_class_drops_stress_and_unifies_silence():
    assert phone_class("'eI") == "eI" and phone_class(",n") == "n" and phone_class("AH0") == "AH"
    assert phone_class("sil") == SILENCE and phone_class("SIL") == SILENCE and phone_class("3:") == "3:"


def test_classes_quantizer_needs_phonetic_features(tmp_path):
    problems = FitConfig(manifest=tmp_path, out_dir=tmp_path, features="mel", quantizer="classes").validate()
    assert any("quantizer=classes" in p for p in problems)
    assert not FitConfig(manifest=tmp_path, out_dir=tmp_path, features="phonetic:x", quantizer="classes").validate()


@pytest.fixture(scope="module")
def phonetic_dir(tmp_path_factory) -> Path:
    from koe.units.phonetic_training import run_train_phonetic

    root = tmp_path_factory.mktemp("tones")
    manifest = write_tones(root, 12, with_phones=False)  # u0 has no phones: listed, the rest train
    report = run_train_phonetic(PhoneticConfig(manifest=manifest, out_dir=root / "phonetic", hidden_size=32,
                                               epochs=30, batch_size=8, window_frames=100, heldout_fraction=0.2,
                                               lr=1e-2, device="cpu"))
    assert [f.item for f in report.failures] == ["u0"] and "no phones" in report.failures[0].reason
    assert report.extra["num_classes"] == 4  # three tones + silence
    return root / "phonetic"


def test_classifier_learns_the_phones(phonetic_dir):
    spec = json.loads((phonetic_dir / "phonetic.json").read_text())
    assert spec["phones"] == [SILENCE, "a", "i", "u"]
    assert spec["heldout_frame_accuracy"] > 0.9
    assert (phonetic_dir / "loss.png").exists() and (phonetic_dir / "metrics.jsonl").read_text().count("\n") >= 1
    held = (phonetic_dir / "heldout_ids.txt").read_text().split()
    assert len(held) == 2 and len(set(held)) == 2 and "u0" not in held  # 20% of the 11 with phones; u0 has none


def test_fit_classes_and_encode_recover_the_phone_sequence(phonetic_dir, tmp_path):
    from koe.units.fit import run_fit

    manifest = write_tones(tmp_path, 4)
    out = tmp_path / "tok"
    report = run_fit(FitConfig(manifest=manifest, out_dir=out, features=f"phonetic:{phonetic_dir}",
                               quantizer="classes", min_run_frames=3, device="cpu"))
    assert report.exit_code == 0 and report.extra["num_units"] == 4
    tok = UnitTokenizer.load(out)
    assert tok.spec.min_run_frames == 3 and tok.spec.features.backend == "phonetic"
    np.testing.assert_array_equal(tok.centroids, np.eye(4, dtype=np.float32))
    labels = ["u", "a", "a", "i", "u"]
    wav, _ = tone_utterance(labels, seed=99)
    units, durations = tok.encode_audio(wav)
    phones = tok.spec.features.params["phones"]
    expected = [SILENCE] + [x for label in labels for x in (label, SILENCE)]
    assert [phones[u] for u in units] == expected
    assert durations.sum() == tok.extractor.num_frames(len(wav))


def test_phonetic_tokenizer_carries_its_classifier(phonetic_dir, tmp_path):
    import shutil

    from koe.units.fit import run_fit

    manifest = write_tones(tmp_path, 4)
    classifier = shutil.copytree(phonetic_dir, tmp_path / "classifier")
    run_fit(FitConfig(manifest=manifest, out_dir=tmp_path / "tok", features=f"phonetic:{classifier}",
                      quantizer="classes", min_run_frames=3, device="cpu"))
    shutil.rmtree(classifier)
    moved = shutil.move(tmp_path / "tok", tmp_path / "elsewhere")  # the tokenizer alone, somewhere else
    tok = UnitTokenizer.load(moved)
    assert tok.spec.features.source == "phonetic" and (Path(moved) / "phonetic" / "model.safetensors").exists()
    units, _ = tok.encode_audio(tone_utterance(["a", "i"], seed=5)[0])
    phones = tok.spec.features.params["phones"]
    assert [phones[u] for u in units if phones[u] != SILENCE] == ["a", "i"]


def test_normalisation_ignores_digital_silence(phonetic_dir):
    import math

    import torch

    from koe.units.features import MEL_PARAMS, SpectralExtractor
    from koe.units.phonetic import normalize_utterance

    wav, _ = tone_utterance(["a", "i", "u"], seed=3)
    padded = np.concatenate([np.zeros(SR // 2, np.float32), wav, np.zeros(SR // 2, np.float32)])
    mel = SpectralExtractor("mel", torch.device("cpu"), 160.0)
    plain, pad = (mel.extract([w])[0] for w in (wav, padded))
    floor = math.log(MEL_PARAMS["log_floor"])

    def moved(log_floor: float | None) -> float:  # how far padding moves the normalised features of the speech
        return float((normalize_utterance(pad, log_floor)[50:50 + len(plain)]
                      - normalize_utterance(plain, log_floor)).abs().mean())

    assert moved(floor) < 0.05 and moved(None) > 0.5  # all-frame statistics follow the amount of padding
    spec = json.loads((phonetic_dir / "phonetic.json").read_text())
    assert spec["normalization"] == "utterance_above_floor"


def test_retrained_classifier_is_refused(phonetic_dir, tmp_path):
    import shutil

    copy = tmp_path / "phonetic"
    shutil.copytree(phonetic_dir, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    from koe.units.phonetic import load_classifier

    with pytest.raises(KoeInputError, match="weights do not match"):
        load_classifier(copy)
