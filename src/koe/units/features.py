"""Frame features for unit tokenizers: built-in log-mel and MFCC, or a hidden layer of any HF speech encoder.

    ex = build_extractor("hf:facebook/hubert-base-ls960@9", device="cuda")     # or "mel", "mfcc"
    feats = ex.extract([wav_a, wav_b])        # list of float32 tensors [frames, dim] on ex.device
    ex.spec.frame_rate_hz                     # 50.0 for HuBERT (product of conv strides), 100.0 for mel/mfcc

Inputs are 16 kHz mono float32 arrays (`koe.audio.load_audio`). `extract` sorts its inputs by length and groups them
so a batch holds at most `batch_s` padded seconds, which keeps padding (and its effect on group-norm encoders such as
HuBERT base) small. HF encoders see long audio in chunks of `chunk_s`; chunks overlap by the convolutional receptive
field minus one stride, so the frame grid equals the unchunked one (only transformer context stops at chunk edges).
The encoder is cut after the chosen layer (the layers above it are never run); CPU runs fp32, CUDA runs bf16 autocast.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from koe.audio import TARGET_SAMPLE_RATE_HZ
from koe.stage import KoeInputError
from koe.units.config import parse_features

MEL_PARAMS = {"n_fft": 400, "hop": 160, "n_mels": 80, "fmin_hz": 0.0, "fmax_hz": 8000.0, "log_floor": 1e-10}
MFCC_PARAMS = {**MEL_PARAMS, "n_mels": 40, "fmin_hz": 20.0, "n_ceps": 13, "delta_width": 2}


@dataclasses.dataclass
class FeatureSpec:
    """What produced the frames: enough to rebuild the same extractor from a tokenizer directory."""

    backend: str  # "mel" | "mfcc" | "hf"
    frame_rate_hz: float
    dim: int
    source: str | None = None  # hub id or local path of an HF encoder
    layer: int | None = None  # hidden_states index (0 = input of the first transformer layer)
    sample_rate_hz: int = TARGET_SAMPLE_RATE_HZ
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(**d)

    @property
    def name(self) -> str:
        return f"hf:{self.source}@{self.layer}" if self.backend == "hf" else self.backend


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_batch_s(device: str | torch.device) -> float:
    """Padded seconds per encoder batch when none is given: on an H100, HuBERT-base encoding keeps 0.82-0.97 of the
    raw forward's throughput at 640 s against 0.77-0.81 at 320 (docs/units.md); a CPU gains nothing from bigger
    batches."""
    return 640.0 if resolve_device(device).type == "cuda" else 320.0


def length_batches(lengths: list[int], max_padded: int) -> list[list[int]]:
    """Indices grouped longest first so that len(batch) * longest <= max_padded (a single item always fits)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_padded:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@dataclasses.dataclass
class Prepared:
    """CPU-side collated batches of a list of inputs: built in a loader thread, run on the device later."""

    num_items: int
    pieces: list[tuple[int, int]]  # (input index, frames) per piece, in input order
    batches: list[list[int]]  # piece indices per batch
    inputs: list[Any]  # collated CPU tensors per batch, as _forward takes them


class FeatureExtractor:
    """Base: chunk, sort and pad on the CPU (`prepare`), run on the device (`run`), trim each item's frames."""

    spec: FeatureSpec
    device: torch.device

    def __init__(self, batch_s: float) -> None:
        self.batch_samples = int(batch_s * TARGET_SAMPLE_RATE_HZ)

    def extract(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """Float32 features [frames, dim] on self.device, one per input, in input order."""
        return self.run(self.prepare(wavs))

    def prepare(self, wavs: list[np.ndarray]) -> Prepared:
        """Everything that needs no device: thread-safe, so loaders can collate the next batch during a forward."""
        spans = [(i, *span) for i, w in enumerate(wavs) for span in self._chunks(len(w))]
        batches = length_batches([end - start for _, start, end, _ in spans], self.batch_samples)
        inputs = [self._collate([wavs[spans[j][0]][spans[j][1] : spans[j][2]] for j in batch]) for batch in batches]
        return Prepared(len(wavs), [(i, frames) for i, _, _, frames in spans], batches, inputs)

    def run(self, prepared: Prepared) -> list[torch.Tensor]:
        results: dict[int, torch.Tensor] = {}
        for batch, inputs in zip(prepared.batches, prepared.inputs, strict=True):
            for j, f in zip(batch, self._forward(inputs), strict=True):
                want = prepared.pieces[j][1]
                if len(f) < want:
                    raise RuntimeError(f"{self.spec.name}: {len(f)} frames from a piece that should give {want}")
                results[j] = f[:want]
        out: list[list[torch.Tensor]] = [[] for _ in range(prepared.num_items)]
        for j, (i, _) in enumerate(prepared.pieces):
            out[i].append(results[j])
        return [torch.cat(parts) if len(parts) > 1 else parts[0] for parts in out]

    def _chunks(self, n: int) -> list[tuple[int, int, int]]:
        """(start_sample, end_sample, num_frames) pieces of an n-sample input; the base never chunks."""
        return [(0, n, self.num_frames(n))]

    def num_frames(self, n: int) -> int:
        raise NotImplementedError

    def _collate(self, segs: list[np.ndarray]) -> Any:
        return _pad(segs, pin=self.device.type == "cuda")

    def _forward(self, inputs: Any) -> list[torch.Tensor]:
        raise NotImplementedError


def _pad(segs: list[np.ndarray], min_len: int = 1, pin: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded float32 batch [B, T] and lengths [B] on the CPU; pinned for an asynchronous copy to a GPU."""
    lengths = [max(min_len, len(s)) for s in segs]
    x = torch.zeros(len(segs), max(lengths), pin_memory=pin)
    for b, s in enumerate(segs):
        x[b, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    return x, torch.tensor(lengths)


def _to(device: torch.device, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(device, non_blocking=True) for t in tensors]


class SpectralExtractor(FeatureExtractor):
    """Log-mel (80 x 25 ms windows every 10 ms) or MFCC (13 cepstra + deltas + delta-deltas = 39), no weights."""

    def __init__(self, backend: str, device: torch.device, batch_s: float, params: dict | None = None) -> None:
        from transformers.audio_utils import mel_filter_bank

        super().__init__(batch_s)
        self.device = device
        p = dict(params or (MFCC_PARAMS if backend == "mfcc" else MEL_PARAMS))
        self.p = p
        fb = mel_filter_bank(p["n_fft"] // 2 + 1, p["n_mels"], p["fmin_hz"], p["fmax_hz"], TARGET_SAMPLE_RATE_HZ,
                             norm="slaney", mel_scale="slaney")
        self.fbank = torch.tensor(fb.T, dtype=torch.float32, device=device)  # [n_mels, bins]
        self.window = torch.hann_window(p["n_fft"], device=device)
        dim = p["n_mels"]
        if backend == "mfcc":
            n, k = np.arange(p["n_mels"]), np.arange(p["n_ceps"])[:, None]
            dct = np.cos(np.pi / p["n_mels"] * (n + 0.5) * k) * np.sqrt(2 / p["n_mels"])
            dct[0] /= np.sqrt(2)  # orthonormal DCT-II, as in Kaldi/librosa MFCCs
            self.dct = torch.tensor(dct, dtype=torch.float32, device=device)  # [n_ceps, n_mels]
            dim = 3 * p["n_ceps"]
        rate = TARGET_SAMPLE_RATE_HZ / p["hop"]
        self.spec = FeatureSpec(backend=backend, frame_rate_hz=rate, dim=dim, params=p)

    def num_frames(self, n: int) -> int:
        return n // self.p["hop"] + 1  # centred frames: frame i is centred on sample i * hop

    def _forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        x, lengths = _to(self.device, *inputs)
        stft = torch.stft(x, self.p["n_fft"], self.p["hop"], window=self.window, center=True, pad_mode="constant",
                          return_complex=True)
        logmel = torch.log(torch.clamp(self.fbank @ stft.abs().square(), min=self.p["log_floor"]))  # [B, mels, T]
        out = []
        for b, n in enumerate(lengths.tolist()):
            frames = logmel[b, :, : self.num_frames(n)].T
            out.append(frames.contiguous() if self.spec.backend == "mel" else self._mfcc(frames))
        return out

    def _mfcc(self, logmel: torch.Tensor) -> torch.Tensor:
        c = logmel @ self.dct.T  # [T, n_ceps]
        d = _deltas(c, self.p["delta_width"])
        return torch.cat([c, d, _deltas(d, self.p["delta_width"])], dim=1)


def _deltas(x: torch.Tensor, width: int) -> torch.Tensor:
    """Regression deltas over +-width frames with edge frames repeated (the HTK/Kaldi formula)."""
    padded = torch.cat([x[:1].expand(width, -1), x, x[-1:].expand(width, -1)])
    t = len(x)
    num = sum(n * (padded[width + n : width + n + t] - padded[width - n : width - n + t]) for n in range(1, width + 1))
    return num / (2 * sum(n * n for n in range(1, width + 1)))


class HFEncoderExtractor(FeatureExtractor):
    """Hidden layer `layer` of a transformers speech encoder (HuBERT, WavLM, wav2vec 2.0, data2vec, Whisper)."""

    def __init__(self, source: str, layer: int, device: torch.device, batch_s: float, chunk_s: float,
                 revision: str | None = None) -> None:
        from transformers import AutoConfig, AutoModel

        super().__init__(batch_s)
        self.device = device
        try:
            config = AutoConfig.from_pretrained(source, revision=revision)
        except OSError as e:
            raise KoeInputError(f"features=hf:{source}@{layer}: cannot load the encoder ({e})") from None
        self.whisper = config.model_type == "whisper"
        self.masked_norm: _MaskedGroupNorm | None = None
        num_layers = config.encoder_layers if self.whisper else config.num_hidden_layers
        if not 0 <= layer <= num_layers:
            raise ValueError(f"features=hf:{source}@{layer}: the encoder has layers 0..{num_layers}")
        model = AutoModel.from_pretrained(source, revision=revision)
        if self.whisper:
            model = model.encoder
            self.stride, self.receptive = 320, 400  # 10 ms mel hop x conv stride 2
            chunk_s = min(chunk_s, 30.0)  # Whisper's encoder takes exactly 30 s windows
            self.fe = _whisper_feature_extractor(source, revision, config.num_mel_bins)
            normalize = False
        else:
            self.stride = math.prod(config.conv_stride)
            strides, kernels = config.conv_stride, config.conv_kernel
            self.receptive = 1 + sum((k - 1) * math.prod(strides[:i]) for i, k in enumerate(kernels))
            normalize = _wants_normalized_input(source, revision, config)
            self.masked_norm = _mask_group_norm(model)
        stack = model if self.whisper else model.encoder
        stack.layers = stack.layers[: max(layer, 1)]  # hidden_states[layer] is unchanged by the cut (transformers 5)
        self.model = model.to(device).eval()
        self.layer, self.normalize = layer, normalize
        self.chunk_frames = max(1, int(chunk_s * TARGET_SAMPLE_RATE_HZ / self.stride))
        params = {"model_type": config.model_type, "chunk_s": chunk_s, "normalize": normalize, "stride": self.stride,
                  "receptive_field": self.receptive, "revision": getattr(config, "_commit_hash", None) or revision}
        dim = config.d_model if self.whisper else config.hidden_size
        self.spec = FeatureSpec(backend="hf", source=source, layer=layer, dim=dim,
                                frame_rate_hz=TARGET_SAMPLE_RATE_HZ / self.stride, params=params)

    def num_frames(self, n: int) -> int:
        if self.whisper:
            return max(1, n // self.stride)
        return 1 if n < self.receptive else (n - self.receptive) // self.stride + 1

    def _chunks(self, n: int) -> list[tuple[int, int, int]]:
        total = self.num_frames(n)
        out = []
        for first in range(0, total, self.chunk_frames):
            frames = min(self.chunk_frames, total - first)
            start = first * self.stride
            last = first + frames == total
            end = n if last else start + (frames - 1) * self.stride + self.receptive
            out.append((start, end, frames))
        return out

    def _collate(self, segs: list[np.ndarray]) -> Any:
        if self.whisper:  # log-mel of 30 s windows, computed on the CPU in the loader thread
            return self.fe([np.asarray(s) for s in segs], sampling_rate=TARGET_SAMPLE_RATE_HZ,
                           return_tensors="pt").input_features
        if self.normalize:  # per piece (per utterance unless chunked), as the checkpoint's feature extractor does
            segs = [(s - s.mean()) / np.sqrt(s.var() + 1e-7) for s in segs]
        return _pad(segs, self.receptive, self.device.type == "cuda")  # under one frame: zeros count as signal

    @torch.inference_mode()
    def _forward(self, inputs: Any) -> list[torch.Tensor]:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            if self.whisper:
                hidden = self.model(inputs.to(self.device), output_hidden_states=True).hidden_states[self.layer]
            else:
                x, lengths = _to(self.device, *inputs)
                mask = (torch.arange(x.shape[1], device=self.device)[None, :] < lengths[:, None]).long()
                if self.masked_norm is not None:
                    self.masked_norm.lengths = self.masked_norm.output_lengths(lengths)
                hidden = self.model(x, attention_mask=mask, output_hidden_states=True).hidden_states[self.layer]
        return [h.float() for h in hidden]


class _MaskedGroupNorm(torch.nn.Module):
    """Per-channel GroupNorm over each item's own frames, so zero padding cannot change its statistics.

    HuBERT/wav2vec 2.0 base normalise their first conv layer over time; with plain GroupNorm the padding of a batch
    shifts every frame's features and units would depend on what a file is batched with.
    """

    def __init__(self, norm: torch.nn.GroupNorm, kernel: int, stride: int) -> None:
        super().__init__()
        self.norm, self.kernel, self.stride = norm, kernel, stride
        self.lengths: torch.Tensor | None = None

    def output_lengths(self, samples: torch.Tensor) -> torch.Tensor:
        return (samples - self.kernel) // self.stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lengths is None:
            return self.norm(x)
        x = x.float()
        valid = (torch.arange(x.shape[-1], device=x.device)[None, :] < self.lengths[:, None]).unsqueeze(1).float()
        n = valid.sum(-1, keepdim=True)
        mean = (x * valid).sum(-1, keepdim=True) / n
        var = ((x - mean).square() * valid).sum(-1, keepdim=True) / n
        y = (x - mean) * torch.rsqrt(var + self.norm.eps)
        return y * self.norm.weight[None, :, None] + self.norm.bias[None, :, None]


def _mask_group_norm(model: Any) -> _MaskedGroupNorm | None:
    """Swap a per-channel GroupNorm in the first conv layer (feat_extract_norm="group") for the masked one."""
    first = model.feature_extractor.conv_layers[0]
    norm = getattr(first, "layer_norm", None)
    if not isinstance(norm, torch.nn.GroupNorm) or norm.num_groups != norm.num_channels:
        return None
    first.layer_norm = _MaskedGroupNorm(norm, first.conv.kernel_size[0], first.conv.stride[0])
    return first.layer_norm


def _wants_normalized_input(source: str, revision: str | None, config: Any) -> bool:
    """The checkpoint's own preprocessor decides; without one, layer-norm conv stacks expect normalised input."""
    from transformers import AutoFeatureExtractor

    try:
        return bool(AutoFeatureExtractor.from_pretrained(source, revision=revision).do_normalize)
    except (OSError, ValueError, AttributeError):
        return getattr(config, "feat_extract_norm", "group") == "layer"


def _whisper_feature_extractor(source: str, revision: str | None, num_mel_bins: int) -> Any:
    from transformers import WhisperFeatureExtractor

    try:
        return WhisperFeatureExtractor.from_pretrained(source, revision=revision)
    except OSError:
        return WhisperFeatureExtractor(feature_size=num_mel_bins)


def build_extractor(features: str | FeatureSpec, device: str | torch.device = "cpu", batch_s: float = 160.0,
                    chunk_s: float = 30.0) -> FeatureExtractor:
    """An extractor from a `features=` string (fit) or from a saved FeatureSpec (encode), on `device`."""
    dev = resolve_device(device) if isinstance(device, str) else device
    if isinstance(features, FeatureSpec):
        spec = features
        if spec.backend == "hf":
            return HFEncoderExtractor(spec.source, spec.layer, dev, batch_s, spec.params["chunk_s"],
                                      spec.params.get("revision"))
        if spec.backend == "phonetic":
            return _phonetic(spec.source, dev, batch_s, spec.params["weights_sha256"])
        return SpectralExtractor(spec.backend, dev, batch_s, spec.params)
    backend, source, layer = parse_features(features)
    if backend == "hf":
        return HFEncoderExtractor(source, layer, dev, batch_s, chunk_s)
    if backend == "phonetic":
        return _phonetic(source, dev, batch_s)
    return SpectralExtractor(backend, dev, batch_s)


def _phonetic(source: str, device: torch.device, batch_s: float, weights_sha256: str | None = None) -> FeatureExtractor:
    """The phone-posterior backend (koe.units.phonetic); a tokenizer refuses a classifier retrained since its fit."""
    from koe.units.phonetic import PhoneticExtractor

    extractor = PhoneticExtractor(source, device, batch_s)
    if weights_sha256 is not None and extractor.spec.params["weights_sha256"] != weights_sha256:
        raise KoeInputError(f"features=phonetic:{source}: the classifier's weights changed since this tokenizer was "
                            "fitted (weights_sha256 differs); refit the tokenizer")
    return extractor
