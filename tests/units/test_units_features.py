"""Feature backends: shapes, frame rates, batching that does not change results, the HF encoder path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from koe.units.features import FeatureSpec, build_extractor, length_batches, parse_features

torch.set_num_threads(1)


def _noise(*lengths: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize(("name", "dim"), [("mel", 80), ("mfcc", 39)])
def test_spectral_shapes_and_rate(name, dim):
    ex = build_extractor(name)
    assert ex.spec.frame_rate_hz == 100.0 and ex.spec.dim == dim
    wavs = _noise(16000, 8000, 100)
    feats = ex.extract(wavs)
    assert [tuple(f.shape) for f in feats] == [(101, dim), (51, dim), (1, dim)]
    assert all(f.dtype == torch.float32 and torch.isfinite(f).all() for f in feats)
    for f, w in zip(feats, wavs, strict=True):  # padding inside a batch must not leak into a shorter item
        torch.testing.assert_close(f, ex.extract([w])[0], atol=1e-4, rtol=1e-4)


def test_mfcc_deltas_of_a_steady_signal_are_zero():
    t = np.arange(16000) / 16000
    f = build_extractor("mfcc").extract([np.sin(2 * np.pi * 440 * t).astype(np.float32)])[0]
    assert f[10:-10, 13:].abs().max() < 1e-3 < f[10:-10, :13].abs().max()


def test_parse_features():
    assert parse_features("mfcc") == ("mfcc", None, None)
    assert parse_features("hf:facebook/hubert-base-ls960@9") == ("hf", "facebook/hubert-base-ls960", 9)
    assert parse_features("hf:/tmp/a@b/model@2") == ("hf", "/tmp/a@b/model", 2)
    for bad in ("hubert", "hf:model", "hf:model@x", "hf:@3"):
        with pytest.raises(ValueError, match="expected mel, mfcc, hf:"):
            parse_features(bad)


def test_length_batches_bound_padding():
    lengths = [5, 100, 7, 60, 3, 100]
    batches = length_batches(lengths, max_padded=200)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) * max(lengths[i] for i in b) <= 200 or len(b) == 1 for b in batches)
    assert batches[0] == [1, 5]


def test_hf_batched_features_equal_the_plain_forward(tiny_hubert):
    """Masked group norm + attention mask: batching with padding gives each file's unbatched features."""
    from transformers import HubertModel

    ex = build_extractor(f"hf:{tiny_hubert}@2", batch_s=100)
    assert (ex.spec.frame_rate_hz, ex.spec.dim, ex.spec.layer) == (50.0, 32, 2)
    assert ex.spec.params["receptive_field"] == 400 and ex.spec.params["stride"] == 320
    wavs = _noise(16000, 12000, 300, 40000)
    feats = ex.extract(wavs)
    assert [len(f) for f in feats] == [49, 37, 1, 124]
    model = HubertModel.from_pretrained(tiny_hubert).eval()
    for f, w in zip(feats, wavs, strict=True):
        x = torch.from_numpy(np.pad(w, (0, max(0, 400 - len(w)))))[None]
        with torch.no_grad():
            ref = model(x, output_hidden_states=True).hidden_states[2][0]
        torch.testing.assert_close(f, ref, atol=1e-4, rtol=1e-4)


def test_hf_chunking_keeps_the_frame_grid(tiny_hubert):
    whole = build_extractor(f"hf:{tiny_hubert}@1")
    chunked = build_extractor(f"hf:{tiny_hubert}@1", chunk_s=0.5)
    wav = _noise(40000)[0]
    a, b = whole.extract([wav])[0], chunked.extract([wav])[0]
    assert a.shape == b.shape == (124, 32)
    assert chunked.spec.params["chunk_s"] == 0.5


def test_hf_spec_rebuilds_the_same_extractor(tiny_hubert):
    ex = build_extractor(f"hf:{tiny_hubert}@2")
    spec = FeatureSpec.from_dict(ex.spec.to_dict())
    again = build_extractor(spec)
    wav = _noise(9000)[0]
    torch.testing.assert_close(ex.extract([wav])[0], again.extract([wav])[0])
    with pytest.raises(ValueError, match=r"layers 0\.\.3"):
        build_extractor(f"hf:{tiny_hubert}@7")


def test_whisper_encoder_layer(tmp_path):
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80)
    WhisperModel(config).save_pretrained(tmp_path / "whisper")
    ex = build_extractor(f"hf:{tmp_path / 'whisper'}@1")
    assert (ex.spec.frame_rate_hz, ex.spec.dim) == (50.0, 32)
    feats = ex.extract(_noise(16000, 3000))
    assert [tuple(f.shape) for f in feats] == [(50, 32), (9, 32)]
