from __future__ import annotations

import pytest
from s2t_fixtures import save_hubert, save_llm, save_whisper


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2t_models")
    return {"whisper": save_whisper(root / "whisper"), "hubert": save_hubert(root / "hubert"),
            "llm": save_llm(root / "llm")}
