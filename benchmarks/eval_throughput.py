"""Evaluation throughput: speech pairs scored per second by `koe eval`'s scorer
(koe.model.speech_text_lm.SpeechTextLM.score).

    python benchmarks/eval_throughput.py                 # Qwen2.5-0.5B shape, 152k-row head, on a GPU
    python benchmarks/eval_throughput.py --small         # a tiny shape on CPU in seconds (a smoke test)
    python benchmarks/eval_throughput.py --rows float32:score:4096,auto:score:0   # old default against the new

The model is a randomly initialised Qwen2 with Qwen2.5-0.5B's shape and a 152,448-row output layer (text + 500
units + markers; speed does not depend on weights); the tokenizer is a small koe tokenizer extended with 500 units.
Items are sBLIMP/sWUGGY-like pairs: two unit sequences of 25..250 units each (1..10 s at 25 Hz), every unit scored
with the speech mask. Rows (`--rows dtype:scorer:batch_tokens,...`): the scorer at two batch sizes in fp32 and bf16,
beside a naive loop (one forward and one host copy per sequence); dtype `auto` and batch tokens 0 are `koe eval`'s
defaults, resolved as `koe eval` resolves them (koe.model.speech_text_lm). Prints one table; --json writes the rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from koe.data.text_tokenizer import train_text_tokenizer
from koe.data.vocab import extend_tokenizer
from koe.model.init import round_up
from koe.model.speech_text_lm import GPU_BATCH_TOKENS, SPEECH, Request, SpeechTextLM, resolve_dtype

BODY = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
            intermediate_size=4864, vocab_size=round_up(151_936 + 500 + 2, 64))
SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=128, vocab_size=1024)
ROWS = ",".join(f"{d}:{s}:{b}" for d in ("float32", "bfloat16") for s, b in (("naive", 0), ("score", 4096),
                                                                             ("score", GPU_BATCH_TOKENS)))


def build_lm(shape: dict, device: str, dtype: torch.dtype, num_units: int) -> SpeechTextLM:
    with tempfile.TemporaryDirectory() as d:
        tok = train_text_tokenizer(["the red dog runs", "a cat sleeps on the mat"] * 8, vocab_size=300)
        extend_tokenizer(tok, num_units)
        tok.save_pretrained(d)
        tok = type(tok).from_pretrained(d)
    torch.manual_seed(0)
    cfg = Qwen2Config(**shape, max_position_embeddings=2048, tie_word_embeddings=True,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    model = Qwen2ForCausalLM(cfg).to(device=device, dtype=dtype)
    return SpeechTextLM(model, tok, torch.device(device))


def make_pairs(lm: SpeechTextLM, n_pairs: int, min_len: int, max_len: int, seed: int = 0) -> list[Request]:
    rng = np.random.default_rng(seed)
    requests = []
    for _ in range(2 * n_pairs):
        units = rng.integers(0, lm.vocab.total_units, int(rng.integers(min_len, max_len + 1)))
        tokens = [lm.marker("speech"), *lm.speech_ids(units)]
        requests.append(Request(tuple(tokens), (0, *[SPEECH] * len(units))))
    return requests


@torch.no_grad()
def naive_score(lm: SpeechTextLM, requests: list[Request]) -> None:
    """One forward and one host copy per sequence: what an unbatched scorer does."""
    for r in requests:
        ids = torch.tensor([r.tokens], device=lm.device)
        logp = torch.log_softmax(lm.model(input_ids=ids).logits[0, :-1].float(), -1)
        logp.gather(1, ids[0, 1:, None]).cpu()


def timed(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true")
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--rows", default=ROWS, help="dtype:scorer:batch_tokens, comma-separated (auto / 0 = defaults)")
    p.add_argument("--json", default="")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() and not args.small else "cpu"
    shape, pairs = (SMALL, 50) if args.small else (BODY, args.pairs)
    if args.small:
        torch.set_num_threads(1)
    rows = []
    wanted = [spec.split(":") for spec in args.rows.split(",")]
    for dtype_name in dict.fromkeys(d for d, _, _ in wanted):
        dtype = resolve_dtype(dtype_name, torch.device(device))
        lm = build_lm(shape, device, dtype, num_units=500)
        requests = make_pairs(lm, pairs, 25, 250)
        lm.score(requests[:64], 4096)  # warm-up: kernels, allocator
        for name, batch_tokens in [(s, int(b)) for d, s, b in wanted if d == dtype_name]:
            sub = requests if name != "naive" else requests[: max(2, len(requests) // 10)]
            fn = (lambda s=sub, m=lm: naive_score(m, s)) if name == "naive" else \
                (lambda s=sub, b=batch_tokens, m=lm: m.score(s, b))
            seconds = timed(fn, device)
            row = {"dtype": f"{dtype_name} = {str(dtype).removeprefix('torch.')}" if dtype_name == "auto" else
                   dtype_name, "scorer": name, "batch_tokens": batch_tokens if name != "naive" else None,
                   "pairs_per_s": len(sub) / 2 / seconds, "tokens_per_s": sum(len(r.tokens) for r in sub) / seconds}
            print(json.dumps(row), flush=True)
            rows.append(row)
        del lm
        if device == "cuda":
            torch.cuda.empty_cache()
    print(f"\n{'dtype':<17} {'scorer':<7} {'batch tokens':>12} {'pairs/s':>9} {'tokens/s':>10}")
    for r in rows:
        tokens = "-" if r["batch_tokens"] is None else r["batch_tokens"] or "0 = auto"
        print(f"{r['dtype']:<17} {r['scorer']:<7} {tokens!s:>12} {r['pairs_per_s']:>9.1f} "
              f"{r['tokens_per_s']:>10.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
