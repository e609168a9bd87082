"""koe sft and koe eval s2s end to end on a 2-layer CPU model, every strategy; resume; bad examples listed."""

from __future__ import annotations

import json

import pytest
from dialogue_helpers import random_vocoder, tiny_model, write_dialogue

from koe.cli import run_command
from koe.config import load_config
from koe.sft.config import SftConfig
from koe.sft.loop import run_sft

STRATEGIES = ["chain_of_modality", "interleaved", "parallel", "text_units", "cascade"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dlg")
    return tiny_model(root / "model"), write_dialogue(root / "data"), random_vocoder(root / "vocoder"), root


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGIES)
def test_sft_then_eval_s2s(setup, name):
    model, examples, vocoder, root = setup
    out = root / f"sft-{name}"
    code = run_command("sft", [f"model={model}", f"examples={examples}", f"out_dir={out}", f"strategy.name={name}",
                               "max_steps=3", "micro_batch_size=4", "text_ratio=0.5", "strategy.delay=1",
                               "strategy.upsample=4", "log_every=1"])
    assert code == 0
    final = out / "final"
    assert (final / "config.json").exists() and json.loads((final / "koe_strategy.json").read_text())["name"] == name
    assert (final / "strategy_modules.safetensors").exists() == (name in ("parallel", "text_units"))
    losses = [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(x > 0 for x in losses)
    ev = root / f"eval-{name}"
    code = run_command("eval s2s", [str(final), f"examples={examples}", f"vocoder={vocoder}", f"out_dir={ev}",
                                    "max_new_tokens=24"])
    res = json.loads((ev / "results.json").read_text())
    assert res["strategy"] == name and res["num"] == 4
    for key in ("qa_text", "qa_speech_text", "qa_speech_speech"):
        assert 0.0 <= res[key] <= 1.0
    answers = [json.loads(x) for x in (ev / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 4
    failures = (ev / "eval_s2s_failures.jsonl").read_text().splitlines()
    silent = [a for a in answers if not a.get("heard")]
    assert len(failures) >= len(silent)  # every answer heard as nothing is listed, never dropped
    assert code == (1 if failures else 0)
    ceiling = res["speech_out_ceiling"]
    assert set(ceiling) == {"espeak_answer", "vocoded_true_units", "espeak_answer_heard", "vocoded_true_units_heard"}
    assert all(v is None or 0.0 <= v <= 1.0 for v in ceiling.values()) and ceiling["espeak_answer"] is not None


@pytest.mark.slow
def test_eval_s2s_workers_give_the_same_answers(setup):
    """Examples split over worker processes come back in order with the same rows (each is seeded by its index)."""
    model, examples, vocoder, root = setup
    out = root / "sft-workers"
    assert run_command("sft", [f"model={model}", f"examples={examples}", f"out_dir={out}", "max_steps=2",
                               "micro_batch_size=4", "strategy.name=interleaved"]) == 0
    answers, wavs = {}, {}
    for workers in (1, 2):
        ev = root / f"eval-workers-{workers}"
        run_command("eval s2s", [str(out / "final"), f"examples={examples}", f"vocoder={vocoder}", f"out_dir={ev}",
                                 "max_new_tokens=24", f"num_workers={workers}"])
        rows = [json.loads(x) for x in (ev / "answers.jsonl").read_text().splitlines()]
        answers[workers] = [{k: v for k, v in row.items() if k != "first_audio_ms"} for row in rows]
        wavs[workers] = sorted(p.name for p in (ev / "wav").iterdir())
    assert len(answers[1]) == 4 and answers[2] == answers[1]
    assert wavs[1] and wavs[2] == wavs[1]


def test_speech_out_ceiling_scores_the_reference_answers_own_audio(tmp_path):
    """The ceiling hears each reference answer's espeak audio with the same closed-set ASR: the right names are
    mostly recognised, swapped ones are not, so the number measures the scorer on the audio, not a constant."""
    import dataclasses

    import soundfile as sf

    from koe.dialogue.asr import Transcriber
    from koe.dialogue.examples import DialogueExample
    from koe.eval.spoken_qa_s2s import speech_out_ceiling
    from koe.synth.espeak import synthesize

    names = ["felane", "bemo", "tarvik", "sunal"]
    examples = []
    for i, name in enumerate(names):
        sf.write(tmp_path / f"{name}.wav", synthesize(name, voice="en-us", rate_wpm=160, pitch=50).audio, 16000)
        examples.append(DialogueExample(f"ex{i}", "tinyspeech", "eval", "speech", "heard", "heldout", "q ?", name,
                                        [name], answer_audio=f"{name}.wav", answer_units=[1, 2, 3]))
    asr = Transcriber(phrases=names)
    right = speech_out_ceiling(examples, tmp_path, asr, None)
    swapped = [dataclasses.replace(ex, references=[names[(i + 1) % 4]]) for i, ex in enumerate(examples)]
    wrong = speech_out_ceiling(swapped, tmp_path, asr, None)
    assert right["espeak_answer"] >= 0.5 and wrong["espeak_answer"] < right["espeak_answer"]
    assert right["vocoded_true_units"] is None  # no vocoder given


def test_sft_resumes_from_checkpoint(setup):
    model, examples, _, root = setup
    out = root / "resume"
    base = [f"model={model}", f"examples={examples}", f"out_dir={out}", "strategy.name=interleaved",
            "micro_batch_size=2", "log_every=1"]
    assert run_command("sft", [*base, "max_steps=2"]) == 0
    report = run_sft(load_config(SftConfig, None, [*base, "max_steps=4", "resume_from=auto"]))
    assert report.extra["steps"] == 4
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_bad_examples_are_listed_and_the_rest_trains(setup, tmp_path):
    model, _, _, _ = setup
    good = write_dialogue(tmp_path / "data", n=2, bad={
        "missing": {"id": "no-audio", "source": "tinyspeech", "split": "train", "modality": "speech",
                    "fact_split": "heard", "voice_split": "seen", "question_text": "who is the king ?",
                    "answer_text": "bemo", "references": ["bemo"], "question_audio": "wav/none.wav",
                    "question_units": [1, 2], "answer_audio": "wav/none2.wav", "answer_units": [3]},
        "empty": {"id": "empty-answer", "source": "tinyspeech", "split": "train", "modality": "text",
                  "fact_split": "heard", "voice_split": "none", "question_text": "who is the king ?",
                  "answer_text": " ", "references": []},
        "long": {"id": "too-long", "source": "tinyspeech", "split": "train", "modality": "speech",
                 "fact_split": "heard", "voice_split": "seen", "question_text": "who is the king ?",
                 "answer_text": "bemo", "references": ["bemo"], "question_audio": "wav/train-0-q.wav",
                 "question_units": [1] * 300, "answer_audio": "wav/train-0-a.wav", "answer_units": [3]},
    })
    out = tmp_path / "sft"
    code = run_command("sft", [f"model={model}", f"examples={good}", f"out_dir={out}", "max_steps=1",
                               "micro_batch_size=2", "max_seq_len=200"])
    assert code == 1
    failures = {json.loads(x)["item"]: json.loads(x)["reason"] for x in
                (out / "sft_failures.jsonl").read_text().splitlines()}
    assert failures.keys() == {"no-audio", "empty-answer", "too-long"}
    assert failures["no-audio"].startswith("missing-audio") and "empty-answer" in failures["empty-answer"]
    assert failures["too-long"].startswith("too-long")
    assert (out / "final" / "config.json").exists()  # the good examples trained


def test_generate_spoken_answer_uses_the_tuned_strategy(setup, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "eval"))
    from dialogue_helpers import NUM_UNITS
    from eval_helpers import tiny_unit_tokenizer

    model, examples, vocoder, _ = setup
    out = tmp_path / "sft"
    assert run_command("sft", [f"model={model}", f"examples={examples}", f"out_dir={out}", "max_steps=1",
                               "micro_batch_size=2", "strategy.name=parallel", "strategy.delay=1"]) == 0
    tok = tiny_unit_tokenizer(tmp_path / "tok", num_units=NUM_UNITS)
    gen = tmp_path / "gen"
    code = run_command("generate", [str(out / "final"), "task=spoken_answer", f"unit_tokenizer={tok}",
                                    f"vocoder={vocoder}", f"out_dir={gen}", "max_new_tokens=12",
                                    f"prompts=[{examples.parent / 'wav' / 'eval-0-q.wav'}]"])
    assert code == 0
    sample = gen / "sample_000"
    assert json.loads((sample / "prompt.json").read_text())["strategy"] == "parallel"
    assert (sample / "text.txt").exists()
    units = json.loads((sample / "units.json").read_text())
    assert all(0 <= u < NUM_UNITS for u in units)
    assert (sample / "audio.wav").exists() == bool(units)


def test_asr_hears_a_single_word_cut_tight_at_its_edges():
    """espeak's answers are one short word with no silence around it; without edge padding pocketsphinx gave no
    hypothesis at all for most of these (each decoder fresh, so nothing carries over from earlier audio)."""
    from koe.dialogue.asr import Transcriber
    from koe.synth.espeak import synthesize

    names = ["beskel", "blolnel", "braskalka", "bromlaska", "brunon", "dreta"]
    heard = [Transcriber(phrases=names).transcribe(synthesize(n, voice="en-us", rate_wpm=170).audio) for n in names]
    assert "" not in heard
    assert sum(h == n for h, n in zip(heard, names, strict=True)) >= 5
