"""A corpus with planted bad files goes through import, align and encode: every good file comes out, every bad
one is listed with its reason, and each stage's exit status says that something failed."""

import json

import numpy as np
import soundfile as sf
from corpus.planted import write_planted_corpus

from koe.cli import run_command
from koe.corpus.manifest import read_manifest, write_manifest
from koe.synth.espeak import synthesize

SENTENCES = ["the small dog runs to the old barn", "a green bird sings in the tall tree",
             "my brother reads a long book at night", "the farmer sells fresh bread and cheese"]


def _failures(folder, stage: str) -> dict[str, str]:
    lines = (folder / f"{stage}_failures.jsonl").read_text().splitlines()
    return {(d := json.loads(x))["item"]: d["reason"] for x in lines}


def test_import_align_encode_with_planted_bad_files(tmp_path):
    clips = [(synthesize(t, voice="en-us").audio, 16000, t) for t in SENTENCES[:3]]
    corpus = write_planted_corpus(tmp_path / "raw", speech=clips)
    # a fourth good-looking file whose transcript belongs to other audio: only alignment can tell
    wrong = synthesize(SENTENCES[3], voice="en-us").audio
    sf.write(tmp_path / "raw/alice/mismatch.wav", wrong, 16000)
    (tmp_path / "raw/alice/mismatch.txt").write_text("where is the red ball that my sister gave me\n")

    # import: the nine planted files fail with their reasons, the four good ones (incl. 8 kHz stereo) go through
    out = tmp_path / "corpus"
    assert run_command("corpus import", ["dir", f"path={corpus.root}", f"out_dir={out}"]) == 1
    failed = _failures(out, "corpus_import")
    assert {k: v.split(":")[0] for k, v in failed.items()} == corpus.bad
    imported = read_manifest(out / "manifest.jsonl")
    assert {u.id for u in imported} == {*corpus.good, "alice-mismatch"}

    # align: the three true transcripts align, the wrong one is reported as a mismatch
    aligned_path = tmp_path / "aligned.jsonl"
    assert run_command("align", [str(out / "manifest.jsonl"), f"out={aligned_path}"]) == 1
    aligned = {u.id: u for u in read_manifest(aligned_path)}
    assert set(aligned) == set(corpus.good)
    assert all(len(u.words) == len(u.text.split()) for u in aligned.values())
    align_failures = _failures(aligned_path.parent, "align")
    assert list(align_failures) == ["alice-mismatch"]
    assert align_failures["alice-mismatch"].split(":")[0] in ("mismatch", "align-failed")

    # encode: a manifest line whose audio vanished after import is listed; the others are encoded
    manifest = read_manifest(out / "manifest.jsonl")
    (tmp_path / "raw/alice/mismatch.wav").unlink()
    write_manifest(tmp_path / "encode.jsonl", manifest)
    tok = tmp_path / "tok"
    assert run_command("units fit", [str(aligned_path), f"out_dir={tok}", "k=8", "iterations=5"]) == 0
    units = tmp_path / "units"
    assert run_command("units encode", [str(tmp_path / "encode.jsonl"), f"tokenizer={tok}", f"out_dir={units}"]) == 1
    assert list(_failures(units, "units_encode")) == ["alice-mismatch"]
    meta = json.loads((units / "meta.json").read_text())
    assert meta["num_utterances"] == 3
    shard = np.load(units / "shard-00000.npz")
    assert sorted(shard["ids"].tolist()) == sorted(corpus.good)
