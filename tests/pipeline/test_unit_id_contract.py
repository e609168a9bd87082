"""One contract from audio to model ids (issue 11): fit -> encode -> data build -> train -> eval / bench / generate,
with and without unit BPE. The same utterance gets the same ids from every consumer, the trained model carries its
unit tokenizer, a different tokenizer is refused naming both hashes, and an old model dir loads only when told which
tokenizer to use."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from koe.audio import load_audio
from koe.bench.items import BenchInfo, BenchItem, Side, write_items
from koe.bench.tokens import tokenize_bench
from koe.cli import run_command
from koe.config import load_config
from koe.corpus.manifest import Utterance, write_manifest
from koe.data.shards import load_data_meta, read_token_shards
from koe.data.speech_tokens import SPEECH_VOCAB_FILE, UNIT_TOKENIZER_DIR, read_speech_vocab
from koe.eval.tasks import _Builder
from koe.generate.config import GenerateConfig
from koe.generate.run import generate_one
from koe.model.speech_text_lm import SpeechTextLM
from koe.stage import KoeInputError
from koe.units.shards import read_unit_shards
from koe.units.tokenizer import UnitTokenizer

PITCHES = (220.0, 440.0, 880.0, 1760.0)
K = 8
BPE = 14


def _tones(root: Path, n: int = 8) -> tuple[Path, list[Path]]:
    """n utterances of repeated tone patterns (so a BPE finds merges), each its own speaker."""
    rng = np.random.default_rng(1)
    utts, wavs = [], []
    t = np.arange(int(0.2 * 16000)) / 16000
    for i in range(n):
        pattern = list(rng.choice(PITCHES, size=3)) * 2 + list(rng.choice(PITCHES, size=2))
        wav = np.concatenate([0.5 * np.sin(2 * np.pi * p * t) for p in pattern])
        wav = (wav + 0.01 * rng.standard_normal(len(wav))).astype(np.float32)
        path = root / "wav" / f"utt{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wav, 16000)
        wavs.append(path)
        utts.append(Utterance(id=f"utt{i}", audio_path=str(path), sample_rate_hz=16000, duration_s=len(wav) / 16000,
                              speaker=f"spk{i}", text=f"a tone pattern number {i}", split="train"))
    write_manifest(root / "manifest.jsonl", utts)
    return root / "manifest.jsonl", wavs


def _bench(root: Path, wavs: list[Path]) -> Path:
    items = []
    for i in range(0, len(wavs) - 1, 2):
        sides = []
        for j in (i, i + 1):
            rel = f"audio/v/{wavs[j].name}"
            (root / "audio" / "v").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(wavs[j], root / rel)
            sides.append(Side(None, rel))
        items.append(BenchItem(id=f"p{i}@v", group=f"p{i}", benchmark="b", task="pair", source="s", category="c",
                               voice="v", candidates=sides))
    write_items(root, items, BenchInfo("b", ["pair"], "s", ["v"], len(items), len(items)))
    return root


def _run(command: str, args: list[str]) -> None:
    assert run_command(command, args) == 0, f"koe {command} {args} failed"


@pytest.fixture(scope="module", params=[0, BPE], ids=["no-bpe", "bpe"])
def pipeline(request, tmp_path_factory):
    bpe = request.param
    root = tmp_path_factory.mktemp(f"contract-{bpe}")
    manifest, wavs = _tones(root)
    _run("units fit", [f"manifest={manifest}", f"out_dir={root / 'tok'}", "features=mfcc", f"k={K}",
                       f"bpe_vocab_size={bpe}", "iterations=10", "max_frames=5000", "device=cpu"])
    _run("units encode", [f"manifest={manifest}", f"tokenizer={root / 'tok'}", f"out_dir={root / 'units'}",
                          "device=cpu"])
    _run("data build", [f"units_dir={root / 'units'}", f"manifest={manifest}", "text_tokenizer=train:300",
                        f"out_dir={root / 'data'}", "mixture={text: 0, interleaved: 0, speech: 1}",
                        "speech_utts_per_doc=1", "max_seq_len=512"])
    _run("train", [f"data_dir={root / 'data'}", f"out_dir={root / 'train'}", "max_steps=2", "max_seq_len=128",
                   "micro_batch_size=2", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
                   "model.num_kv_heads=1", "model.intermediate_size=64", "tensorboard=false", "compile=false"])
    return {"root": root, "bpe": bpe, "wavs": wavs, "tok": UnitTokenizer.load(root / "tok"),
            "model": root / "train" / "final", "bench": _bench(root / "bench", wavs)}


def test_every_model_dir_carries_the_unit_tokenizer(pipeline):
    h = pipeline["tok"].content_hash
    dirs = [pipeline["root"] / "data", pipeline["model"], *(pipeline["root"] / "train" / "checkpoints").glob("step-*")]
    assert len(dirs) >= 3
    for d in dirs:
        assert read_speech_vocab(d)["unit_tokenizer_hash"] == h, d
        assert UnitTokenizer.load(d / UNIT_TOKENIZER_DIR).content_hash == h
    assert load_data_meta(pipeline["root"] / "data").unit_tokenizer_hash == h


def test_the_same_utterance_gets_the_same_ids_in_every_consumer(pipeline):
    tok, wavs = pipeline["tok"], pipeline["wavs"]
    lm = SpeechTextLM.load(pipeline["model"], device="cpu")
    assert lm.unit_tokenizer.content_hash == tok.content_hash
    v = lm.vocab
    # data build: one speech-only document per utterance, [<speech>, ids..., eos]
    docs = sorted(tuple(d.tokens.tolist()) for d in read_token_shards(pipeline["root"] / "data", "train"))
    # generate: the prompt it builds for task=continue
    prompts = []
    real_generate = lm.generate
    lm.generate = lambda prefix, *a, **k: (prompts.append(list(prefix)), real_generate(prefix, *a, **k))[1]
    cfg = load_config(GenerateConfig, None, [f"model={pipeline['model']}", "task=continue", "max_new_tokens=3",
                                             "temperature=0"])
    for w in wavs:
        with contextlib.suppress(KoeInputError):  # an untrained model may stop at once; the prompt is what counts
            generate_one(lm, cfg, str(w), torch.Generator().manual_seed(0))
    # bench cache + eval's request builder
    cached, _ = tokenize_bench(pipeline["bench"], lm.unit_tokenizer)
    builder = _Builder(lm, cached)
    for i, w in enumerate(wavs):
        ids = lm.audio_ids(load_audio(w))
        assert prompts[i] == [v.speech_marker_id, *ids]
        assert builder.part(Side(None, f"audio/v/{w.name}"), "speech", False) == ids
        assert lm.speech_ids(cached[f"audio/v/{w.name}"]) == ids
    assert docs == sorted((v.speech_marker_id, *lm.audio_ids(load_audio(w)), v.eos_id) for w in wavs)
    # the shards hold dedup units; with BPE off the ids are exactly units + offset (what data build always wrote),
    # with BPE on merged pieces occur and decode back to the shard's units
    for rec in read_unit_shards(pipeline["root"] / "units"):
        w = next(p for p in wavs if p.stem == rec.id)
        ids = np.asarray(lm.audio_ids(load_audio(w)))
        if pipeline["bpe"] == 0:
            assert ids.tolist() == (rec.units.astype(np.int64) + v.unit_offset).tolist()
        assert lm.units(ids.tolist()).tolist() == rec.units.tolist()
    merged = [i for d in docs for i in d if v.unit_offset + K <= i < v.unit_offset + v.total_units]
    assert (len(merged) > 0) == (pipeline["bpe"] > 0)
    assert v.num_bpe_units == max(0, pipeline["bpe"] - K)


def test_eval_and_generate_use_the_models_tokenizer(pipeline, tmp_path):
    out = tmp_path / "eval"
    _run("eval", [str(pipeline["model"]), f"bench=[{pipeline['bench']}]", f"out_dir={out}", "device=cpu",
                  "bootstrap=20", "modalities=[speech]", f"ppl_data={pipeline['root'] / 'data'}", "ppl_split=train"])
    res = json.loads((out / "results.json").read_text())
    assert res["unit_tokenizer_hash"] == pipeline["tok"].content_hash
    assert res["benchmarks"]["b"]["conditions"]["speech"]["num_items"] == 4
    gen = tmp_path / "gen"
    code = run_command("generate", [str(pipeline["model"]), "task=continue", f"prompts=[{pipeline['wavs'][0]}]",
                                    f"out_dir={gen}", "max_new_tokens=20", "temperature=1.0", "device=cpu"])
    summary = json.loads((gen / "generate_summary.json").read_text())
    if code == 0:
        units = json.loads((gen / "sample_000" / "units.json").read_text())
        assert units and all(0 <= u < K for u in units)  # BPE undone before anything reads them
        assert all(a != b for a, b in itertools.pairwise(units))  # repeats merged
    else:  # an untrained model may stop at once: then it is a listed failure, never "1 out, 0 failed"
        assert summary["items_out"] == 0 and "empty-output" in (gen / "generate_failures.jsonl").read_text()


def test_a_different_tokenizer_is_refused_naming_both_hashes(pipeline, tmp_path, capsys):
    other_dir = tmp_path / "other"
    _run("units fit", [f"manifest={pipeline['root'] / 'manifest.jsonl'}", f"out_dir={other_dir}", "features=mfcc",
                       f"k={K}", f"bpe_vocab_size={pipeline['bpe']}", "iterations=10", "max_frames=5000", "seed=7",
                       "device=cpu"])
    ours, other = pipeline["tok"].content_hash, UnitTokenizer.load(other_dir).content_hash
    assert ours != other
    with pytest.raises(KoeInputError, match=f"(?s){other}.*{ours}"):
        SpeechTextLM.load(pipeline["model"], device="cpu", unit_tokenizer=other_dir)
    capsys.readouterr()
    runs = {"eval": [str(pipeline["model"]), f"bench=[{pipeline['bench']}]", f"out_dir={tmp_path / 'e'}", "device=cpu"],
            "generate": [str(pipeline["model"]), "task=continue", f"prompts=[{pipeline['wavs'][0]}]",
                         f"out_dir={tmp_path / 'g'}", "device=cpu"],
            "bench build": [f"model={pipeline['model']}", "tinyspeech=false", f"out_dir={tmp_path / 'b'}"]}
    for command, args in runs.items():
        code = run_command(command, [*args, f"unit_tokenizer={other_dir}"])
        err = capsys.readouterr().err
        assert code == 2 and "tokenizer-mismatch" in err and ours in err and other in err, (command, err)


def test_an_old_model_dir_loads_only_with_an_explicit_unit_tokenizer(pipeline, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(pipeline["model"], old)
    (old / SPEECH_VOCAB_FILE).unlink()
    shutil.rmtree(old / UNIT_TOKENIZER_DIR)
    with pytest.raises(KoeInputError, match="unit_tokenizer=DIR"):
        SpeechTextLM.load(old, device="cpu", require_unit_tokenizer=True)
    assert run_command("eval", [str(old), f"bench=[{pipeline['bench']}]", f"out_dir={tmp_path / 'e1'}",
                                "device=cpu"]) != 0
    _run("eval", [str(old), f"bench=[{pipeline['bench']}]", f"out_dir={tmp_path / 'e2'}", "device=cpu",
                  "bootstrap=20", f"unit_tokenizer={pipeline['root'] / 'tok'}"])
    res = json.loads((tmp_path / "e2" / "results.json").read_text())
    assert res["unit_tokenizer_hash"] == pipeline["tok"].content_hash
    lm_old = SpeechTextLM.load(old, device="cpu", unit_tokenizer=pipeline["root"] / "tok")
    lm_new = SpeechTextLM.load(pipeline["model"], device="cpu")
    wav = load_audio(pipeline["wavs"][0])
    assert lm_old.audio_ids(wav) == lm_new.audio_ids(wav)
