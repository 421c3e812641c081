"""Average precision as COCO computes it (pycocotools' COCOeval, area range "all"): per class,
detections in descending score order are matched greedily to the unmatched ground-truth box of
highest IoU at or above the threshold; precision is made monotone from the right and sampled at
101 recall points (0, 0.01, ..., 1); AP is their mean. mAP averages over classes with ground
truth, and mAP@0.5:0.95 over the ten IoU thresholds 0.5, 0.55, ..., 0.95."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.detect.boxes import box_iou

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))

# One image: (boxes (N, 4), labels (N,)) for ground truth; (boxes, scores, labels) for detections.
GroundTruth = tuple[np.ndarray, np.ndarray]
Detections = tuple[np.ndarray, np.ndarray, np.ndarray]


def _matches(gt_boxes: np.ndarray, det_boxes: np.ndarray, threshold: float) -> np.ndarray:
    """For detections already in descending score order: whether each matched a ground truth."""
    if len(det_boxes) == 0:
        return np.zeros(0, dtype=bool)
    if len(gt_boxes) == 0:
        return np.zeros(len(det_boxes), dtype=bool)
    iou = box_iou(torch.as_tensor(det_boxes, dtype=torch.float64), torch.as_tensor(gt_boxes, dtype=torch.float64))
    iou = iou.numpy()
    taken = np.zeros(len(gt_boxes), dtype=bool)
    hit = np.zeros(len(det_boxes), dtype=bool)
    for d in range(len(det_boxes)):
        best, best_iou = -1, min(threshold, 1 - 1e-10)
        for g in range(len(gt_boxes)):
            if not taken[g] and iou[d, g] >= best_iou:
                best, best_iou = g, iou[d, g]
        if best >= 0:
            taken[best], hit[d] = True, True
    return hit


def average_precision(scores: np.ndarray, hits: np.ndarray, n_gt: int) -> float:
    """101-point interpolated AP from every detection's score and match flag over a dataset."""
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone from the right
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(sampled.mean())


def mean_average_precision(ground_truth: Sequence[GroundTruth], detections: Sequence[Detections],
                           thresholds: Sequence[float] = (0.5,), max_detections: int = 100) -> float:
    """mAP over classes (those with ground truth) and the given IoU thresholds."""
    if len(ground_truth) != len(detections):
        raise ValueError("one detection set per image is needed")
    classes = sorted({int(c) for _, labels in ground_truth for c in labels})
    aps = []
    for threshold in thresholds:
        for cls in classes:
            scores, hits, n_gt = [], [], 0
            for (gt_boxes, gt_labels), (boxes, det_scores, labels) in zip(ground_truth, detections):
                mine = np.asarray(labels) == cls  # COCO keeps the top max_detections per image and class
                keep = np.argsort(-np.asarray(det_scores)[mine], kind="mergesort")[:max_detections]
                boxes, det_scores = np.asarray(boxes).reshape(-1, 4)[mine][keep], np.asarray(det_scores)[mine][keep]
                g = np.asarray(gt_boxes).reshape(-1, 4)[np.asarray(gt_labels) == cls]
                n_gt += len(g)
                scores.append(det_scores)
                hits.append(_matches(g, boxes, threshold))
            aps.append(average_precision(np.concatenate(scores), np.concatenate(hits), n_gt))
    return float(np.nanmean(aps)) if aps else float("nan")
