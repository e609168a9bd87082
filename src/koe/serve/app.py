"""The web app: one static page, GET /api/info, and a WebSocket /ws that streams each answer as it is generated.

    app = build_app(responder, ServeConfig(), model_name="interleaved")     # a Starlette app; koe.serve.run serves it

WebSocket messages (JSON text frames unless said otherwise; docs/serve.md has the full list):

    page -> server  {"type": "turn", "text": "...", "strategy": "think_then_speak", "voice": null}
                    {"type": "turn", "audio_b64": "<base64 file bytes>", "filename": "q.wav", "strategy": ...}
                    {"type": "reset"}
    server -> page  {"type": "queued", "ahead": 1} {"type": "started"} {"type": "text", "delta": "..."}
                    a binary frame: one audio chunk as a 16-bit PCM WAV file, to play after the previous one
                    {"type": "latency", "name": "first_audio", "seconds": 0.41}
                    {"type": "done", "turn": {...}, "latency": {...}} {"type": "reset_done"}
                    {"type": "error", "kind": "input" | "busy" | "internal", "message": "..."}

The model runs one turn at a time (a lock); up to `queue_size` more turns wait, the next ones get a "busy" error
at once. Bad input never reaches the model: it comes back as an error the page shows, never a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources

import soundfile as sf
import torch
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from koe.serve.config import ServeConfig
from koe.serve.inputs import check_text, decode_audio, max_upload_bytes
from koe.serve.responder import AudioChunk, LatencyMark, Responder, TextDelta, Turn, TurnDone, UserInput
from koe.stage import KoeInputError

log = logging.getLogger("koe.serve")
_END, _UNREADABLE = object(), object()


class TurnQueue:
    """One model, many pages: a lock for the model and a count of who waits for it."""

    def __init__(self, queue_size: int):
        self.queue_size = queue_size
        self.lock = asyncio.Lock()
        self.waiting = 0

    def try_enter(self) -> int | None:
        """Takes a waiting place: returns the turns ahead of this one, or None when the queue is full."""
        ahead = self.waiting + (1 if self.lock.locked() else 0)
        if self.waiting >= self.queue_size:
            return None
        self.waiting += 1
        return ahead

    @contextlib.asynccontextmanager
    async def slot(self, ahead: int, notify: Callable[[int], Awaitable[None]]) -> AsyncIterator[None]:
        """Holds the model for one turn; the waiting place goes back however the wait ends (a page may leave)."""
        try:
            if ahead:
                await notify(ahead)
            await self.lock.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.lock.release()


def build_app(responder: Responder, cfg: ServeConfig, model_name: str) -> Starlette:
    queue = TurnQueue(cfg.queue_size)
    page = resources.files("koe.serve").joinpath("page.html").read_text(encoding="utf-8")
    info = {
        "model": model_name, "strategies": responder.strategies, "voices": responder.voices,
        "accepts_text": responder.accepts_text, "accepts_audio": responder.accepts_audio,
        "max_audio_s": cfg.max_audio_s, "max_text_chars": cfg.max_text_chars,
        "max_upload_bytes": max_upload_bytes(cfg.max_audio_s), "max_new_tokens": cfg.max_new_tokens,
    }

    async def index(request) -> HTMLResponse:
        return HTMLResponse(page)

    async def api_info(request) -> JSONResponse:
        return JSONResponse(info)

    async def ws_endpoint(ws: WebSocket) -> None:
        await ws.accept()
        await _Session(ws, responder, cfg, queue).serve()

    app = Starlette(routes=[Route("/", index), Route("/api/info", api_info), WebSocketRoute("/ws", ws_endpoint)])
    app.state.queue = queue
    return app


class _Session:
    """One page's connection: its history, and its turns one after another."""

    def __init__(self, ws: WebSocket, responder: Responder, cfg: ServeConfig, queue: TurnQueue):
        self.ws, self.responder, self.cfg, self.queue = ws, responder, cfg, queue
        self.history: list[Turn] = []
        self.cancel = threading.Event()  # read by the model's thread
        self.gone = asyncio.Event()
        self.turns = 0

    async def serve(self) -> None:
        """Handles messages in order while a reader task watches the socket, so a page that leaves mid-turn or while
        queued stops its turn at once instead of holding the model for nobody."""
        inbox: asyncio.Queue = asyncio.Queue()
        reader = asyncio.create_task(self.read(inbox))
        try:
            while (message := await inbox.get()) is not None:
                if message is _UNREADABLE:
                    await self.error("input", "the page sent a message the server cannot read")
                    continue
                handler = asyncio.create_task(self.handle(message))
                gone = asyncio.create_task(self.gone.wait())
                await asyncio.wait({handler, gone}, return_when=asyncio.FIRST_COMPLETED)
                gone.cancel()
                if not handler.done():
                    handler.cancel()
                outcome = (await asyncio.gather(handler, return_exceptions=True))[0]
                if isinstance(outcome, Exception) and not self.gone.is_set():
                    log.error("message failed", exc_info=outcome)
                    await self.error("internal", f"the server failed on this message ({type(outcome).__name__}); "
                                                 "its log has details")
        finally:
            reader.cancel()

    async def read(self, inbox: asyncio.Queue) -> None:
        try:
            while True:
                try:
                    inbox.put_nowait(await self.ws.receive_json())
                except (ValueError, KeyError):  # not JSON, or a binary frame
                    inbox.put_nowait(_UNREADABLE)
        except (WebSocketDisconnect, RuntimeError):  # RuntimeError: receive after the close
            pass
        finally:
            self.cancel.set()
            self.gone.set()
            inbox.put_nowait(None)

    async def handle(self, message) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "reset":
            self.history = []
            await self.ws.send_json({"type": "reset_done"})
        elif kind == "turn":
            await self.turn(message)
        else:
            await self.error("input", f"unknown message type {kind!r}")

    async def error(self, kind: str, message: str) -> None:
        await self.ws.send_json({"type": "error", "kind": kind, "message": message})

    async def turn(self, message: dict) -> None:
        received = time.perf_counter()
        try:
            user = await asyncio.to_thread(self.parse_input, message)
        except KoeInputError as e:
            await self.error("input", str(e))
            return
        ahead = self.queue.try_enter()
        if ahead is None:
            await self.error("busy", f"The model is busy with other turns ({self.queue.queue_size} waiting); "
                                     "try again in a moment.")
            return
        async with self.queue.slot(ahead, lambda n: self.ws.send_json({"type": "queued", "ahead": n})):
            await self.ws.send_json({"type": "started", "queue_wait_s": time.perf_counter() - received})
            await self.stream(user, message, received)

    def parse_input(self, message: dict) -> UserInput:
        if message.get("audio_b64"):
            try:
                data = base64.b64decode(message["audio_b64"], validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise KoeInputError("unreadable: the audio did not arrive as base64") from None
            return UserInput(audio=decode_audio(data, str(message.get("filename") or "upload.wav"),
                                                self.cfg.max_audio_s))
        return UserInput(text=check_text(str(message.get("text") or ""), self.cfg.max_text_chars))

    async def stream(self, user: UserInput, message: dict, received: float) -> None:
        """Run the responder in a thread and forward its events as they come."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        strategy = str(message.get("strategy") or next(iter(self.responder.strategies), ""))
        voice = message.get("voice") or None
        seed = self.cfg.seed + self.turns
        self.turns += 1

        def work() -> None:
            try:
                torch.manual_seed(seed)
                for event in self.responder.turn(list(self.history), user, strategy, voice, self.cancel):
                    loop.call_soon_threadsafe(events.put_nowait, event)
                    if self.cancel.is_set():
                        break
            except KoeInputError as e:
                loop.call_soon_threadsafe(events.put_nowait, e)
            except Exception as e:  # logged here with its traceback; the page gets one line
                log.exception("turn failed")
                loop.call_soon_threadsafe(events.put_nowait, RuntimeError(f"{type(e).__name__}: {e}"))
            finally:
                loop.call_soon_threadsafe(events.put_nowait, _END)

        worker = loop.run_in_executor(None, work)
        latency: dict[str, float] = {}
        try:
            while (event := await events.get()) is not _END:
                await self.forward(event, latency, received)
        except BaseException:  # the page went away mid-answer: stop generating
            self.cancel.set()
            raise
        finally:
            await worker

    async def forward(self, event, latency: dict[str, float], received: float) -> None:
        elapsed = time.perf_counter() - received
        if isinstance(event, TextDelta):
            latency.setdefault("first_text_s", elapsed)
            await self.ws.send_json({"type": "text", "delta": event.text})
        elif isinstance(event, AudioChunk):
            latency.setdefault("first_audio_s", elapsed)
            await self.ws.send_bytes(_wav_bytes(event))
        elif isinstance(event, LatencyMark):
            await self.ws.send_json({"type": "latency", "name": event.name, "seconds": event.seconds})
        elif isinstance(event, TurnDone):
            self.history.append(event.turn)
            latency["total_s"] = elapsed
            turn = {"user": event.turn.user, "answer_text": event.turn.answer_text,
                    "audio_s": round(event.turn.audio_s, 3),
                    "history_turns": len(self.history)}
            await self.ws.send_json({"type": "done", "turn": turn, "latency": latency})
        elif isinstance(event, KoeInputError):
            await self.error("input", str(event))
        elif isinstance(event, RuntimeError):
            await self.error("internal", f"the model failed on this turn ({event}); the server log has details")


def _wav_bytes(chunk: AudioChunk) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, chunk.samples.clip(-1, 1), chunk.sample_rate_hz, format="WAV", subtype="PCM_16")
    return buf.getvalue()
