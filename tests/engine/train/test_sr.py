"""The built-in x4 upscaler: its SRVGGNetCompact layout, a tiny run end to end, and PSNR sanity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from engine.data import make_sample
from engine.train.loop import setup_run
from engine.train.sr import SRConfig, bicubic_x4, psnr, train_sr
from engine.upscale import CompactSR, load_compact_sr


def test_layout_is_srvgg_compact_and_starts_as_nearest_upsampling() -> None:
    model = CompactSR(features=8, convs=2, scale=4)
    keys = list(model.state_dict())
    assert keys[:3] == ["body.0.weight", "body.0.bias", "body.1.weight"] and keys[-1] == "body.6.bias"
    assert model.body[-1].out_channels == 3 * 16
    with torch.no_grad():
        model.body[-1].weight.zero_()
        model.body[-1].bias.zero_()
    image = make_sample(5, 32).image
    np.testing.assert_array_equal(model.upscale(image), image.repeat(4, 0).repeat(4, 1))


def test_psnr_and_bicubic() -> None:
    sample = make_sample(7, 256, low_size=64)
    assert sample.low_image is not None
    up = bicubic_x4(sample.low_image)
    assert up.shape == sample.image.shape and 15 < psnr(up, sample.image) < 45
    assert psnr(sample.image, sample.image) > 100


def test_tiny_run_saves_a_loadable_upscaler(tmp_path: Path) -> None:
    config = SRConfig(steps=2, scenes_per_step=1, crops_per_scene=2, features=8, convs=1, warmup=1, eval_images=2,
                      train_size=32)
    figures = train_sr(config, setup_run(tmp_path / "sr", "cpu", seed=0), "python -m engine.train sr --steps 2")
    assert json.loads((tmp_path / "sr" / "training.json").read_text())["figures"] == figures
    model = load_compact_sr(tmp_path / "sr")
    assert model.upscale(np.zeros((16, 20, 3), np.uint8)).shape == (64, 80, 3)
