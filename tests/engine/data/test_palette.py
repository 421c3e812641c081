"""The named palette is well separated and the colour judge names colours reliably."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.data import COLOUR_NAMES, COLOURS, SEGMENTATION_COLOURS, SHAPE_CLASSES, colour_of
from engine.data.palette import colour_ids_of, lab_distances_to_background, rgb_to_lab


def test_enough_classes_and_colours() -> None:
    assert len(SHAPE_CLASSES) >= 6 and len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES)
    assert len(COLOURS) >= 8
    assert set(SEGMENTATION_COLOURS) == set(SHAPE_CLASSES)


def test_rgb_to_lab_reference_values() -> None:
    # CIE L*a*b* (D65) of sRGB white, black and pure red (standard published values).
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]]))
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.1)


def test_palette_colours_are_well_separated_in_lab() -> None:
    lab = rgb_to_lab(np.array(list(COLOURS.values())))
    closest = min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(lab, 2))
    assert closest > 40.0


def test_segmentation_palette_is_distinct_and_not_black() -> None:
    colours = list(SEGMENTATION_COLOURS.values())
    assert len(set(colours)) == len(colours)
    assert (0, 0, 0) not in colours


@pytest.mark.parametrize("name", COLOUR_NAMES)
def test_judge_names_each_palette_colour(name: str) -> None:
    assert colour_of(COLOURS[name]) == name


def test_judge_survives_mild_noise() -> None:
    rng = np.random.Generator(np.random.PCG64(7))
    base = np.array(list(COLOURS.values()), np.float64)  # (C, 3)
    noisy = np.clip(base[:, None, :] + rng.normal(0.0, 6.0, size=(len(base), 400, 3)), 0, 255)
    ids = colour_ids_of(noisy)  # (C, 400)
    assert (ids == np.arange(len(base))[:, None]).all()
    # and one triple at a time, through the public function
    assert colour_of(np.array(COLOURS["purple"]) + [8, -6, 5]) == "purple"


def test_judge_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one RGB triple"):
        colour_of([1, 2])
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        colour_of([300, 0, 0])


def test_background_distance_covers_the_whole_gradient() -> None:
    dist = dict(zip(COLOUR_NAMES, lab_distances_to_background("red", "yellow")))
    assert dist["red"] == pytest.approx(0.0, abs=1e-9) and dist["yellow"] == pytest.approx(0.0, abs=1e-9)
    # orange lies between red and yellow: close to the ramp although it is neither end
    assert dist["orange"] < 20.0
    assert dist["blue"] > 60.0
