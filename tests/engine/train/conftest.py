"""Shared fixtures of the training tests: a tiny built-in model trained end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.train.flow import FlowConfig, train_flow
from engine.train.loop import setup_run
from engine.train.vqgan import train_vqgan
from tests.engine.train.test_train import TINY

TINY_FLOW = FlowConfig(steps=3, batch_size=4, warmup=1, train_scenes=8, text_hidden=32, text_layers=1, text_heads=2,
                       block_out_channels=(16, 16, 16), attention_heads=2, eval_scenes=4)


@pytest.fixture(scope="session")
def tiny_builtin(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A tiny VQGAN and flow model trained for a few steps: the built-in model's shape."""
    root = tmp_path_factory.mktemp("builtin")
    train_vqgan(dataclasses.replace(TINY, latent_channels=8), setup_run(root / "vq", "cpu", seed=0), "test")  # as shipped
    folder = root / "atelier-shapes"
    train_flow(TINY_FLOW, setup_run(folder, "cpu", seed=0, bf16=False), "python -m engine.train flow --steps 3",
               root / "vq")
    return folder
