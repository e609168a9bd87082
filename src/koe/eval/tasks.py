"""Score one benchmark's items under every modality condition: pairs, cloze and spoken QA.

    result = evaluate_items(items, lm, units, cfg, report)   # {"conditions": {...}, "qa_ratio": {...}, ...}

A condition is (prompt modality, candidate modality), named `speech`/`text` for pairs and `<prompt>_<candidates>`
(`speech_speech`, `text_text`, `text_speech`, `speech_text`) for cloze and QA. Sequences (docs/evaluation.md):

    pair side           [<m>] + side                       scored: the side's tokens
    prompted, same      [<m>] + prompt + candidate         scored: candidate (conditional) or prompt + candidate (whole)
    prompted, cross     [<mp>] + prompt + [<mc>] + candidate

where a speech part is unit tokens (unit_offset + u) and a text part the tokenizer's ids of the text (with a leading
space when it continues text). Markers are never scored. Identical requests (text sides are the same for every
voice) are scored once.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from koe.bench.items import BenchItem, Side
from koe.eval.config import EvalConfig
from koe.eval.scoring import contains_match, exact_match, group_accuracy, item_score, side_score, summarize
from koe.model.speech_text_lm import NONE, SPEECH, TEXT, Request, SpeechTextLM
from koe.stage import KoeInputError, StageReport, progress

Condition = tuple[str | None, str]
_CODE = {"speech": SPEECH, "text": TEXT}


def condition_name(cond: Condition) -> str:
    return cond[1] if cond[0] is None else f"{cond[0]}_{cond[1]}"


def conditions_for(task: str, cfg: EvalConfig) -> list[Condition]:
    mods = [m for m in ("speech", "text") if m in cfg.modalities]
    if task == "pair":
        return [(None, m) for m in mods]
    conds: list[Condition] = [(m, m) for m in mods]
    if cfg.cross_modal and len(mods) == 2:
        conds += [("speech", "text")] if task == "qa" else [("text", "speech"), ("speech", "text")]
    return conds


def unavailable(cond: Condition, lm: SpeechTextLM, units: dict | None) -> str | None:
    """Why a condition cannot be scored at all (reported as n/a, never as 0), or None."""
    if "text" in cond and not lm.has_text:
        return "units-only model: no text vocabulary"
    if "speech" in cond and units is None:
        return "no unit tokenizer (the model has none; unit_tokenizer=DIR)"
    return None


class _Builder:
    def __init__(self, lm: SpeechTextLM, units: dict[str, np.ndarray] | None):
        self.lm, self.units = lm, units

    def part(self, side: Side, modality: str, continues_text: bool) -> list[int]:
        if modality == "speech":
            if side.audio is None or self.units is None or side.audio not in self.units:
                raise KoeInputError(f"no-units: {side.audio}: no units for this side")
            return self.lm.speech_ids(self.units[side.audio])
        if side.text is None:
            raise KoeInputError("no-text: a side without spelling (a phone-made pseudo-word)")
        return self.lm.text_ids(side.text, continues_text)

    def request(self, item: BenchItem, cond: Condition, cand: Side) -> tuple[Request, np.ndarray, np.ndarray]:
        """The request and the positions of its prompt and candidate tokens."""
        pmod, cmod = cond
        tokens: list[int] = []
        prompt_pos: list[int] = []
        if item.prompt is not None and pmod is not None:
            tokens.append(self.lm.marker(pmod))
            ids = self.part(item.prompt, pmod, continues_text=False)
            prompt_pos = list(range(len(tokens), len(tokens) + len(ids)))
            tokens += ids
        if pmod != cmod:
            tokens.append(self.lm.marker(cmod))
        ids = self.part(cand, cmod, continues_text=(pmod == cmod == "text"))
        if not ids:
            raise KoeInputError("empty-side: a candidate has no tokens")
        cand_pos = list(range(len(tokens), len(tokens) + len(ids)))
        tokens += ids
        if len(tokens) > self.lm.max_length:
            raise KoeInputError(f"too-long: {len(tokens)} tokens exceed max_length={self.lm.max_length}")
        masks = [NONE] * len(tokens)
        for p in prompt_pos:
            masks[p] = _CODE[pmod]  # type: ignore[index]
        for p in cand_pos:
            masks[p] = _CODE[cmod]
        return Request(tuple(tokens), tuple(masks)), np.array(prompt_pos, dtype=int), np.array(cand_pos, dtype=int)


def evaluate_items(items: list[BenchItem], lm: SpeechTextLM, units: dict | None, cfg: EvalConfig,
                   report: StageReport, name: str) -> dict:
    """All conditions of one benchmark: accuracies with CIs and p-values, QA ratios and generative QA."""
    build = _Builder(lm, units)
    conds = list(dict.fromkeys(c for it in items for c in conditions_for(it.task, cfg)))
    results: dict[str, dict] = {}
    index: dict[Request, int] = {}
    plan: list[tuple[Condition, BenchItem, list[tuple[int, np.ndarray, np.ndarray]]]] = []
    for cond in conds:
        reason = unavailable(cond, lm, units)
        if reason:
            results[condition_name(cond)] = {"status": "n/a", "reason": reason}
            continue
        for it in items:
            if cond not in conditions_for(it.task, cfg):
                continue
            try:
                reqs = [build.request(it, cond, c) for c in it.candidates]
            except KoeInputError as e:
                if str(e).startswith("no-text"):
                    continue  # no spelling: this item has no text condition, counted below as n/a
                report.fail(f"{name}/{it.id}/{condition_name(cond)}", str(e))
                continue
            plan.append((cond, it, [(index.setdefault(r, len(index)), p, c) for r, p, c in reqs]))
    requests = list(index)
    try:
        logprobs = lm.score(requests, cfg.batch_tokens)
    except KoeInputError as e:
        report.fail(name, str(e))
        return {"conditions": results}
    per_cond: dict[tuple[str, str], list] = defaultdict(list)
    for cond, it, reqs in plan:
        cond_scores = [side_score(logprobs[i][c], cfg.reduce) for i, _, c in reqs]
        per_cond[(condition_name(cond), "")].append((it, item_score(cond_scores, it.label)))
        if it.task == "cloze":
            whole = [side_score(logprobs[i][np.concatenate([p, c])], cfg.reduce) for i, p, c in reqs]
            per_cond[(condition_name(cond), "/whole")].append((it, item_score(whole, it.label)))
    for cond in conds:
        for variant in ("", "/whole"):
            scored = per_cond.get((condition_name(cond), variant))
            if scored:
                results[condition_name(cond) + variant] = _summary(scored, cfg)
            elif variant == "" and condition_name(cond) not in results:
                results[condition_name(cond)] = {"status": "n/a", "reason": "no item has this modality's sides"}
    out: dict = {"conditions": results}
    if any(it.task == "qa" for it in items):
        out["qa_ratio"] = _ratios(results)
        if cfg.qa_generate:
            out["generation"] = _generate(items, lm, build, cfg, report, name)
    return out


def _summary(scored: list[tuple[BenchItem, float]], cfg: EvalConfig) -> dict:
    groups = group_accuracy((it.group, s) for it, s in scored)
    categories = {it.group: it.category for it, _ in scored}
    chance = {it.group: 1.0 / len(it.candidates) for it, _ in scored}
    return summarize(groups, categories, chance, cfg.bootstrap, cfg.confidence, cfg.seed) | {"num_items": len(scored)}


def _ratios(results: dict[str, dict]) -> dict:
    """Speech accuracy over text accuracy (Wu et al.'s modality gap), for each speech-question condition."""
    text = results.get("text_text", {}).get("accuracy")
    out = {}
    for cond in ("speech_text", "speech_speech"):
        acc = results.get(cond, {}).get("accuracy")
        out[f"{cond}/text_text"] = acc / text if acc is not None and text else None
    return out


def _generate(items: list[BenchItem], lm: SpeechTextLM, build: _Builder, cfg: EvalConfig, report: StageReport,
              name: str) -> dict:
    """Greedy text answers to text and spoken questions; exact and contains match against the references."""
    out = {}
    for pmod in ("text", "speech"):
        cond: Condition = (pmod, "text")
        reason = unavailable(cond, lm, build.units) or (None if pmod in cfg.modalities else "modality not selected")
        key = f"{pmod}_text"
        if reason:
            out[key] = {"status": "n/a", "reason": reason}
            continue
        # a text question is the same for every voice: answer it once per group
        todo = [it for it in items if it.task == "qa"]
        if pmod == "text":
            todo = list({it.group: it for it in todo}.values())
        em, contains, answers = [], [], {}
        for it in progress(todo, desc=f"generate {name} {key}", unit="q"):
            try:
                prefix = [lm.marker(pmod), *build.part(it.prompt, pmod, continues_text=False)]  # type: ignore[arg-type]
                if pmod == "speech":
                    prefix.append(lm.marker("text"))
                answer = lm.generate_text(prefix, cfg.max_new_tokens)
            except KoeInputError as e:
                report.fail(f"{name}/{it.id}/generate-{key}", str(e))
                continue
            answers[it.id] = answer
            em.append((it, float(exact_match(answer, it.references))))
            contains.append((it, float(contains_match(answer, it.references))))
        out[key] = {"exact_match": _summary_rate(em, cfg), "contains": _summary_rate(contains, cfg),
                    "examples": dict(list(answers.items())[:5])}
    return out


def _summary_rate(scored: list[tuple[BenchItem, float]], cfg: EvalConfig) -> dict:
    """Like `_summary` but for a generation rate: its chance level is 0, so there is no binomial test."""
    if not scored:
        return {"status": "n/a", "reason": "no question answered"}
    s = _summary(scored, cfg)
    s["chance"], s["p_value"] = 0.0, None
    return s
