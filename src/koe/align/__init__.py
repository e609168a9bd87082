"""Word and phone times for a manifest: pocketsphinx forced alignment, or TextGrid / CTM / WhisperX import.

    koe align data/manifest.jsonl                     # writes data/manifest.aligned.jsonl
    from koe.align import PocketsphinxAligner
    PocketsphinxAligner().align(audio, ["the", "red", "dog"]).words

See docs/align.md for the method, the mismatch detector and measured accuracy.
"""

from koe.align.importers import Imported, load_alignments, read_ctm, read_textgrid, read_whisperx
from koe.align.mismatch import MismatchRule, detect_mismatches
from koe.align.pocketsphinx import AlignResult, Beams, PocketsphinxAligner

__all__ = [
    "AlignResult", "Beams", "Imported", "MismatchRule", "PocketsphinxAligner", "detect_mismatches",
    "load_alignments", "read_ctm", "read_textgrid", "read_whisperx",
]
