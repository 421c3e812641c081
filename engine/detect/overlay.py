"""Detections drawn on a copy of an image: a box per detection, a "label 0.93" tag, keypoints,
and one colour per label (the same in the studio's overlay)."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from engine.imaging import to_rgb8

if TYPE_CHECKING:  # boxes imports torch; the studio's overlay takes its colours from here
    from engine.detect.boxes import Detection

GOLDEN_RATIO_CONJUGATE = 0.618033988749895  # hue steps that stay far apart for any count


def label_colours(labels: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """A distinct, saturated RGB colour per label, by position (golden-ratio hue steps)."""
    colours: dict[str, tuple[int, int, int]] = {}
    for label in labels:
        if label not in colours:
            hue = (0.05 + len(colours) * GOLDEN_RATIO_CONJUGATE) % 1.0
            r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
            colours[label] = (round(r * 255), round(g * 255), round(b * 255))
    return colours


def tag_text(detection: Detection) -> str:
    """The tag shown by a detection: its label and score, "face 0.93"."""
    return f"{detection.label} {detection.score:.2f}"


def _draw_tag(out: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float,
              thickness: int) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = y - th - base - 2 if y - th - base - 2 >= 0 else y  # above the box, inside it at the edge
    cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 2), colour, cv2.FILLED)
    ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)  # dark text on light tags
    cv2.putText(out, text, (x + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thickness, cv2.LINE_AA)


def draw_detections(image: np.ndarray, detections: Sequence[Detection],
                    labels: Sequence[str] = ()) -> np.ndarray:
    """A new (H, W, 3) uint8 RGB image with the detections drawn; colours follow `labels` (the
    detector's), then any other label in order of appearance. The input is left unchanged."""
    out = to_rgb8(image).copy()
    colours = label_colours([*labels, *(d.label for d in detections)])
    side = max(out.shape[:2])
    thickness = max(1, round(side / 400))
    scale = max(0.35, side / 1400)
    for d in detections:
        colour = colours[d.label]
        x0, y0, x1, y1 = (int(round(v)) for v in d.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thickness)  # axis-aligned: no anti-aliasing needed
        for x, y in d.keypoints:
            if math.isfinite(x) and math.isfinite(y):
                cv2.circle(out, (int(round(x)), int(round(y))), thickness + 1, colour, cv2.FILLED, cv2.LINE_AA)
        _draw_tag(out, tag_text(d), x0, y0, colour, scale, max(1, thickness // 2))
    return out
