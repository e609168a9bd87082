"""Shared test fixtures: the location of ../shared/data and a quiet progress bar."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KOE_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the project root; tests that need it skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the project in development and CI)")
    return SHARED_DATA
