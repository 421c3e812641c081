"""The built-in x4 upscaler: it starts as bicubic upsampling, a tiny run end to end, and PSNR sanity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from engine.data import make_sample
from engine.train.loop import setup_run
from engine.train.sr import SRConfig, bicubic_x4, psnr, train_sr
import pytest
import torch.nn.functional as F

from engine.upscale import PixelShuffleSR, load_pixelshuffle_sr


def test_untrained_model_is_exact_bicubic_upsampling() -> None:
    model = PixelShuffleSR(features=8, convs=1, scale=4)
    assert model.body[-1].out_channels == 3 * 16
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(x), F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False))
        model.body[-1].bias.fill_(0.1)  # the residual is the pixel-shuffled last convolution
        assert torch.allclose(model(x) - F.interpolate(x, scale_factor=4, mode="bicubic"), torch.tensor(0.1))


def test_bad_shapes_and_foreign_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bad PixelShuffleSR"):
        PixelShuffleSR(features=8, convs=1, scale=1)
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "SRVGGNetCompact"}))
    with pytest.raises(ValueError, match="not an Atelier PixelShuffle upscaler"):
        load_pixelshuffle_sr(tmp_path)


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
    model = load_pixelshuffle_sr(tmp_path / "sr")
    assert model.upscale(np.zeros((16, 20, 3), np.uint8)).shape == (64, 80, 3)


def test_edge_crops_hold_an_edge() -> None:
    from engine.train.sr import _crop_origin, _edge_pixels

    config = SRConfig(edge_crops=1.0, crop=16, train_size=128)
    image = make_sample(11, 128).image
    edges = _edge_pixels(image)
    assert 0 < len(edges[0]) < 0.2 * 128 * 128  # edges are a small part of a scene
    mask = np.zeros((128, 128), bool)
    mask[edges] = True
    rng = np.random.default_rng(0)
    for _ in range(50):
        y, x = _crop_origin(edges, config, rng)
        assert 0 <= y <= 112 and 0 <= x <= 112 and mask[y:y + 16, x:x + 16].any()
