"""Load test of `koe serve`: N concurrent WebSocket clients on loopback, each asking one typed question at once.

    .venv/bin/python benchmarks/serve_load.py                          # 20 clients, queue_size=20, 300 s limit
    .venv/bin/python benchmarks/serve_load.py --queue-size 4           # the default queue: the rest hear "busy"
    .venv/bin/python benchmarks/serve_load.py --model runs/tiny/interleaved/final --vocoder runs/tiny/vocoder

It starts the real server (`python -m koe serve ... port=0`) in a subprocess; without --model it first saves a
randomly initialised 2-layer Qwen2 with a 12-unit vocabulary and an untrained baseline vocoder (the numbers measure
the server and the streaming, not a model's quality). Every client records its outcome (`done`, `busy`, `error`,
or `lost`: no final message before the time limit, or the connection dropped) and, client-side, the seconds from
sending to the first text delta, the first audio chunk and the final message. After the burst one more client
checks that the server still answers. Prints percentiles; exits 1 when any request was lost or the last check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["what does the dog see ?", "the red fox runs .", "where is the small dog ?", "the capital of"]


def save_random_model(out: Path) -> tuple[Path, Path]:
    """A random 2-layer model with koe tokens and an untrained vocoder, as tests/serve builds them."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from koe.data.text_tokenizer import train_text_tokenizer
    from koe.data.vocab import extend_tokenizer
    from koe.vocoder import UnitVocoder

    tok = train_text_tokenizer(QUESTIONS * 20, vocab_size=300, out_dir=out / "text_tok")
    vocab = extend_tokenizer(tok, num_units=12)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)
    Qwen2ForCausalLM(config).save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    UnitVocoder(12, 100.0, hidden_size=8, num_layers=1, kernel_size=3).save(out / "vocoder")
    meta = json.loads((out / "vocoder" / "vocoder.json").read_text())
    (out / "vocoder" / "vocoder.json").write_text(json.dumps({**meta, "mean_duration_frames": [6.0] * 12}))
    return out / "model", out / "vocoder"


def start_server(model: Path, vocoder: Path | None, options: list[str]) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "koe", "serve", str(model), "port=0", *options]
    if vocoder is not None:
        cmd.append(f"vocoder={vocoder}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if m := re.search(r"http://(127\.0\.0\.1:\d+)/", line):
            return proc, f"ws://{m.group(1)}/ws"
    raise SystemExit(f"koe serve exited with status {proc.wait()} before printing its address")


async def client(url: str, i: int, strategy: str, limit_s: float) -> dict:
    out: dict = {"client": i, "outcome": "lost"}
    start = time.perf_counter()
    try:
        async with asyncio.timeout(limit_s), connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "turn", "text": QUESTIONS[i % len(QUESTIONS)], "strategy": strategy}))
            out["chunks"] = 0
            async for message in ws:
                now = time.perf_counter() - start
                if isinstance(message, bytes):
                    out["chunks"] += 1
                    out.setdefault("first_audio_s", now)
                    continue
                m = json.loads(message)
                if m["type"] == "text":
                    out.setdefault("first_text_s", now)
                elif m["type"] == "queued":
                    out["ahead"] = m["ahead"]
                elif m["type"] in ("done", "error"):
                    out["outcome"] = "done" if m["type"] == "done" else ("busy" if m["kind"] == "busy" else "error")
                    out["total_s"] = now
                    out["message"] = m.get("message")
                    out["server_latency"] = m.get("latency")
                    break
    except (TimeoutError, OSError) as e:
        out["message"] = f"{type(e).__name__}: {e}"
    except Exception as e:  # a dropped connection counts as lost, with its reason
        out["message"] = f"{type(e).__name__}: {e}"
    return out


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    p = np.percentile(values, [50, 90, 99])
    return {"n": len(values), "p50": round(p[0], 3), "p90": round(p[1], 3), "p99": round(p[2], 3),
            "max": round(max(values), 3)}


async def burst(url: str, n: int, strategy: str, limit_s: float) -> list[dict]:
    return await asyncio.gather(*(client(url, i, strategy, limit_s) for i in range(n)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="koe model dir (default: a random 2-layer one)")
    ap.add_argument("--vocoder", type=Path)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--queue-size", type=int, default=20, help="the server's queue_size")
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--chunk-units", type=int, default=6, help="the server's chunk_units")
    ap.add_argument("--device", default="cpu", help="the server's device (cpu, cuda)")
    ap.add_argument("--strategy", default="think_then_speak")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds each client waits at most")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model, vocoder = (args.model, args.vocoder) if args.model else save_random_model(Path(tmp))
        options = [f"queue_size={args.queue_size}", f"max_new_tokens={args.max_new_tokens}",
                   f"chunk_units={args.chunk_units}", "temperature=1.0", f"device={args.device}"]
        proc, url = start_server(model, vocoder, options)
        try:
            wall = time.perf_counter()
            results = asyncio.run(burst(url, args.clients, args.strategy, args.time_limit))
            wall = time.perf_counter() - wall
            after = asyncio.run(client(url, 999, args.strategy, args.time_limit))
        finally:
            proc.terminate()
            log = proc.communicate(timeout=30)[0]
    outcomes = {k: sum(r["outcome"] == k for r in results) for k in ("done", "busy", "error", "lost")}
    done = [r for r in results if r["outcome"] == "done"]
    summary = {
        "clients": args.clients, "queue_size": args.queue_size, "max_new_tokens": args.max_new_tokens,
        "chunk_units": args.chunk_units, "device": args.device, "strategy": args.strategy,
        "burst_wall_s": round(wall, 2), "outcomes": outcomes,
        "first_text_s": percentiles([r["first_text_s"] for r in done if "first_text_s" in r]),
        "first_audio_s": percentiles([r["first_audio_s"] for r in done if "first_audio_s" in r]),
        "total_s": percentiles([r["total_s"] for r in done]),
        "busy_reply_s": percentiles([r["total_s"] for r in results if r["outcome"] == "busy"]),
        "audio_chunks": percentiles([float(r["chunks"]) for r in done]),
        "after_burst": after["outcome"], "server_tracebacks": log.count("Traceback"),
        "problems": [r for r in results if r["outcome"] in ("lost", "error")],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "requests": results}, indent=2))
    if outcomes["lost"] or after["outcome"] != "done" or summary["server_tracebacks"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
