"""Audio in: any file soundfile reads, any rate and channel count, out as 16 kHz mono float32."""

from koe.audio.load import TARGET_SAMPLE_RATE_HZ, AudioInfo, load_audio, probe_audio

__all__ = ["TARGET_SAMPLE_RATE_HZ", "AudioInfo", "load_audio", "probe_audio"]
