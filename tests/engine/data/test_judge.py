"""The colour check that judges generated images: it passes the scenes' own renders and fails
images that lack the prompted colours."""

from __future__ import annotations

import numpy as np

from engine.data import HELDOUT_SEEDS, make_sample
from engine.data.judge import judge_classes, judge_classes_by_class, judge_classes_by_size, judge_colours


def test_the_scenes_own_renders_pass_the_colour_check() -> None:
    correct = total = 0
    for seed in range(HELDOUT_SEEDS.start, HELDOUT_SEEDS.start + 60):
        sample = make_sample(seed)
        verdict = judge_colours(sample.image, sample.caption)
        correct, total = correct + verdict.correct, total + verdict.total
    assert total >= 60 and correct / total >= 0.97


def test_an_image_without_the_colours_fails() -> None:
    gray = np.full((128, 128, 3), 128, np.uint8)
    verdict = judge_colours(gray, "a red star and a blue ring on a white background")
    assert verdict.colours == ("red", "blue") and verdict.judged == (True, True) and verdict.correct == 0
    # One red patch: red is present, blue is not.
    gray[40:60, 40:60] = (220, 30, 30)
    assert judge_colours(gray, "a red star and a blue ring on a white background").present == (True, False)


def test_colours_the_background_passes_near_are_not_judged() -> None:
    image = np.zeros((128, 128, 3), np.uint8)
    verdict = judge_colours(image, "an orange circle on a red to yellow gradient")
    assert verdict.colours == ("orange",) and verdict.judged == (False,) and verdict.total == 0


def test_edge_f1_of_a_scenes_render_against_its_edge_map_is_high_and_of_a_blank_image_zero() -> None:
    from engine.data.judge import edge_f1

    scores = []
    for seed in range(HELDOUT_SEEDS.start, HELDOUT_SEEDS.start + 20):
        sample = make_sample(seed, controls=("edges",))
        assert sample.edges is not None
        scores.append(edge_f1(sample.edges, sample.image))
        assert edge_f1(sample.edges, np.zeros_like(sample.image)) == 0.0
    assert np.mean(scores) > 0.95
    other = make_sample(HELDOUT_SEEDS.start + 99, controls=("edges",))
    assert edge_f1(other.edges, make_sample(HELDOUT_SEEDS.start).image) < 0.5  # a different scene's edges


def test_each_place_counts_once_with_its_best_class() -> None:
    from engine.detect.boxes import Detection

    prompt = "a red star at the top left and a blue circle at the bottom right on a white background"
    star, circle = Detection((4.0, 4.0, 30.0, 30.0), 0.9, "star"), Detection((90.0, 90.0, 120.0, 120.0), 0.8, "circle")
    assert judge_classes([star, circle], prompt) == (2, 2)
    # one blob scored as a star and, a little lower, as a circle: it is a star, the circle is missing
    blob_circle = Detection((5.0, 5.0, 31.0, 30.0), 0.6, "circle")
    assert judge_classes([star, blob_circle], prompt) == (1, 2)
    assert judge_classes([Detection(circle.box, 0.2, "circle"), star], prompt) == (1, 2)  # under min_score
    assert judge_classes([star, Detection((60.0, 4.0, 90.0, 30.0), 0.9, "star")], prompt) == (1, 2)  # one star wanted


def test_classes_are_judged_per_class() -> None:
    from engine.detect.boxes import Detection

    prompt = "a red star at the top left, a blue star at the top right and a green cross at the bottom on a white background"
    star = Detection((4.0, 4.0, 30.0, 30.0), 0.9, "star")
    blob = Detection((90.0, 4.0, 120.0, 30.0), 0.8, "circle")  # the second star came out round
    cross = Detection((50.0, 90.0, 80.0, 120.0), 0.7, "cross")
    found, wanted = judge_classes_by_class([star, blob, cross], prompt)
    assert wanted == {"star": 2, "cross": 1}
    assert found == {"star": 1, "cross": 1}  # the circle was not asked for and counts for nothing
    assert judge_classes([star, blob, cross], prompt) == (2, 3)


def test_classes_are_judged_per_size_at_each_shapes_own_box() -> None:
    from engine.data.scene import size_word
    from engine.detect.boxes import Detection

    sample = next(s for s in (make_sample(seed) for seed in range(HELDOUT_SEEDS.start, HELDOUT_SEEDS.start + 200))
                  if len({size_word(sh.size) for sh in s.scene.shapes}) >= 2)
    shapes = [sample.scene.shapes[label.index] for label in sample.labels]
    words = [size_word(shape.size) for shape in shapes]
    right = [Detection(label.box, 0.9, shape.cls) for label, shape in zip(sample.labels, shapes)]
    found, wanted = judge_classes_by_size(right, sample)
    assert wanted == found and sum(wanted.values()) == len(sample.labels)
    assert set(wanted) == set(words)
    # the first shape drawn as another class: only its size loses a hit
    other = "circle" if shapes[0].cls != "circle" else "star"
    found, _ = judge_classes_by_size([Detection(sample.labels[0].box, 0.9, other)] + right[1:], sample)
    assert found[words[0]] == wanted[words[0]] - 1 and sum(found.values()) == len(sample.labels) - 1
    # a right class far from the shape's box (IoU < 0.3) is no hit, and no detections find nothing
    x0, y0, x1, y1 = sample.labels[0].box
    moved = Detection((x0 + 2 * (x1 - x0), y0, x1 + 2 * (x1 - x0), y1), 0.9, shapes[0].cls)
    assert judge_classes_by_size([moved], sample)[0][words[0]] <= wanted[words[0]] - 1
    assert sum(judge_classes_by_size([], sample)[0].values()) == 0
