"""Segmentation, tile and shuffle: exact partitions of flat colours, detail removal with the
low frequencies kept, and a seeded warp that keeps the colours."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.control import SegParams, ShuffleParams, TileParams, seg, shuffle, tile
from engine.control.seg import PALETTE
from tests.engine.control.images import astronaut, blocks

FLAT = np.array([[20, 20, 20], [200, 30, 40], [30, 160, 60], [40, 60, 210], [240, 240, 90]], np.uint8)


def labels_of(image: np.ndarray) -> np.ndarray:
    """(H, W) index of each pixel's colour among the image's distinct colours."""
    _, inverse = np.unique(image.reshape(-1, 3), axis=0, return_inverse=True)
    return inverse.reshape(image.shape[:2])


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_seg_reproduces_a_partition_of_k_flat_colours_exactly(seed: int) -> None:
    image = blocks(FLAT, 8, (12, 16), seed=seed)  # 96 x 128, 5 colours in 8 px blocks
    out = seg(image, SegParams(clusters=5, blur=0.0, seed=seed))
    truth, found = labels_of(image), labels_of(out)
    pairs = set(zip(truth.ravel().tolist(), found.ravel().tolist()))
    assert len(pairs) == 5 and len({a for a, _ in pairs}) == 5 and len({b for _, b in pairs}) == 5  # a bijection
    assert {tuple(c) for c in out.reshape(-1, 3)} == set(PALETTE[:5])
    assert tuple(out[truth == 0][0]) == PALETTE[0]  # clusters are ordered by lightness: the darkest first


def test_seg_with_more_clusters_than_colours_and_determinism() -> None:
    image = blocks(FLAT[:3], 8, (8, 8))
    out = seg(image, SegParams(clusters=8, blur=0.0))
    assert len(np.unique(out.reshape(-1, 3), axis=0)) == 3  # no cluster is invented
    photo = np.ascontiguousarray(astronaut()[::2, ::2])
    first = seg(photo, SegParams(clusters=6, seed=3))
    np.testing.assert_array_equal(seg(photo, SegParams(clusters=6, seed=3)), first)
    assert len(np.unique(first.reshape(-1, 3), axis=0)) == 6


def test_tile_keeps_flat_and_smooth_images_and_removes_fine_detail() -> None:
    flat = np.full((64, 96, 3), (10, 120, 240), np.uint8)
    np.testing.assert_array_equal(tile(flat, TileParams(factor=8)), flat)
    photo = astronaut()
    np.testing.assert_array_equal(tile(photo, TileParams(factor=1.0, blur=0.0)), photo)
    ramp = np.repeat(np.tile(np.linspace(0, 255, 128), (128, 1)).astype(np.uint8)[:, :, None], 3, axis=2)
    assert np.abs(tile(ramp, TileParams(factor=4)).astype(int) - ramp)[8:-8, 8:-8].max() <= 2
    checker = (np.indices((128, 128)).sum(0) % 2 * 255).astype(np.uint8)  # period 2: all fine detail
    assert np.abs(tile(checker, TileParams(factor=4)).astype(int) - 128)[4:-4, 4:-4].max() <= 1


def test_tile_is_the_photo_averaged_over_factor_sized_cells() -> None:
    """Each cell's mean survives: the map, area-averaged back down by the factor, is the photo's
    own area average within rounding and the cubic's small overshoot."""
    photo = astronaut()
    out = tile(photo, TileParams(factor=8))
    cells = cv2.resize(photo, (64, 64), interpolation=cv2.INTER_AREA).astype(int)
    again = cv2.resize(out, (64, 64), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(again - cells)[2:-2, 2:-2].mean() < 5
    assert np.abs(out.astype(int) - photo).mean() > 5  # but detail is gone
    blurred = tile(photo, TileParams(factor=8, blur=3.0))
    assert np.abs(np.diff(blurred.astype(int), axis=1)).mean() < np.abs(np.diff(out.astype(int), axis=1)).mean()


def test_shuffle_is_seeded_and_keeps_the_colour_histogram() -> None:
    colors = np.array([[230, 30, 30], [30, 200, 40], [20, 40, 220], [240, 240, 240]], np.uint8)
    image = blocks(colors, 16, (32, 32), seed=5)  # 512 x 512, four colours in equal expected shares
    out = shuffle(image, ShuffleParams(seed=11, scale=64))
    np.testing.assert_array_equal(shuffle(image, ShuffleParams(seed=11, scale=64)), out)
    assert not np.array_equal(shuffle(image, ShuffleParams(seed=12, scale=64)), out)
    assert (out != image).any(axis=2).mean() > 0.5  # the layout really changed
    share_in = [(image == c).all(axis=2).mean() for c in colors]
    share_out = [(out == c).all(axis=2).mean() for c in colors]
    assert sum(share_out) > 0.85  # nearly every pixel is one of the input colours (blends only at seams)
    assert np.abs(np.array(share_out) / sum(share_out) - share_in).max() < 0.05
    flat = np.full((40, 60, 3), 77, np.uint8)
    np.testing.assert_array_equal(shuffle(flat), flat)
