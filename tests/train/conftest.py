"""Session fixtures for the training tests (the builders live in train_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_fixtures import make_pretrained, make_token_data, text_tokenizer


@pytest.fixture(autouse=True)
def one_thread():
    """The machine's few cores are shared: one intra-op thread is faster than two fighting over them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def token_data(tmp_path_factory) -> Path:
    return make_token_data(tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="session")
def pretrained_dir(tmp_path_factory) -> Path:
    return make_pretrained(tmp_path_factory.mktemp("pretrained") / "model", vocab_size=len(text_tokenizer()))

