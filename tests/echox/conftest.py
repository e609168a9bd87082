from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "s2t"))  # the tiny-model fixtures of tests/s2t
