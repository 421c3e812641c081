"""Tiled inference: blend weights sum to one, tiled equals whole-image output, no seams, progress, cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data import HELDOUT_SEEDS, make_sample
from engine.sampling.core import Cancelled, CancelToken
from engine.upscale.pixelshuffle import PixelShuffleSR, load_pixelshuffle_sr
from engine.upscale.registry import builtin_upscaler_dir
from engine.upscale.tiling import axis_spans, tile_count, tiled_peak_bound, tiled_upscale

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model() -> PixelShuffleSR:
    return load_pixelshuffle_sr(builtin_upscaler_dir())


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """A held-out shapes scene widened to 128 x 190, so no tile size divides it."""
    low = make_sample(HELDOUT_SEEDS.start + 7, 512, low_size=128).low_image
    assert low is not None
    return np.ascontiguousarray(np.concatenate([low, low[:, :62]], axis=1))


@pytest.mark.parametrize("size,tile,overlap", [(100, 64, 16), (190, 64, 16), (517, 128, 32), (300, 256, 32), (50, 64, 16)])
def test_weights_are_a_partition_of_unity(size: int, tile: int, overlap: int) -> None:
    total = np.zeros(size * 4)
    for span in axis_spans(size, tile, overlap, 4):
        assert (span.weights >= 0).all() and span.start + span.length <= size
        total[span.start * 4:(span.start + span.length) * 4] += span.weights
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


@pytest.mark.parametrize("tile", [64, 100, 128, 4096])  # 4096: one tile larger than the image
def test_tiled_matches_whole_image(model: PixelShuffleSR, scene: np.ndarray, tile: int) -> None:
    whole = model.upscale(scene).astype(np.int16)
    tiled = tiled_upscale(model, scene, 4, tile, CPU).astype(np.int16)
    assert tiled.shape == whole.shape == (512, 760, 3)
    diff = np.abs(tiled - whole)
    # measured: identical (max 0) for every tile size here; the 8 px blend margin exceeds the model's
    # 7 px receptive field. The pin allows float-order noise.
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_smooth_gradient_has_no_seams(model: PixelShuffleSR) -> None:
    y, x = np.mgrid[0:96, 0:160].astype(np.float32)
    image = np.stack([x / 159 * 255, y / 95 * 255, (x + y) / 254 * 255], axis=-1).round().astype(np.uint8)
    out = tiled_upscale(model, image, 4, 64, CPU).astype(np.int16)
    np.testing.assert_array_equal(out, model.upscale(image))  # measured: identical to the whole-image run
    for axis, size in ((1, 160), (0, 96)):
        steps = np.abs(np.diff(out[8:-8, 8:-8], axis=axis)).max(axis=(1 - axis, 2))  # per output column / row
        edges = {e for s in axis_spans(size, 64, 16, 4)[1:] for e in (4 * s.start - 9, 4 * (s.start - 1) + 256 - 9)}
        at_edges = steps[[e for e in edges if 0 <= e < len(steps)]]
        assert len(at_edges) > 0 and at_edges.max() <= np.median(steps) + 1  # no jump where tiles meet


def test_progress_counts_every_tile(model: PixelShuffleSR, scene: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []
    tiled_upscale(model, scene, 4, 64, CPU, on_tile=lambda done, total: calls.append((done, total)))
    n = tile_count(128, 190, 64)
    assert n == 3 * 4
    assert calls == [(i, n) for i in range(1, n + 1)]


def test_cancel_between_tiles_raises(model: PixelShuffleSR, scene: np.ndarray) -> None:
    token = CancelToken()
    seen: list[int] = []

    def on_tile(done: int, total: int) -> None:
        seen.append(done)
        if done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        tiled_upscale(model, scene, 4, 64, CPU, on_tile=on_tile, cancel=token)
    assert seen == [1, 2]  # the third tile never ran; nothing was returned


def test_a_model_of_the_wrong_scale_is_an_error(scene: np.ndarray) -> None:
    x2 = PixelShuffleSR(features=4, convs=0, scale=2).eval()
    with pytest.raises(ValueError, match="not x4"):
        tiled_upscale(x2, scene, 4, 64, CPU)


@pytest.mark.parametrize("tile", [0, 63, 5000])
def test_bad_tile_size_is_an_error(model: PixelShuffleSR, scene: np.ndarray, tile: int) -> None:
    with pytest.raises(ValueError, match="tile size"):
        tiled_upscale(model, scene, 4, tile, CPU)


def test_peak_bound_grows_with_the_output_not_the_tile_count() -> None:
    bpp = 1484
    small, large = tiled_peak_bound(1024, 1024, 4, 256, bpp), tiled_peak_bound(2048, 2048, 4, 256, bpp)
    # output 48 MiB + two 1024-row float bands 96 MiB + one 256 px tile (93 MiB model, 24 MiB weighted copy), + 10 %
    assert small == int(1.1 * (3 * 4096**2 + 2 * 12 * 1024 * 4096 + bpp * 256**2 + 2 * 12 * 1024**2))
    assert large < 4.1 * small


@pytest.mark.parametrize("size,tile,overlap,align", [(190, 64, 16, 4), (517, 128, 32, 2), (301, 96, 24, 4), (50, 64, 16, 4)])
def test_aligned_tiles_start_on_the_grid_and_still_partition_unity(size: int, tile: int, overlap: int,
                                                                    align: int) -> None:
    spans = axis_spans(size, tile, overlap, 2, align)
    total = np.zeros(size * 2)
    for a, b in zip(spans, spans[1:]):
        assert a.start + a.length - b.start >= overlap  # neighbours share at least the overlap
    for span in spans:
        assert span.start % align == 0 and span.length <= tile and span.start + span.length <= size
        total[span.start * 2:(span.start + span.length) * 2] += span.weights
    assert spans[-1].start + spans[-1].length == size
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
