"""`koe dialogue build`: turn text QA into spoken QA examples (docs/dialogue.md).

    koe dialogue build out_dir=runs/dialogue/data unit_tokenizer=runs/tiny/tokenizer
    koe dialogue build out_dir=data/dlg_real tinyspeech=false unit_tokenizer=tok \
        webquestions=../shared/data/webquestions/main/test.json \
        triviaqa=../shared/data/triviaqa_subset/triviaqa_sm_sub.jsonl real_num=200

TinySpeech facts keep tiny's splits (koe.tinyspeech.facts), so a model pretrained by `koe run tiny` meets the same
facts in the same roles:
- heard facts (`text_and_speech`): spoken training questions (`voices_per_fact` seen voices), a text training
  example, and one evaluation question in a held-out voice;
- text-only facts: a text training example only (never spoken in training), and a spoken evaluation question;
- held-out facts: a spoken evaluation question only (never trained on: the chance baseline).
Every spoken answer is said by `answer_voice`, never a question voice. Writes wav/, examples.jsonl, config.yaml,
dialogue_build_summary.json and dialogue_build_failures.jsonl; an example that cannot be made (unspeakable text, no
audio, too long for max_seq_len) is listed with its reason and the rest are written (exit status 1).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf

from koe.config import save_config
from koe.dialogue.config import DialogueBuildConfig
from koe.dialogue.examples import EXAMPLES_FILE, FACT_SPLITS, DialogueExample, write_examples
from koe.seed import rng_for
from koe.stage import KoeInputError, StageReport, progress

WAV_DIR = "wav"


@dataclasses.dataclass(frozen=True)
class Plan:
    """An example before anything is spoken: which voice asks it, which split it lands in."""

    id: str
    source: str
    split: str
    modality: str
    fact_split: str
    voice_split: str
    question: str
    answer: str
    references: tuple[str, ...]
    voice: str | None


def tiny_plans(cfg: DialogueBuildConfig) -> list[Plan]:
    """Every TinySpeech fact's examples, per the splits in the module docstring (pure: no synthesis)."""
    from koe.tinyspeech import facts

    plans, taken = [], {s: 0 for s in FACT_SPLITS}
    for f in facts(cfg.fact_seed):
        taken[f.split] += 1
        if cfg.num_facts and taken[f.split] > cfg.num_facts:
            continue
        split = FACT_SPLITS[f.split]
        rng = rng_for(cfg.seed, "dialogue", f.id)
        seen = [cfg.question_voices[int(i)] for i in rng.permutation(len(cfg.question_voices))]
        held = cfg.heldout_voices[int(rng.integers(len(cfg.heldout_voices)))]

        def plan(suffix: str, data_split: str, modality: str, voice_split: str, voice: str | None,
                 f=f, split=split) -> Plan:
            return Plan(f"tiny-{f.id}-{suffix}", "tinyspeech", data_split, modality, split, voice_split,
                        f.question, f.answer, (f.answer,), voice)

        if split == "heard":
            plans += [plan(f"train-{v}", "train", "speech", "seen", v) for v in seen[: cfg.voices_per_fact]]
        if split in ("heard", "text_only"):
            plans.append(plan("train-text", "train", "text", "none", None))
        plans.append(plan(f"eval-{held}", "eval", "speech", "heldout", held))
        if cfg.eval_seen_voice and len(seen) > cfg.voices_per_fact:
            plans.append(plan(f"eval-{seen[cfg.voices_per_fact]}", "eval", "speech", "seen", seen[cfg.voices_per_fact]))
    return plans


def real_plans(cfg: DialogueBuildConfig, report: StageReport) -> list[Plan]:
    """WebQuestions/TriviaQA: a seeded sample, a seeded train/eval split; eval questions in held-out voices."""
    from koe.bench.sources import read_triviaqa, read_webquestions

    plans = []
    for source, path, reader in (("webquestions", cfg.webquestions, read_webquestions),
                                 ("triviaqa", cfg.triviaqa, read_triviaqa)):
        if path is None:
            continue
        try:
            questions = reader(path)
        except KoeInputError as e:
            report.fail(source, str(e), path=path)
            continue
        rng = rng_for(cfg.seed, "dialogue", source)
        if cfg.real_num and cfg.real_num < len(questions):
            questions = [questions[int(i)] for i in sorted(rng.choice(len(questions), cfg.real_num, replace=False))]
        num_eval = max(1, round(cfg.real_eval_fraction * len(questions)))
        eval_ids = {questions[int(i)].id for i in rng.choice(len(questions), num_eval, replace=False)}
        for k, q in enumerate(questions):
            base = f"{source}-{q.id}"
            if q.id in eval_ids:
                voice = cfg.heldout_voices[k % len(cfg.heldout_voices)]
                plans.append(Plan(f"{base}-eval", source, "eval", "speech", "heldout", "heldout", q.question,
                                  q.answer, tuple(q.references), voice))
                continue
            voice = cfg.question_voices[k % len(cfg.question_voices)]
            plans.append(Plan(f"{base}-train", source, "train", "speech", "heard", "seen", q.question, q.answer,
                              tuple(q.references), voice))
            plans.append(Plan(f"{base}-train-text", source, "train", "text", "heard", "none", q.question, q.answer,
                              tuple(q.references), None))
    return plans


class _Speaker:
    """Speaks each (text, voice) once and writes its WAV; `encode` then gives every side its units in batches
    (one call per side cost more than the synthesis itself with the phonetic tokenizer)."""

    def __init__(self, cfg: DialogueBuildConfig):
        self.cfg, self.out = cfg, Path(cfg.out_dir)
        self.done: dict[tuple[str, str], str] = {}
        self.audio: dict[str, np.ndarray] = {}
        self.units: dict[str, list[int]] = {}
        self.unit_tok = None
        if cfg.unit_tokenizer is not None:
            from koe.units.tokenizer import UnitTokenizer

            self.unit_tok = UnitTokenizer.load(cfg.unit_tokenizer)

    def say(self, text: str, voice: str) -> str:
        key = (text, voice)
        if key not in self.done:
            from koe.bench.draft import safe_id
            from koe.synth.espeak import synthesize

            audio = synthesize(text, voice=voice, rate_wpm=self.cfg.rate_wpm).audio
            if audio.size == 0 or not np.any(audio):
                raise KoeInputError(f"no-audio: espeak gave silence for {text!r} ({voice})")
            rel = f"{WAV_DIR}/{safe_id(voice)}/{safe_id(text)[:80]}-{len(self.done):05d}.wav"
            (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(self.out / rel, audio, 16000, subtype="PCM_16")
            self.done[key], self.audio[rel] = rel, audio
        return self.done[key]

    def encode(self, batch: int = 32) -> None:
        if self.unit_tok is None:
            return
        rels = list(self.audio)
        for start in progress(range(0, len(rels), batch), desc="dialogue units", unit="batch"):
            chunk = rels[start: start + batch]
            for rel, (units, _) in zip(chunk, self.unit_tok.encode_batch([self.audio[r] for r in chunk]),
                                       strict=True):
                self.units[rel] = [int(u) for u in units]


def estimated_tokens(ex: DialogueExample) -> int:
    """An upper estimate of the longest strategy sequence (chain-of-modality): units, ~2 text tokens a word, markers."""
    words = len(ex.question_text.split()) * 2 + len(ex.answer_text.split()) * 2
    return len(ex.question_units or []) + len(ex.answer_units or []) + words + 8


def make_example(p: Plan, speaker: _Speaker, cfg: DialogueBuildConfig) -> DialogueExample:
    """The example with its sides spoken (units come later, from `_Speaker.encode`)."""
    ex = DialogueExample(p.id, p.source, p.split, p.modality, p.fact_split, p.voice_split, p.question, p.answer,
                         list(p.references))
    if not p.answer.strip():
        raise KoeInputError(f"empty-answer: {p.id}: the answer text is empty")
    if p.modality == "speech":
        ex.question_audio = speaker.say(p.question, str(p.voice))
        ex.answer_audio = speaker.say(p.answer, cfg.answer_voice)
        ex.question_voice, ex.answer_voice = p.voice, cfg.answer_voice
    return ex


def finish_example(ex: DialogueExample, speaker: _Speaker, cfg: DialogueBuildConfig) -> DialogueExample:
    if ex.modality == "speech" and speaker.unit_tok is not None:
        ex.question_units, ex.answer_units = speaker.units[ex.question_audio], speaker.units[ex.answer_audio]
    if estimated_tokens(ex) > cfg.max_seq_len:
        raise KoeInputError(f"too-long: {ex.id}: about {estimated_tokens(ex)} tokens do not fit "
                            f"max_seq_len={cfg.max_seq_len}")
    return ex


def run_dialogue_build(cfg: DialogueBuildConfig) -> StageReport:
    out = Path(cfg.out_dir)
    report = StageReport("dialogue build", out)
    save_config(cfg, out)
    plans = (tiny_plans(cfg) if cfg.tinyspeech else []) + real_plans(cfg, report)
    report.items_in = len(plans) + len(report.failures)
    speaker = _Speaker(cfg)
    spoken = []
    for p in progress(plans, desc="dialogue build", unit="ex"):
        try:
            spoken.append(make_example(p, speaker, cfg))
        except KoeInputError as e:
            report.fail(p.id, str(e))
    speaker.encode()
    examples = []
    for ex in spoken:
        try:
            examples.append(finish_example(ex, speaker, cfg))
            report.ok()
        except KoeInputError as e:
            report.fail(ex.id, str(e))
    if not examples:
        report.fail("dialogue build", "no-examples: nothing was built")
    write_examples(out / EXAMPLES_FILE, examples)
    counts: dict[str, int] = {}
    for e in examples:
        key = f"{e.split}/{e.modality}/{e.fact_split}/{e.voice_split}"
        counts[key] = counts.get(key, 0) + 1
    report.extra.update({"examples": str(out / EXAMPLES_FILE), "num_spoken_sides": len(speaker.done),
                         "with_units": speaker.unit_tok is not None, "counts": counts})
    return report.finish()
