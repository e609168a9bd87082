"""Fixtures for `koe serve`: a tiny random model with tokenizer and vocoder, a running server, a headless Chromium.

The model is a randomly initialised 2-layer Qwen2 with a 12-unit vocabulary (as in tests/generate), the unit
tokenizer an MFCC k-means fitted on tone files (as in tests/units), the vocoder an untrained baseline UnitVocoder:
what the page shows is gibberish, but every path from input to streamed speech is the real one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from koe.corpus.manifest import Utterance, write_manifest
from koe.data.text_tokenizer import train_text_tokenizer
from koe.data.vocab import extend_tokenizer
from koe.vocoder import UnitVocoder

NUM_UNITS = 12
TEXTS = ["the red fox runs .", "a small dog sees the fox .", "what does the dog see ?"] * 20
ROOT = Path(__file__).resolve().parents[2]


def tone(seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    """Segments of random pitch (a stand-in for speech the MFCC tokenizer can split into units)."""
    rng = np.random.default_rng(seed)
    pieces = []
    for pitch in rng.choice([220.0, 330.0, 440.0, 660.0, 880.0], size=max(1, int(seconds / 0.25))):
        t = np.arange(int(0.25 * sr)) / sr
        pieces.append(0.3 * np.sin(2 * np.pi * pitch * t) + 0.01 * rng.standard_normal(len(t)))
    return np.concatenate(pieces).astype(np.float32)


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> dict[str, Path]:
    from koe.units.config import FitConfig
    from koe.units.fit import run_fit

    root = tmp_path_factory.mktemp("serve")
    utts = []
    for i in range(4):
        wav = tone(2.0, seed=i)
        sf.write(root / f"tone{i}.wav", wav, 16000)
        utts.append(Utterance(id=f"tone{i}", audio_path=f"tone{i}.wav", sample_rate_hz=16000,
                              duration_s=len(wav) / 16000, speaker="tone"))
    write_manifest(root / "manifest.jsonl", utts)
    report = run_fit(FitConfig(manifest=root / "manifest.jsonl", out_dir=root / "unit_tok", features="mfcc",
                               k=NUM_UNITS, iterations=10, max_frames=5000, device="cpu"))
    assert report.exit_code == 0

    tok = train_text_tokenizer(TEXTS, vocab_size=300, out_dir=root / "text_tok")
    vocab = extend_tokenizer(tok, num_units=NUM_UNITS)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512)
    Qwen2ForCausalLM(config).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    UnitVocoder(NUM_UNITS, 100.0, hidden_size=8, num_layers=1, kernel_size=3).save(root / "vocoder")
    meta = json.loads((root / "vocoder" / "vocoder.json").read_text())  # as `koe vocoder train` records it
    (root / "vocoder" / "vocoder.json").write_text(json.dumps({**meta, "mean_duration_frames": [6.0] * NUM_UNITS}))

    sf.write(root / "question.wav", tone(1.5, seed=7, sr=22050), 22050)  # resampled to 16 kHz by the server
    sf.write(root / "long.wav", tone(8.0, seed=8), 16000)
    sf.write(root / "silent.wav", np.zeros(16000, np.float32), 16000)
    (root / "bad.wav").write_bytes(b"this is not audio, only text with a .wav name\n" * 20)
    (root / "notes.txt").write_text("a text file\n")
    return {"model": root / "model", "vocoder": root / "vocoder", "unit_tokenizer": root / "unit_tok",
            "question": root / "question.wav", "long": root / "long.wav", "silent": root / "silent.wav",
            "bad": root / "bad.wav", "notes": root / "notes.txt", "root": root}


def start_server(assets: dict[str, Path], *options: str, timeout_s: float = 180.0) -> tuple[subprocess.Popen, str]:
    """`python -m koe serve` on a free loopback port (port=0); returns the process and the page's URL."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "koe", "serve", str(assets["model"]), f"vocoder={assets['vocoder']}",
           f"unit_tokenizer={assets['unit_tokenizer']}", "port=0", "device=cpu", *options]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline, lines = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if m := re.search(r"(http://127\.0\.0\.1:\d+/)", line):
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError("koe serve did not print its address:\n" + "".join(lines))


@pytest.fixture(scope="session")
def server(assets):
    proc, url = start_server(assets, "max_audio_s=5", "max_new_tokens=24", "temperature=1.0", "chunk_units=6")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log = proc.stdout.read()
    assert "Traceback" not in log, log


def browser_paths() -> tuple[str | None, str | None]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    return chromium, shutil.which("chromedriver")


@pytest.fixture(scope="session")
def browser():
    chromium, driver_path = browser_paths()
    if chromium is None or driver_path is None:
        pytest.skip("no headless browser: Chromium and chromedriver are not installed (`make test` installs them "
                    "with apt-get when run as root; else `apt-get install chromium chromium-driver`)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1000,760", "--autoplay-policy=no-user-gesture-required",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()
