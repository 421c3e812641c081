"""Box IoU, class-aware NMS against a plain reference, and the mAP evaluator against pycocotools."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from engine.detect import box_iou, mean_average_precision, nms
from engine.detect.evaluate import COCO_THRESHOLDS


def _random_boxes(rng: np.random.Generator, n: int, size: float = 100.0) -> np.ndarray:
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(4, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def _iou_one(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_box_iou_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    got = box_iou(torch.tensor(a), torch.tensor(b)).numpy()
    want = np.array([[_iou_one(x, y) for y in b] for x in a])
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert box_iou(torch.tensor([[0.0, 0, 0, 0]]), torch.tensor([[0.0, 0, 0, 0]])).item() == 0.0


def _reference_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float) -> list[int]:
    keep: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: (-scores[k], k)):
        if all(classes[i] != classes[j] or _iou_one(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_class_aware_nms_matches_a_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 60, size=60)
    scores, classes = rng.uniform(size=60), rng.integers(0, 3, 60)
    got = nms(torch.tensor(boxes), torch.tensor(scores), 0.45, torch.tensor(classes)).tolist()
    assert got == _reference_nms(boxes, scores, classes, 0.45)
    agnostic = nms(torch.tensor(boxes), torch.tensor(scores), 0.45).tolist()
    assert agnostic == _reference_nms(boxes, scores, np.zeros(60, int), 0.45)
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def _random_case(rng: np.random.Generator, images: int, classes: int):  # type: ignore[no-untyped-def]
    gts, dets = [], []
    for _ in range(images):
        g = _random_boxes(rng, int(rng.integers(0, 6)))
        gl = rng.integers(0, classes, len(g))
        # detections: jittered copies of some ground truth plus random false positives
        jitter = g + rng.normal(0, 4, g.shape)
        pick = rng.uniform(size=len(g)) < 0.8
        d = np.concatenate([jitter[pick], _random_boxes(rng, int(rng.integers(0, 5)))])
        dl = np.concatenate([np.where(rng.uniform(size=int(pick.sum())) < 0.85, gl[pick],
                                      rng.integers(0, classes, int(pick.sum()))),
                             rng.integers(0, classes, len(d) - int(pick.sum()))])
        d[:, 2:] = np.maximum(d[:, 2:], d[:, :2] + 1)
        gts.append((g, gl))
        dets.append((d, rng.uniform(size=len(d)), dl))
    return gts, dets


def pycocotools_map(gts, dets, iou_thresholds) -> float:  # type: ignore[no-untyped-def]
    """The same mAP computed by pycocotools' COCOeval (area range all, 100 detections)."""
    coco_module = pytest.importorskip("pycocotools.coco")
    cocoeval_module = pytest.importorskip("pycocotools.cocoeval")
    categories = sorted({int(c) for _, labels in gts for c in labels} | {int(c) for *_, labels in dets for c in labels})
    gt = coco_module.COCO()
    annotations, results = [], []
    for image_id, (boxes, labels) in enumerate(gts):
        for box, label in zip(boxes, labels):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "bbox": [float(box[0]), float(box[1]), float(w), float(h)], "area": float(w * h),
                                "iscrowd": 0})
    for image_id, (boxes, scores, labels) in enumerate(dets):
        for box, score, label in zip(boxes, scores, labels):
            results.append({"image_id": image_id, "category_id": int(label), "score": float(score),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    gt.dataset = {"images": [{"id": i} for i in range(len(gts))], "annotations": annotations,
                  "categories": [{"id": c} for c in categories]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(results) if results else coco_module.COCO()
        ev = cocoeval_module.COCOeval(gt, dt, "bbox")
        ev.params.iouThrs = np.array(iou_thresholds)
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.params.maxDets = [100]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K)
    return float(np.mean(precision[precision > -1]))


@pytest.mark.parametrize("seed", range(6))
def test_map_agrees_with_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    gts, dets = _random_case(rng, images=12, classes=3)
    for thresholds in ((0.5,), COCO_THRESHOLDS):
        ours = mean_average_precision(gts, dets, thresholds)
        assert abs(ours - pycocotools_map(gts, dets, list(thresholds))) < 1e-3


def test_perfect_and_empty_detections() -> None:
    rng = np.random.default_rng(3)
    gts = [(_random_boxes(rng, 3), np.array([0, 1, 1])) for _ in range(4)]
    perfect = [(g, np.linspace(1, 0.5, len(g)), labels) for g, labels in gts]
    assert mean_average_precision(gts, perfect, COCO_THRESHOLDS) == pytest.approx(1.0)
    empty = [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)) for _ in gts]
    assert mean_average_precision(gts, empty) == 0.0
