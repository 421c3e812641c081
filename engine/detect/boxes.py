"""Boxes (x0, y0, x1, y1) in pixels, their IoU, and class-aware non-maximum suppression."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Detection:
    """One detected object: its box (x0, y0, x1, y1) in image pixels, score in [0, 1], label, and
    keypoints ((x, y) pixels) where the detector gives any."""

    box: tuple[float, float, float, float]
    score: float
    label: str
    keypoints: tuple[tuple[float, float], ...] = field(default=())


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of boxes a (N, 4) and b (M, 4): (N, M); zero-area boxes give IoU 0."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
        classes: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the boxes kept by greedy NMS, highest score first: a box is dropped when it
    overlaps a kept box of the same class (any class if `classes` is None) by more than
    `iou_threshold`."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    if classes is not None:
        same = classes[order][:, None] == classes[order][None, :]
        iou = torch.where(same, iou, torch.zeros_like(iou))
    keep: list[int] = []
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]
