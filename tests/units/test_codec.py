"""Codec tokens: transformers codecs (tiny random-init models saved to tmp dirs), layouts, koe's own RVQ."""

import numpy as np
import pytest
import torch

from koe.stage import KoeInputError
from koe.units.codec import CodecTokenizer
from koe.units.codec_layout import delay, flatten, undelay, unflatten
from koe.units.rvq import ResidualVQ, codebook_stats


def _tiny_codecs():
    from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel, MimiConfig, MimiModel

    return {
        "encodec": (EncodecModel(EncodecConfig(
            sampling_rate=16000, num_filters=4, hidden_size=16, upsampling_ratios=[4, 4], codebook_size=32,
            codebook_dim=16, target_bandwidths=[15.0], num_lstm_layers=1, audio_channels=1)), 3, 1000.0),
        "dac": (DacModel(DacConfig(
            sampling_rate=16000, encoder_hidden_size=4, downsampling_ratios=[2, 4], decoder_hidden_size=16,
            n_codebooks=3, codebook_size=32, codebook_dim=4, hidden_size=16)), 3, 2000.0),
        "mimi": (MimiModel(MimiConfig(
            sampling_rate=16000, frame_rate=250, hidden_size=16, num_filters=4, upsampling_ratios=[4, 8],
            codebook_size=32, codebook_dim=16, num_quantizers=4, num_semantic_quantizers=1, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=2, head_dim=8, intermediate_size=32, sliding_window=16,
            kernel_size=3, last_kernel_size=3, residual_kernel_size=3, compress=2,
            vector_quantization_hidden_dimension=16, upsample_groups=16)), 4, 250.0),
    }


def test_transformers_codecs_encode_and_decode(tmp_path):
    torch.manual_seed(0)
    wav = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    for name, (model, levels, rate) in _tiny_codecs().items():
        model.save_pretrained(tmp_path / name)
        codec = CodecTokenizer.load(tmp_path / name)
        assert (codec.model_type, codec.num_levels, codec.frame_rate_hz) == (name, levels, rate)
        assert codec.bitrate_bps == rate * levels * 5  # log2(32) bits per code
        codes = codec.encode(wav)
        assert codes.shape == (levels, int(0.5 * rate)) and codes.min() >= 0 and codes.max() < 32
        audio = codec.decode(codes)
        assert audio.dtype == np.float32 and abs(len(audio) - 8000) <= 160
        with pytest.raises(KoeInputError, match="codes out of range"):
            codec.decode(codes + 32)
        with pytest.raises(KoeInputError, match="bad codes"):
            codec.decode(codes[:1])


def test_non_codec_dirs_are_refused(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1).save_pretrained(tmp_path)
    with pytest.raises(KoeInputError, match=r"not a codec.*'gpt2'"):
        CodecTokenizer.load(tmp_path)
    with pytest.raises(KoeInputError, match="codec not found"):
        CodecTokenizer.load(tmp_path / "nowhere")


def test_layouts_round_trip():
    codes = np.arange(12).reshape(3, 4) % 5
    ids = flatten(codes, codebook_size=5)
    assert ids[:3].tolist() == [codes[0, 0], 5 + codes[1, 0], 10 + codes[2, 0]]
    assert np.array_equal(unflatten(ids, 3, 5), codes)
    streams = delay(codes, pad_id=-1)
    assert streams.shape == (3, 6) and streams[2, :2].tolist() == [-1, -1] and streams[0, 4:].tolist() == [-1, -1]
    assert np.array_equal(undelay(streams), codes)


def test_rvq_levels_refine_and_use_their_codebooks():
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((3000, 8)).astype(np.float32)
    frames[:100] += 40.0  # an outlying cluster that leaves codes dead without restarts
    rvq = ResidualVQ.fit(frames, levels=3, codebook_size=64, seed=0, iterations=10)
    codes = rvq.encode(frames)
    assert codes.shape == (3, 3000)
    errors = [np.mean((frames - ResidualVQ(rvq.codebooks[:n]).decode(codes[:n])) ** 2) for n in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]
    stats = codebook_stats(codes, 64, frame_rate_hz=100.0)
    assert all(s["usage"] >= 0.9 for s in stats), stats
    assert stats[0]["bitrate_bps"] == 600.0 and 1 < stats[0]["perplexity"] <= 64
