#!/usr/bin/env bash
# Train the neural unit vocoder (and the baseline) on one GPU in ~6 minutes, then benchmark both; prints one table.
#
#   benchmarks/vocoder_gpu.sh                       # builds TinySpeech data first (needs espeak-ng), ~1 min on 16 cores
#   DATA=runs/voc/data benchmarks/vocoder_gpu.sh    # reuse DATA/manifest.jsonl + DATA/units (as tiny.yaml makes them)
#   RTF_ONLY=1 ...                                  # no pocketsphinx on the GPU box: speed only, quality elsewhere
#
# Environment: PYTHON (default python3 with koe importable), DATA, OUT (default runs/vocoder_gpu), BENCH_NUM (40).
# Held-out voices = the GPU config's exclude_speakers (en-gb-x-rp+f2, en-029+m5): never seen by either vocoder.
set -euo pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-runs/vocoder_gpu}
DATA=${DATA:-$OUT/data}
KOE="$PY -m koe"
export KOE_NO_PROGRESS=1 PYTHONUNBUFFERED=1

if [ ! -f "$DATA/manifest.jsonl" ] || [ ! -f "$DATA/units/meta.json" ]; then
  # the tiny recipe's data steps (src/koe/recipes/tiny.yaml), fewer items
  $KOE synth out_dir="$DATA" source=tinyspeech num_items=1200 num_workers=8 seed=0
  $KOE units train-phonetic manifest="$DATA/manifest.jsonl" out_dir="$DATA/phonetic" hidden_size=64 epochs=12.0 \
    lr=8.0e-3 seed=0
  $KOE units fit manifest="$DATA/manifest.jsonl" out_dir="$DATA/tokenizer" features="phonetic:$DATA/phonetic" \
    quantizer=classes min_run_frames=4 max_frames=150000 seed=0
  $KOE units encode manifest="$DATA/manifest.jsonl" tokenizer="$DATA/tokenizer" out_dir="$DATA/units" num_workers=8
fi

$KOE vocoder train src/koe/configs/vocoder/hifigan_gpu.yaml manifest="$DATA/manifest.jsonl" \
  units_dir="$DATA/units" out_dir="$OUT/hifigan"
$KOE vocoder train manifest="$DATA/manifest.jsonl" units_dir="$DATA/units" out_dir="$OUT/baseline" kind=baseline \
  steps=600 hidden_size=256 "exclude_speakers=[en-gb-x-rp+f2,en-029+m5]" device=cuda

BENCH=(--manifest "$DATA/manifest.jsonl" --units "$DATA/units" --vocoder "baseline=$OUT/baseline"
       --vocoder "hifigan=$OUT/hifigan" --num "${BENCH_NUM:-40}")
if [ -n "${RTF_ONLY:-}" ]; then
  $PY benchmarks/vocoder_quality.py "${BENCH[@]}" --device cuda --rtf-only --held-out en-us en+m3 --out "$OUT/bench_gpu"
else
  $PY benchmarks/vocoder_quality.py "${BENCH[@]}" --device cuda --out "$OUT/bench_gpu"
fi
