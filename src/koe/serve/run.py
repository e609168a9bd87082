"""`koe serve`: a local web page to talk to a koe model, with the answer streamed as text and speech.

    koe serve                                                    # the tiny recipe's model, if `koe run tiny` made it
    koe serve runs/tiny/interleaved/final vocoder=runs/tiny/vocoder unit_tokenizer=runs/tiny/tokenizer
    koe serve MODEL_DIR port=8000 host=0.0.0.0                   # reachable from the network: an explicit choice

It prints the page's address (`koe serve: http://127.0.0.1:7860/`) once the model is loaded, then serves until
Ctrl-C. See docs/serve.md for the page, the limits and the WebSocket messages.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

from koe.generate.config import GenerateConfig
from koe.serve.config import TINY_MODEL, TINY_TOKENIZER, TINY_VOCODER, ServeConfig, is_loopback
from koe.stage import KoeInputError


def resolve_paths(cfg: ServeConfig) -> tuple[Path, Path | None, Path | None]:
    """(model, vocoder, unit_tokenizer) to load; the tiny recipe's when no model is given."""
    model, vocoder, tokenizer = cfg.model, cfg.vocoder, cfg.unit_tokenizer
    if model is None:
        if not (TINY_MODEL / "config.json").is_file():
            raise KoeInputError(
                f"no model given, and the tiny recipe's model {TINY_MODEL}/ is absent under {Path.cwd()}: make it "
                "with `make tiny` (= `koe run tiny`), or name one: "
                "`koe serve MODEL_DIR vocoder=DIR unit_tokenizer=DIR`")
        model = TINY_MODEL
        vocoder = vocoder or (TINY_VOCODER if (TINY_VOCODER / "vocoder.json").is_file() else None)
        tokenizer = tokenizer or (TINY_TOKENIZER if (TINY_TOKENIZER / "unit_tokenizer.json").is_file() else None)
    if not (model / "config.json").is_file():
        raise KoeInputError(f"not a model dir: {model}: no config.json (a koe model is a Hugging Face model dir)")
    if tokenizer is None and (model / "unit_tokenizer" / "unit_tokenizer.json").is_file():
        tokenizer = model / "unit_tokenizer"
    if vocoder is not None and not (vocoder / "vocoder.json").is_file():
        raise KoeInputError(f"not a vocoder dir: {vocoder}: no vocoder.json (made by `koe vocoder train`)")
    if tokenizer is not None and not (tokenizer / "unit_tokenizer.json").is_file():
        raise KoeInputError(f"not a unit tokenizer dir: {tokenizer}: no unit_tokenizer.json (made by `koe units fit`)")
    return model, vocoder, tokenizer


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before uvicorn starts so port=0 gives a known free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise KoeInputError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(64)
    return sock


def run_serve(cfg: ServeConfig) -> int:
    import uvicorn

    from koe.serve.app import build_app
    from koe.serve.inputs import max_upload_bytes
    from koe.serve.responder import GenerateResponder

    model, vocoder, tokenizer = resolve_paths(cfg)
    gen_cfg = GenerateConfig(model=model, vocoder=vocoder, unit_tokenizer=tokenizer, max_new_tokens=cfg.max_new_tokens,
                             temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p, device=cfg.device)
    responder = GenerateResponder.load(gen_cfg, cfg)
    if not responder.strategies:
        raise KoeInputError(f"{model}: this model can answer in neither text nor speech here (a units-only model "
                            "needs vocoder=)")
    responder.warm_up()
    app = build_app(responder, cfg, model_name=model.name if model.name != "final" else model.parent.name)
    sock = bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.basicConfig(level=logging.INFO, format="koe serve: %(message)s")
    if not is_loopback(cfg.host):
        print(f"koe serve: warning: listening on {cfg.host}: anyone who can reach this machine can use the model",
              file=sys.stderr)
    print(f"koe serve: model {model}, vocoder {vocoder or 'none (text answers only)'}, unit tokenizer "
          f"{tokenizer or 'none (no spoken input)'}; strategies {', '.join(responder.strategies)}", flush=True)
    print(f"koe serve: http://{shown}:{port}/", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_max_size=2 * max_upload_bytes(cfg.max_audio_s),
                                           timeout_graceful_shutdown=5))
    server.run(sockets=[sock])
    return 0
