"""CPU end to end (device=cpu): random tiny Whisper encoder + 2-layer Llama saved to disk -> align -> sft -> t2c ->
echo -> eval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from s2t_fixtures import save_llm, tone

from koe.config import load_config
from koe.echox import evaluate
from koe.echox.data import QARecord
from koe.echox.evaluate import EchoxEvalConfig, run_echox_eval
from koe.echox.train import EchoConfig, T2CConfig, run_echo_train, run_t2c_train
from koe.echox.unit_language import UnitLanguage
from koe.s2t.init import EncoderInitConfig, run_encoder_init
from koe.s2t.loop import default_optim
from koe.s2t.train import S2TTrainConfig, run_s2t_train

FACTS = [("randira", "felane", "text_and_speech"), ("moro", "tasi", "text_and_speech"),
         ("tasi", "moro", "text_only")]


def _qa(tmp_path):
    wav = tmp_path / "wav"
    wav.mkdir()
    recs = []
    for k, (subj, ans, split) in enumerate(FACTS):
        for role, voice in (("train", "a"), ("eval", "b")):
            q, a = wav / f"{k}{voice}q.wav", wav / f"{k}{voice}a.wav"
            sf.write(q, tone(1.0, 200 + 40 * k), 16_000)
            sf.write(a, tone(1.2, 300 + 40 * k), 16_000)
            units = [int(u) for u in np.random.default_rng(k).integers(0, 12, 20)]
            recs.append(QARecord(f"{k}{voice}", f"f{k}", split, role if split != "text_only" or role == "eval"
                                 else "eval", voice, f"what is the capital of {subj} ?", str(q),
                                 f"the capital of {subj} is {ans} .", ans, ["felane", "tasi", "moro", "randira"],
                                 str(a), units))
    # bad inputs: each must be listed, never crash the run
    sf.write(wav / "8k.wav", tone(1.0, sr=8_000), 8_000)
    sf.write(wav / "silent.wav", np.zeros(16_000, np.float32), 16_000)
    sf.write(wav / "long.wav", tone(6.0), 16_000)
    for name in ("8k", "silent", "long"):
        recs.append(QARecord(name, "f0", "text_and_speech", "train", "a", "what is the capital of randira ?",
                             str(wav / f"{name}.wav"), "the capital of randira is felane .", "felane",
                             ["felane", "tasi", "moro", "randira"], str(wav / "0aa.wav"), [1, 2, 3]))
    sf.write(wav / "long_eval.wav", tone(4.5), 16_000)  # fits no 4 s encoder window: listed by eval per system
    recs.append(QARecord("long_eval", "f0", "text_and_speech", "eval", "b", "what is the capital of randira ?",
                         str(wav / "long_eval.wav"), "the capital of randira is felane .", "felane",
                         ["felane", "tasi", "moro", "randira"], str(wav / "0ba.wav"), [1, 2, 3]))
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in recs))
    return path


def _vocoder(path):
    from koe.vocoder import UnitVocoder

    v = UnitVocoder(12, 50.0, hidden_size=16, num_layers=1)
    v.mean_duration_frames = [3.0] * 12
    v.save(path)
    import json as _json

    meta = _json.loads((path / "vocoder.json").read_text())
    meta["mean_duration_frames"] = [3.0] * 12
    (path / "vocoder.json").write_text(_json.dumps(meta))
    return path


@pytest.mark.slow
def test_echox_end_to_end_on_cpu(tmp_path, monkeypatch):
    qa = _qa(tmp_path)
    llm = save_llm(tmp_path / "llm")
    run_encoder_init(EncoderInitConfig(out_dir=tmp_path / "enc", d_model=32, layers=1, heads=2, max_audio_s=4))
    a = run_s2t_train(load_config(S2TTrainConfig, None, [f"qa={qa}", f"out_dir={tmp_path / 'align'}",
                                                          f"encoder={tmp_path / 'enc'}", f"llm={llm}",
                                                          "freeze_encoder=false", "steps=4", "batch_size=2"]))
    reasons = sorted(f.reason.split(":")[0] for f in a.failures)
    assert reasons == ["silent", "too-long", "wrong-sample-rate"]
    assert (a.items_in, a.items_out) == (5, 2)  # 2 good training questions + the 3 bad ones
    assert (tmp_path / "align/final/encoder/config.json").exists()
    s = run_s2t_train(S2TTrainConfig(qa=qa, out_dir=tmp_path / "sft", stage="sft", init=str(tmp_path / "align/final"),
                                     steps=40, batch_size=2, text_fraction=0.5, optim=default_optim(3e-3)))
    assert s.extra["text_examples"] == 3 and s.extra["speech_examples"] == 2
    t = run_t2c_train(T2CConfig(qa=qa, s2t=tmp_path / "sft/final", out_dir=tmp_path / "t2c", unit_vocab=20,
                                hidden_size=16, num_layers=1, steps=40, batch_size=2, optim=default_optim(5e-3)))
    stats = t.extra["unit_language"]
    assert stats["vocab_size"] > 12 and stats["tokens_per_item"] < stats["units_per_item"]
    ul = UnitLanguage.load(tmp_path / "t2c/final")
    units = [1, 5, 7, 5, 7, 2]
    assert ul.undo(ul.encode(units)) == units
    e = run_echo_train(EchoConfig(qa=qa, s2t=tmp_path / "sft/final", t2c=tmp_path / "t2c/final",
                                  out_dir=tmp_path / "echo", steps=3, batch_size=2, max_units=10, lora_rank=2,
                                  device="cpu"))
    metrics = [json.loads(x) for x in (tmp_path / "echo/metrics.jsonl").read_text().splitlines()]
    assert e.items_out == 2  # both good training questions got pseudo labels (x', Y')
    assert len(metrics) == 3 and {"l_s2t", "l_unit", "l_den", "w"} <= set(metrics[0])
    assert 0 < metrics[0]["w"] <= 1
    systems = {"s2t_only": {"s2t": str(tmp_path / "sft/final")},
               "s2t_t2c": {"s2t": str(tmp_path / "sft/final"), "t2c": str(tmp_path / "t2c/final")}}
    systems["echox"] = {"echo": str(tmp_path / "echo/final")}
    r = run_echox_eval(EchoxEvalConfig(qa=qa, vocoder=_vocoder(tmp_path / "voc"), out_dir=tmp_path / "eval",
                                       systems=systems, device="cpu"))
    assert r.items_out == 4 * len(systems)  # 4 eval questions (voice b; the text_only fact in both)
    assert sorted(f.item for f in r.failures) == sorted(f"{name}:long_eval" for name in systems)
    written = json.loads((tmp_path / "eval/results.json").read_text())
    res = written["summary"]
    assert res["s2t_only"]["speech_out"] is None and res["s2t_t2c"]["first_audio_ms"] > 0
    assert "| s2t_t2c |" in (tmp_path / "eval/results.md").read_text()
    assert written["systems_pending"] == []

    # the same systems evaluated in parallel processes give the same answers
    run_echox_eval(EchoxEvalConfig(qa=qa, vocoder=tmp_path / "voc", out_dir=tmp_path / "par", systems=systems,
                                   device="cpu", num_workers=2))
    parallel = json.loads((tmp_path / "par/results.json").read_text())
    assert list(parallel["summary"]) == list(systems) and parallel["systems_pending"] == []
    timing = {"first_audio_ms"}
    for name in systems:
        assert ([{k: v for k, v in row.items() if k not in timing} for row in parallel["items"][name]]
                == [{k: v for k, v in row.items() if k not in timing} for row in written["items"][name]])
    assert sorted(p.name for p in (tmp_path / "par/wavs").iterdir()) == ["echox", "s2t_t2c"]

    # a run cut short after its first system (a lost GPU) keeps that system's results and names the rest
    load_system, loaded = evaluate._load_system, []

    def load_then_lose_the_device(spec, device):
        loaded.append(spec)
        if len(loaded) == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return load_system(spec, device)

    monkeypatch.setattr(evaluate, "_load_system", load_then_lose_the_device)
    with pytest.raises(RuntimeError, match="CUDA error"):
        run_echox_eval(EchoxEvalConfig(qa=qa, vocoder=tmp_path / "voc", out_dir=tmp_path / "cut", systems=systems,
                                       device="cpu"))
    cut = json.loads((tmp_path / "cut/results.json").read_text())
    assert list(cut["summary"]) == ["s2t_only"] and cut["systems_pending"] == ["s2t_t2c", "echox"]
    assert "Not evaluated yet: s2t_t2c, echox." in (tmp_path / "cut/results.md").read_text()
