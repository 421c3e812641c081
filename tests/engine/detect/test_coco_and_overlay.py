"""COCO export checked with pycocotools (the dataset loads, loadRes takes its annotations, and
evaluating them against themselves gives AP 1), and the drawn overlay."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.detect.boxes import Detection
from engine.detect.coco import CocoImage, to_coco
from engine.detect.overlay import draw_detections, label_colours, tag_text

FACE = Detection((10.0, 20.0, 50.0, 70.0), 0.93, "face", ((20.0, 30.0), (40.0, 30.0), (math.nan, math.nan)))
HAND = Detection((60.0, 5.0, 90.0, 45.0), 0.5, "hand")
SECOND = Detection((5.0, 5.0, 25.0, 35.0), 0.81, "face", ((10.0, 10.0), (130.0, 10.0), (12.0, 20.0)))


def _quiet_coco(dataset: dict) -> COCO:  # type: ignore[type-arg]
    coco = COCO()
    coco.dataset = json.loads(json.dumps(dataset))  # what a file round trip gives
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def test_coco_export_fields() -> None:
    out = to_coco([CocoImage("a.png", 120, 80, [FACE, HAND]), ("b.png", 100, 60, [SECOND])],
                  keypoint_names=("left", "right", "nose"))
    assert [c["name"] for c in out["categories"]] == ["face", "hand"]
    assert out["categories"][0]["keypoints"] == ["left", "right", "nose"]
    face, hand, second = out["annotations"]
    assert face["bbox"] == [10.0, 20.0, 40.0, 50.0] and face["area"] == 2000.0 and face["score"] == 0.93
    assert face["keypoints"] == [20.0, 30.0, 2, 40.0, 30.0, 2, 0, 0, 0] and face["num_keypoints"] == 2
    assert "keypoints" not in hand and hand["category_id"] == 2
    assert second["image_id"] == 2 and second["keypoints"][3:6] == [0, 0, 0]  # x 130 lies outside 100 px
    assert [a["id"] for a in out["annotations"]] == [1, 2, 3]
    with pytest.raises(ValueError, match="label 'hand' is not among the categories"):
        to_coco([("a.png", 120, 80, [HAND])], categories=["face"])
    with pytest.raises(ValueError, match="image size must be positive"):
        to_coco([("a.png", 0, 80, [])])


def test_coco_export_round_trips_through_pycocotools() -> None:
    dataset = to_coco([("a.png", 120, 80, [FACE, HAND]), ("b.png", 100, 60, [SECOND])], categories=["face", "hand"])
    gt = _quiet_coco(dataset)
    assert sorted(gt.getImgIds()) == [1, 2] and gt.getCatIds(catNms=["hand"]) == [2]
    assert len(gt.getAnnIds(imgIds=[1])) == 2
    with contextlib.redirect_stdout(io.StringIO()):
        results = gt.loadRes(json.loads(json.dumps(dataset["annotations"])))
        evaluation = COCOeval(gt, results, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert results.getAnnIds() == [1, 2, 3]
    assert evaluation.stats[0] == pytest.approx(1.0)  # every detection matches itself


def test_overlay_draws_boxes_tags_and_keypoints_in_label_colours() -> None:
    image = np.zeros((80, 120), np.uint8)  # grey in, RGB out
    drawn = draw_detections(image, [FACE, HAND], labels=("face", "hand"))
    assert drawn.shape == (80, 120, 3) and image.max() == 0  # the input is not touched
    colours = label_colours(["face", "hand"])
    assert colours["face"] != colours["hand"]
    assert len(set(label_colours([f"c{i}" for i in range(12)]).values())) == 12
    assert tuple(drawn[45, 10]) == colours["face"]  # left edge of the face box, below its tag
    assert tuple(drawn[30, 90]) == colours["hand"]  # right edge of the hand box
    assert tuple(drawn[40, 30]) == (0, 0, 0)  # inside the face box: not filled
    assert tuple(drawn[30, 40]) == colours["face"]  # a keypoint dot
    assert tag_text(FACE) == "face 0.93"
    tag = drawn[:20, 10:50]  # the face tag sits above the box, on a face-coloured ground with dark text
    assert (tag == colours["face"]).all(axis=-1).mean() > 0.4 and (tag.sum(axis=-1) < 100).any()
