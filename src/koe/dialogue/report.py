"""`koe dialogue report`: one table comparing the answer strategies' `koe eval s2s` results.

    koe dialogue report out_dir=runs/dialogue/report evals='{interleaved: runs/dialogue/eval/interleaved, ...}'

Writes out_dir/results.md (the table, printed by `koe run dialogue`) and out_dir/results.json (every cell).
Columns: QA text % (text question, text answer), QA speech-in text-out %, QA speech-in speech-out % (the spoken
answer as pocketsphinx hears it), speech/text ratio (speech-out / text-out), own-text WER, first-audio tokens and
ms, and speech-in text-out / speech-out % per fact split (heard / text-only / held-out facts).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from koe.stage import KoeInputError, StageReport, atomic_write_text, write_json

SPLITS = ("heard", "text_only", "heldout")


@dataclasses.dataclass
class DialogueReportConfig:
    """Tabulate `koe eval s2s` results of several strategies."""

    out_dir: Path = dataclasses.field(default=Path("report"), metadata={"help": "results.md and results.json"})
    evals: dict[str, str] = dataclasses.field(default_factory=dict, metadata={
        "help": "row name -> `koe eval s2s` out_dir"})
    title: str = dataclasses.field(default="Spoken QA, speech to speech", metadata={"help": "table heading"})

    def validate(self) -> list[str]:
        return [] if self.evals else ["evals: name at least one eval dir"]


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _num(x, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def table_row(name: str, r: dict) -> str:
    split = r.get("by_split", {})

    def per(key: str) -> str:
        return "/".join(_pct(split.get(s, {}).get(key)) for s in SPLITS)

    return (f"| {name} | {_pct(r['qa_text'])} | {_pct(r['qa_speech_text'])} | {_pct(r['qa_speech_speech'])} | "
            f"{_num(r['speech_text_ratio'], '.2f')} | {_num(r['own_text_wer'], '.2f')} | "
            f"{_num(r['first_audio_tokens'], '.1f')} | {_num(r['first_audio_ms'], '.0f')} | "
            f"S→T {per('qa_speech_text')}; S→S {per('qa_speech_speech')} |")


def ceiling_line(c: dict) -> str:
    """The scorer's own ceiling beside a row: what the same ASR makes of the reference answers."""
    return ("speech-out ceiling (all / heard facts): reference answers' espeak audio "
            f"{_pct(c.get('espeak_answer'))} / {_pct(c.get('espeak_answer_heard'))} %, their true units through "
            f"this vocoder {_pct(c.get('vocoded_true_units'))} / {_pct(c.get('vocoded_true_units_heard'))} %.")


def run_dialogue_report(cfg: DialogueReportConfig) -> StageReport:
    report = StageReport("dialogue report", cfg.out_dir, items_in=len(cfg.evals))
    lines = [f"## {cfg.title}", "",
             "| strategy | QA text % | QA speech-in text-out % | QA speech-in speech-out % (ASR) | speech/text ratio | "
             "own-text WER | first-audio tokens | first-audio ms | splits heard/text-only/held-out % |",
             "|---|---|---|---|---|---|---|---|---|"]
    results = {}
    for name, path in cfg.evals.items():
        file = Path(path) / "results.json"
        try:
            if not file.exists():
                raise KoeInputError(f"no-results: {file} not found (did `koe eval s2s` run?)")
            results[name] = json.loads(file.read_text())
        except (KoeInputError, json.JSONDecodeError) as e:
            report.fail(name, str(e), path=file)
            lines.append(f"| {name} | failed: {e} |||||||| ")
            continue
        lines.append(table_row(name, results[name]))
        report.ok()
    n = next(iter(results.values()), {}).get("num")
    lines += ["", f"{n} spoken evaluation questions per strategy (held-out voices); exact match after SQuAD "
                  "normalisation; speech-out scored on pocketsphinx's transcript of the vocoded answer "
                  f"(answer ASR: {next(iter(results.values()), {}).get('answer_asr', 'n/a')})."]
    ceilings = {name: ceiling_line(r["speech_out_ceiling"])
                for name, r in results.items() if r.get("speech_out_ceiling")}
    if len(set(ceilings.values())) == 1:  # the same examples and vocoder: one line for every row
        lines.append(f"- every strategy: {next(iter(ceilings.values()))}")
    else:
        lines += [f"- {name}: {line}" for name, line in ceilings.items()]
    atomic_write_text(Path(cfg.out_dir) / "results.md", "\n".join(lines) + "\n")
    write_json(Path(cfg.out_dir) / "results.json", results)
    return report.finish()
