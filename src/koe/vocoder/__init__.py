"""Units to audio. Three kinds behind one interface (koe.vocoder.registry): the baseline units-to-log-mel regressor
inverted with Griffin-Lim (koe.vocoder.train), the neural HiFi-GAN unit vocoder (koe.vocoder.hifigan) and
coarse-to-fine, units -> codec tokens -> the codec's decoder (koe.vocoder.coarse_to_fine).

    vocoder = UnitVocoder.load("runs/voc")      # the class named in vocoder.json
    audio = units_to_audio(vocoder, units, speaker="en-us")
"""

from koe.audio.mel import MelSpec, griffin_lim, log_mel
from koe.vocoder.model import UnitVocoder

__all__ = ["MelSpec", "UnitVocoder", "griffin_lim", "log_mel", "units_to_audio"]


def units_to_audio(vocoder, units, durations=None, speaker: str | None = None, iterations: int | None = None):
    """Dedup units (+ optional durations in unit frames) -> float32 numpy audio at vocoder.sample_rate_hz.

    Without durations the vocoder supplies them (the baseline: each unit's mean training duration; hifigan: its
    duration predictor). `speaker` picks a voice of a multi-speaker vocoder (None = its first voice); `iterations`
    sets the baseline's Griffin-Lim iterations. Bad units, durations or speaker raise koe.stage.KoeInputError.
    """
    options = {} if iterations is None else {"iterations": iterations}
    return vocoder.synthesize(units, durations, speaker, **options)
