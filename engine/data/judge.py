"""Automatic judging of generated shapes-world images against their prompts: the colour check,
without a model, and the class check on the built-in detector's detections (judge_classes).

A colour a prompt gives a shape is "present" when enough pixels lie close to that named colour in
CIE Lab. Colours the background itself passes near (a flat colour, or any colour along a
gradient) cannot be told apart from it and are not judged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.data.captions import parse_background, parse_caption
from engine.data.palette import COLOUR_NAMES, COLOURS, lab_distances_to_background, rgb_to_lab

CLOSE_DELTA_E = 22.0  # a pixel this close (Lab) to a named colour counts for it; the palette is >= 41 apart
BACKGROUND_MARGIN = 30.0  # colours within this of the background ramp are not judged
MIN_AREA_FRACTION = 0.004  # ~65 px at 128 x 128: well under the smallest shape's area
if TYPE_CHECKING:
    from engine.data.dataset import Sample
    from engine.detect.boxes import Detection

_NAMED_LAB = rgb_to_lab(np.array(list(COLOURS.values()), dtype=np.float64))  # (n_colours, 3)


@dataclass(frozen=True)
class ColourVerdict:
    """Per prompted shape colour: judged or not (too close to the background) and present or not."""

    colours: tuple[str, ...]
    judged: tuple[bool, ...]
    present: tuple[bool, ...]

    @property
    def correct(self) -> int:
        return sum(j and p for j, p in zip(self.judged, self.present))

    @property
    def total(self) -> int:
        return sum(self.judged)


def judge_classes(detections: Sequence[Detection], prompt: str, min_score: float = 0.3,
                  iou_threshold: float = 0.5) -> tuple[int, int]:
    """(prompted shapes whose class is found, prompted shapes): a multiset intersection of the prompt's
    classes with the detected ones. Each place counts once, with its best class: detections are put
    through class-agnostic NMS first, so one ambiguous blob that the detector scores both as a circle and
    as a star (which its class-aware NMS keeps) cannot pass for both."""
    found, wanted = judge_classes_by_class(detections, prompt, min_score, iou_threshold)
    return sum(found.values()), sum(wanted.values())


def judge_classes_by_class(detections: Sequence[Detection], prompt: str, min_score: float = 0.3,
                           iou_threshold: float = 0.5) -> tuple[Counter[str], Counter[str]]:
    """judge_classes per class: (found, wanted), each a count per class name, found <= wanted."""
    import torch

    from engine.detect.boxes import nms

    shown = [d for d in detections if d.score >= min_score]
    if shown:
        kept = nms(torch.tensor([d.box for d in shown], dtype=torch.float32),
                   torch.tensor([d.score for d in shown], dtype=torch.float32), iou_threshold)
        shown = [shown[i] for i in kept.tolist()]
    wanted = Counter(spec.cls for spec in parse_caption(prompt))
    return wanted & Counter(d.label for d in shown), wanted


def judge_classes_by_size(detections: Sequence[Detection], sample: Sample, min_score: float = 0.3,
                          iou_threshold: float = 0.5, match_iou: float = 0.3) -> tuple[Counter[str], Counter[str]]:
    """Per size word ("small", "medium", "large"): (found, wanted) shapes of a scene with known labels
    (a held-out scene's render or its reconstruction, not a generated image). A shape is found when the
    detection that overlaps its visible box most (IoU >= match_iou, after the class-agnostic NMS of
    judge_classes_by_class) has its class."""
    import torch

    from engine.data.scene import size_word
    from engine.detect.boxes import box_iou, nms

    shown = [d for d in detections if d.score >= min_score]
    if shown:
        kept = nms(torch.tensor([d.box for d in shown], dtype=torch.float32),
                   torch.tensor([d.score for d in shown], dtype=torch.float32), iou_threshold)
        shown = [shown[i] for i in kept.tolist()]
    found: Counter[str] = Counter()
    wanted: Counter[str] = Counter()
    for label in sample.labels:
        shape = sample.scene.shapes[label.index]
        word = size_word(shape.size)
        wanted[word] += 1
        if shown:
            ious = box_iou(torch.tensor([label.box], dtype=torch.float32),
                           torch.tensor([d.box for d in shown], dtype=torch.float32))[0]
            best = int(ious.argmax())
            found[word] += int(float(ious[best]) >= match_iou and shown[best].label == shape.cls)
    return found, wanted


def colour_areas(image: np.ndarray) -> np.ndarray:
    """Fraction of an (H, W, 3) uint8 image's pixels within CLOSE_DELTA_E of each named colour
    (COLOUR_NAMES order)."""
    lab = rgb_to_lab(image.reshape(-1, 3).astype(np.float64))
    dist = np.linalg.norm(lab[:, None, :] - _NAMED_LAB[None], axis=-1)  # (N, n_colours)
    return (dist < CLOSE_DELTA_E).mean(axis=0)


def judge_colours(image: np.ndarray, prompt: str) -> ColourVerdict:
    """The colour check of one image against the prompt that made it."""
    shapes = parse_caption(prompt)
    background = parse_background(prompt)
    areas = colour_areas(image)
    if background is not None:
        near_bg = lab_distances_to_background(background.colour, background.colour2) < BACKGROUND_MARGIN
    else:
        near_bg = np.zeros(len(COLOUR_NAMES), dtype=bool)
    colours = tuple(dict.fromkeys(s.colour for s in shapes))  # each colour once
    index = {name: i for i, name in enumerate(COLOUR_NAMES)}
    judged = tuple(not near_bg[index[c]] for c in colours)
    present = tuple(bool(areas[index[c]] >= MIN_AREA_FRACTION) for c in colours)
    return ColourVerdict(colours, judged, present)


EDGE_TOLERANCE_PX = 2


def image_edges(image: np.ndarray, low: int = 40, high: int = 120) -> np.ndarray:
    """Canny edges of an (H, W, 3) uint8 image as a bool (H, W) map."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    # Hue-only boundaries (red on green of equal lightness) vanish in grey: take the strongest channel edge too.
    edges = cv2.Canny(grey, low, high) > 0
    for c in range(3):
        edges |= cv2.Canny(np.ascontiguousarray(image[..., c]), low, high) > 0
    return edges


def edge_f1(control: np.ndarray, image: np.ndarray, tolerance: int = EDGE_TOLERANCE_PX) -> float:
    """F1 between an edge control map ((H, W, 3) or (H, W); edges bright) and the edges of an image,
    a pixel counting as matched within `tolerance` px (the usual boundary-F1 slack)."""
    import cv2

    target = (control.max(axis=-1) if control.ndim == 3 else control) > 127
    found = image_edges(image)
    if not target.any() and not found.any():
        return 1.0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1, 2 * tolerance + 1))
    near_target = cv2.dilate(target.astype(np.uint8), kernel) > 0
    near_found = cv2.dilate(found.astype(np.uint8), kernel) > 0
    precision = float((found & near_target).sum() / max(found.sum(), 1))
    recall = float((target & near_found).sum() / max(target.sum(), 1))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
