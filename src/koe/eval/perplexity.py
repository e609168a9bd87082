"""Per-modality perplexity of a model on held-out token shards (`koe data build` output).

    ppl = modality_perplexity(lm, "data", split="valid", max_docs=200)
    ppl["speech"]["perplexity"], ppl["text"]["num_tokens"]

Every token after the first of a document is predicted from the tokens before it, over the full vocabulary (no
modality mask: this is the model's own next-token distribution, as in training). Documents longer than the model's
max_length are cut into consecutive windows, each starting fresh. Each token's negative log-likelihood is added to
the modality the shard's `modality` array gives it (text 0, speech 1, marker 2); perplexity = exp(mean NLL).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from koe.data.shards import MODALITIES, load_data_meta, read_token_shards
from koe.model.speech_text_lm import FULL, NONE, Request, SpeechTextLM
from koe.stage import KoeInputError


def modality_perplexity(lm: SpeechTextLM, data_dir: str | Path, split: str = "valid", max_docs: int = 0,
                        batch_tokens: int = 4096) -> dict[str, dict]:
    """{modality: {perplexity, nll_per_token, num_tokens}}; a modality with no tokens gets perplexity None."""
    meta = load_data_meta(data_dir)
    if meta.vocab.to_dict() != lm.vocab.to_dict():
        raise KoeInputError(f"vocab-mismatch: {data_dir}/meta.json: the shards' vocabulary {meta.vocab.to_dict()} "
                            f"differs from the model's {lm.vocab.to_dict()}")
    tok = lm.unit_tokenizer
    if tok is not None and meta.unit_tokenizer_hash is not None and meta.unit_tokenizer_hash != tok.content_hash:
        raise KoeInputError(f"tokenizer-mismatch: {data_dir}/meta.json: the shards were made with unit tokenizer "
                            f"{meta.unit_tokenizer_hash}, the model's is {tok.content_hash}")
    requests, modality = [], []
    for d, doc in enumerate(read_token_shards(data_dir, split)):
        if max_docs and d >= max_docs:
            break
        for s in range(0, len(doc.tokens), lm.max_length):
            toks = doc.tokens[s: s + lm.max_length].astype(np.int64)
            if len(toks) < 2:
                continue
            requests.append(Request(tuple(toks.tolist()), (NONE,) + (FULL,) * (len(toks) - 1)))
            modality.append(doc.modality[s: s + lm.max_length])
    if not requests:
        raise KoeInputError(f"no-data: {data_dir}/{split}: no document with two or more tokens")
    nll = np.zeros(len(MODALITIES))
    count = np.zeros(len(MODALITIES), dtype=np.int64)
    for lp, mod in zip(lm.score(requests, batch_tokens), modality, strict=True):
        np.add.at(nll, mod[1:], -lp[1:])
        np.add.at(count, mod[1:], 1)
    out = {}
    for m, name in enumerate(MODALITIES):
        mean = float(nll[m] / count[m]) if count[m] else None
        out[name] = {"perplexity": float(np.exp(mean)) if mean is not None else None, "nll_per_token": mean,
                     "num_tokens": int(count[m])}
    return out
