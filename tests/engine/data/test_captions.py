"""Captions name every visible shape faithfully; the parser recovers them from any template."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from engine.data import (
    Background,
    BackgroundSpec,
    Scene,
    Shape,
    ShapeSpec,
    background_spec,
    caption,
    parse_background,
    parse_caption,
    scene_for_seed,
    scene_specs,
)

N_ROUND_TRIP = 2500


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def test_every_caption_parses_back_to_the_scene() -> None:
    """Round trip over thousands of seeds: shapes (class, colour, size word, position) and the
    background come back exactly."""
    named = 0
    for seed in range(N_ROUND_TRIP):
        scene = scene_for_seed(seed)
        text = caption(scene, _rng(seed + 17))
        specs = scene_specs(scene)
        assert len(specs) == len(scene.shapes)  # sampled scenes keep every shape visible
        assert Counter(parse_caption(text)) == Counter(specs), text
        assert parse_background(text) == background_spec(scene.background), text
        named += len(specs)
    assert named > 2 * N_ROUND_TRIP


def test_captions_are_varied() -> None:
    texts = [caption(scene_for_seed(s), _rng(s)) for s in range(400)]
    assert len(set(texts)) == 400
    openings = Counter(" ".join(t.split()[:2]) for t in texts)
    assert len(openings) > 20
    joined = "\n".join(texts)
    for needle in ("background", "gradient", "gradient from", " and ", "two ", "stars", "circles",
                   "small", "little", "large", "big", "on a", "against", "with", "image of", "grey", "gray"):
        assert needle in joined, needle


def test_caption_wording_depends_only_on_the_generator() -> None:
    scene = scene_for_seed(21)
    assert caption(scene, _rng(3)) == caption(scene, _rng(3))
    assert len({caption(scene, _rng(s)) for s in range(20)}) > 5


def test_size_words_only_when_clearly_small_or_large() -> None:
    scene = Scene(
        Background("white"),
        (
            Shape("star", "red", 0.15, 0.15, 0.07),
            Shape("ring", "blue", 0.5, 0.5, 0.13),
            Shape("cross", "green", 0.75, 0.75, 0.2),
        ),
    )
    for s in range(30):
        text = caption(scene, _rng(s))
        assert re.search(r"(small|little) red star", text), text
        assert re.search(r"\b(an?) blue ring", text), text
        assert re.search(r"(large|big) green cross", text), text


def test_hidden_shapes_are_left_out() -> None:
    front = Shape("square", "blue", 0.5, 0.5, 0.2)
    hidden = Shape("circle", "green", 0.5, 0.5, 0.08)
    scene = Scene(Background("yellow"), (hidden, front))
    assert scene_specs(scene) == [ShapeSpec("square", "blue", "large", "centre")]
    for s in range(10):
        text = caption(scene, _rng(s))
        assert "green" not in text and "circle" not in text
        assert parse_caption(text) == [ShapeSpec("square", "blue", "large", "centre")]


def test_scene_without_shapes_gets_a_background_caption() -> None:
    scene = Scene(Background("blue", "white", "horizontal"), ())
    text = caption(scene, _rng(0))
    assert parse_caption(text) == []
    assert parse_background(text) == BackgroundSpec("blue", "white")


def test_plural_groups_with_positions() -> None:
    shapes = (
        Shape("star", "red", 0.15, 0.15, 0.07),
        Shape("star", "red", 0.85, 0.85, 0.08),
        Shape("star", "red", 0.85, 0.15, 0.075),
        Shape("heart", "pink", 0.5, 0.5, 0.13),
    )
    scene = Scene(Background("black"), shapes)
    for s in range(30):
        text = caption(scene, _rng(s))
        assert re.search(r"three (small|little) red stars", text), text
        assert Counter(parse_caption(text)) == Counter(scene_specs(scene)), text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a red star", [ShapeSpec("star", "red")]),
        ("A big Grey circle in the upper left.", [ShapeSpec("circle", "gray", "large", "top left")]),
        (
            "two blue rings, one on the left and one at the top, and a little orange cross",
            [
                ShapeSpec("ring", "blue", None, "left"),
                ShapeSpec("ring", "blue", None, "top"),
                ShapeSpec("cross", "orange", "small", None),
            ],
        ),
        (
            "three small green crosses, two at the bottom right and one in the centre",
            [ShapeSpec("cross", "green", "small", "bottom right")] * 2
            + [ShapeSpec("cross", "green", "small", "centre")],
        ),
        ("two yellow hearts at the top", [ShapeSpec("heart", "yellow", None, "top")] * 2),
        ("a cat on a sofa", []),
    ],
)
def test_parse_free_text(text: str, expected: list[ShapeSpec]) -> None:
    assert parse_caption(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a red star on a yellow background", BackgroundSpec("yellow")),
        ("a blue-to-white gradient with a red star", BackgroundSpec("blue", "white")),
        ("a red star on a gradient from black to grey", BackgroundSpec("black", "gray")),
        ("a red star", None),
    ],
)
def test_parse_background(text: str, expected: BackgroundSpec | None) -> None:
    assert parse_background(text) == expected


def test_caption_rejects_a_raster_of_another_size() -> None:
    from engine.data import rasterise

    scene = scene_for_seed(0)
    with pytest.raises(ValueError, match="128"):
        caption(scene, _rng(0), raster=rasterise(scene, 256))
