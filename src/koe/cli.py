"""The `koe` command: parse options, call one stage's entry function. No logic lives here.

    koe synth num_items=200 voices=[en-us,en+m3]
    koe units fit configs/units_mel.yaml k=100
    koe run tiny

Each command is `(entry, config class, positional field, help)`; modules are imported only when the command runs,
so `koe --help` stays instant. Options are `key=value` (YAML values, dots for nested fields), also accepted as
`--key=value` or `--key value`; a first argument ending in .yaml is a config file, and for commands with a
positional field a bare first argument fills that field.

Exit status: 0 done; 1 when items failed (listed in the stage's failures file), when an output could not be written
(the path and the cause are printed) or on an unexpected error (a one-line message and a hint; the traceback only
with KOE_DEBUG=1); 2 for a config problem (every one listed, a missing or invalid YAML file included) or an input
that stops the stage before its work; 130 when interrupted.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    entry: str  # "module:function", the function takes the config and returns a StageReport (or int)
    config: str  # "module:Class"
    help: str
    positional: str | None = None  # config field filled by a bare first argument


COMMANDS: dict[str, Command] = {
    "corpus import": Command("koe.corpus.importers:run_import", "koe.corpus.config:ImportConfig",
                             "Import audio + transcripts into a manifest (dir, librispeech, pattern, hf, vad).",
                             "source"),
    "synth": Command("koe.synth.synthesize:run_synth", "koe.synth.config:SynthConfig",
                     "Synthesize speech with espeak-ng voices and exact word/phone timings."),
    "align": Command("koe.align.run:run_align", "koe.align.config:AlignConfig",
                     "Forced-align a manifest with pocketsphinx, or import TextGrid/CTM/WhisperX alignments.",
                     "manifest"),
    "units fit": Command("koe.units.fit:run_fit", "koe.units.config:FitConfig",
                         "Fit a unit tokenizer (features + k-means [+ BPE]) on a manifest.", "manifest"),
    "units train-phonetic": Command("koe.units.phonetic_training:run_train_phonetic",
                                    "koe.units.config:PhoneticConfig",
                                    "Train a frame phone classifier on aligned phones (features=phonetic:<dir>).",
                                    "manifest"),
    "units encode": Command("koe.units.encode:run_encode", "koe.units.config:EncodeConfig",
                            "Encode a manifest into unit shards with a fitted tokenizer.", "manifest"),
    "units train-codec": Command("koe.units.codec_training:run_train_codec",
                                 "koe.units.codec_config:CodecTrainConfig",
                                 "Train koe's own small mel codec (conv encoder, EMA RVQ, conv decoder).",
                                 "manifest"),
    "units encode-codec": Command("koe.units.codec_codes:run_encode_codec",
                                  "koe.units.codec_config:CodecEncodeConfig",
                                  "Encode a manifest into multi-level codec codes (koe's codec, EnCodec, DAC, Mimi).",
                                  "manifest"),
    "units stats": Command("koe.units.stats:run_stats", "koe.units.config:StatsConfig",
                           "Token rates, bitrate, usage, purity, PNMI of unit shards (per level for codec codes).",
                           "units_dir"),
    "data build": Command("koe.data.build:run_build", "koe.data.config:BuildConfig",
                          "Build speech-only / text-only / interleaved token shards for training."),
    "train": Command("koe.train.recipe:run_train", "koe.train.config:TrainConfig",
                     "Continued pretraining of a Hugging Face causal LM on koe token shards."),
    "bench build": Command("koe.bench.build:run_bench_build", "koe.bench.config:BenchBuildConfig",
                           "Build spoken benchmarks (lexical, syntactic, semantic, spoken QA)."),
    "eval": Command("koe.eval.run:run_eval", "koe.eval.config:EvalConfig",
                    "Zero-shot evaluation of a model on koe benchmarks.", "model"),
    "generate": Command("koe.generate.run:run_generate", "koe.generate.config:GenerateConfig",
                        "Generate text and speech from a trained model.", "model"),
    "serve": Command("koe.serve.run:run_serve", "koe.serve.config:ServeConfig",
                     "A local web page to talk to a model; answers stream as text and speech.", "model"),
    "vocoder train": Command("koe.vocoder.train:run_vocoder_train", "koe.vocoder.config:VocoderConfig",
                             "Train a unit vocoder: baseline (Griffin-Lim), hifigan or c2f (codec tokens)."),
    "ssl pretrain": Command("koe.ssl.pretrain:run_pretrain", "koe.ssl.config:PretrainConfig",
                            "Pretrain a small HuBERT from scratch on k-means targets (HuBERT iteration 1).",
                            "manifest"),
    "ssl disentangle": Command("koe.ssl.disentangle:run_disentangle", "koe.ssl.config:DisentangleConfig",
                               "Speaker-disentangled fine-tuning of a HuBERT (student/EMA teacher, perturbed input).",
                               "manifest"),
    "dialogue build": Command("koe.dialogue.build:run_dialogue_build", "koe.dialogue.config:DialogueBuildConfig",
                              "Build spoken QA examples (spoken question + text/spoken answer) from text QA."),
    "sft": Command("koe.sft.loop:run_sft", "koe.sft.config:SftConfig",
                   "Supervised fine-tuning on dialogue examples with one answer strategy."),
    "eval s2s": Command("koe.eval.spoken_qa_s2s:run_spoken_qa_s2s", "koe.eval.s2s_config:S2SEvalConfig",
                        "Spoken QA speech-to-speech: answer in speech, vocode, transcribe, score.", "model"),
    "dialogue report": Command("koe.dialogue.report:run_dialogue_report", "koe.dialogue.report:DialogueReportConfig",
                               "One table comparing answer strategies (eval s2s results)."),
    "s2t init-encoder": Command("koe.s2t.init:run_encoder_init", "koe.s2t.init:EncoderInitConfig",
                                "Write a randomly initialised Whisper-style encoder (HF dir) for offline recipes."),
    "s2t train": Command("koe.s2t.train:run_s2t_train", "koe.s2t.train:S2TTrainConfig",
                         "Speech-aware text LM: ASR pre-alignment (stage=align) or spoken-QA SFT (stage=sft)."),
    "echox items": Command("koe.echox.data:run_items", "koe.echox.data:ItemsConfig",
                           "TinySpeech fact questions and answers as text items for koe synth."),
    "echox qa": Command("koe.echox.data:run_qa", "koe.echox.data:QAConfig",
                        "Join synth manifest and unit shards into spoken-QA records."),
    "echox t2c": Command("koe.echox.train:run_t2c_train", "koe.echox.train:T2CConfig",
                         "EchoX stage II: train the text-to-units T2C on TTS pairs (unit language targets)."),
    "echox echo": Command("koe.echox.train:run_echo_train", "koe.echox.train:EchoConfig",
                          "EchoX stage III: echo training with pseudo labels and the denoising adapter."),
    "echox eval": Command("koe.echox.evaluate:run_echox_eval", "koe.echox.evaluate:EchoxEvalConfig",
                          "Spoken QA table: text out, speech out (pocketsphinx), gap, WER, first-audio latency."),
    "report": Command("koe.recipes.report:run_report", "koe.recipes.report:ReportConfig",
                      "Compare evaluated models in one table, with loss curves and data plots."),
    "run": Command("koe.recipes:run_recipe", "koe.recipes:RecipeConfig",
                   "Run a built-in recipe end to end (e.g. `koe run tiny`).", "recipe"),
}


def _load(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    rows = "\n".join(f"  koe {name:<{width}}  {c.help}" for name, c in COMMANDS.items())
    usage = "usage: koe COMMAND [CONFIG.yaml] [key=value ...]"
    return f"{usage}\n\ncommands:\n{rows}\n\n`koe COMMAND --help` lists options."


def _split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    for n in (2, 1):
        name = " ".join(argv[:n])
        if name in COMMANDS:
            return name, argv[n:]
    return None, argv


def _normalise(args: list[str]) -> list[str]:
    """Turn `--key value` and `--key=value` into `key=value`."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and "=" not in a and i + 1 < len(args):
            out.append(f"{a[2:].replace('-', '_')}={args[i + 1]}")
            i += 2
            continue
        if a.startswith("--"):
            key, _, value = a[2:].partition("=")
            a = f"{key.replace('-', '_')}={value}"
        out.append(a)
        i += 1
    return out


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    name, rest = _split_command(argv)
    if name is None:
        print(_usage())
        sys.exit(0 if not argv or argv[0] in ("-h", "--help") else 2)
    command = COMMANDS[name]
    config_cls = _load(command.config)
    if any(a in ("-h", "--help") for a in rest):
        from koe.config import help_text

        doc = (config_cls.__doc__ or "").strip()
        print(f"usage: koe {name} [CONFIG.yaml] [key=value ...]\n\n{command.help}\n\n{doc}\n\noptions:")
        print(help_text(config_cls))
        sys.exit(0)
    sys.exit(run_command(name, rest))


def run_command(name: str, args: list[str]) -> int:
    """Resolve the config and run; returns the exit code (see the module docstring). No exception escapes: each
    kind is printed as one clear message, so a recipe's next step and a user's shell both see a status."""
    cfg = None
    try:
        cfg = _resolve(name, args)
        result = _load(COMMANDS[name].entry)(cfg)
        return result if isinstance(result, int) else getattr(result, "exit_code", 0)
    except KeyboardInterrupt:
        print(f"koe {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the policy's last line: every error gets a message and a status, never a bare trace
        return _report_error(name, e, getattr(cfg, "out_dir", None))


def _report_error(name: str, e: Exception, out_dir) -> int:
    from koe.config import ConfigError
    from koe.stage import KoeInputError, KoeOutputError, describe_os_error, low_disk_note

    debug = os.environ.get("KOE_DEBUG", "") not in ("", "0")
    if isinstance(e, (ConfigError, KoeInputError)):
        print(f"koe {name}: error: {e}", file=sys.stderr)
        return 2
    if debug:
        traceback.print_exception(e)
    if isinstance(e, KoeOutputError):
        print(f"koe {name}: error: {e}", file=sys.stderr)
    elif isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        print(f"koe {name}: error: {where}{describe_os_error(e)}", file=sys.stderr)
    else:
        print(f"koe {name}: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        note = low_disk_note(out_dir) if out_dir else None
        if note:  # libraries' own writers (torch, safetensors) report a full disk without the path or the cause
            print(f"  {note}", file=sys.stderr)
        if not debug:
            print("  run again with KOE_DEBUG=1 for the traceback; if the inputs look right, please report it "
                  "with that traceback", file=sys.stderr)
    return 1


def _resolve(name: str, args: list[str]):
    """The command's config from its arguments (a YAML file first, a bare positional value, key=value options)."""
    from koe.config import load_config

    command = COMMANDS[name]
    config_cls = _load(command.config)
    yaml_path = None
    if args and args[0].endswith((".yaml", ".yml")) and "=" not in args[0]:
        yaml_path, args = args[0], args[1:]
    elif args and command.positional and "=" not in args[0] and not args[0].startswith("--"):
        args = [f"{command.positional}={args[0]}", *args[1:]]
    return load_config(config_cls, yaml_path, _normalise(args))
