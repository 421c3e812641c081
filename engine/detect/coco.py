"""Detections as a COCO-format dataset (Lin et al. 2014, cocodataset.org/#format-data): images,
annotations with bbox [x, y, w, h], area, score and keypoints [x, y, v, ...], and categories;
pycocotools' COCO() loads it and COCO.loadRes() accepts its annotations as results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from engine.detect.boxes import Detection

VISIBLE = 2  # COCO keypoint visibility: labelled and visible; 0 = not labelled (x = y = 0)


class CocoImage(NamedTuple):
    """One image and what was found in it (a plain (file_name, width, height, detections) tuple works too)."""

    file_name: str
    width: int
    height: int
    detections: Sequence[Detection]


def _keypoints(points: Sequence[tuple[float, float]], width: int, height: int) -> tuple[list[float], int]:
    """Flat [x, y, v, ...] triples: keypoints that are unknown (NaN) or outside the image get
    v = 0 with x = y = 0, as COCO writes an unlabelled point; the others v = 2."""
    flat: list[float] = []
    count = 0
    for x, y in points:
        if math.isfinite(x) and math.isfinite(y) and 0 <= x <= width and 0 <= y <= height:
            flat += [round(x, 2), round(y, 2), VISIBLE]
            count += 1
        else:
            flat += [0, 0, 0]
    return flat, count


def _categories(images: Sequence[CocoImage], categories: Sequence[str] | None) -> list[str]:
    if categories is not None:
        if len(set(categories)) != len(categories):
            raise ValueError(f"categories repeat a name: {list(categories)}")
        return list(categories)
    seen: dict[str, None] = {}
    for image in images:
        for d in image.detections:
            seen.setdefault(d.label, None)
    return list(seen)


def to_coco(images: Sequence[CocoImage | tuple[str, int, int, Sequence[Detection]]],
            categories: Sequence[str] | None = None, keypoint_names: Sequence[str] = (),
            description: str = "detections by Atelier") -> dict[str, Any]:
    """A COCO dataset dict of `images` and their detections. Category ids are 1, 2, ... in the
    order of `categories` (default: labels in order of first appearance); `keypoint_names`
    (the detector's, if it gives keypoints) is recorded on every category."""
    entries = [CocoImage(*image) for image in images]
    names = _categories(entries, categories)
    ids = {name: i for i, name in enumerate(names, start=1)}
    out_images, annotations = [], []
    for image_id, image in enumerate(entries, start=1):
        if image.width < 1 or image.height < 1:
            raise ValueError(f"{image.file_name}: image size must be positive, got {image.width} x {image.height}")
        out_images.append({"id": image_id, "file_name": image.file_name, "width": image.width,
                           "height": image.height})
        for d in image.detections:
            if d.label not in ids:
                raise ValueError(f"{image.file_name}: label {d.label!r} is not among the categories {names}")
            x0, y0, x1, y1 = d.box
            w, h = x1 - x0, y1 - y0
            ann: dict[str, Any] = {"id": len(annotations) + 1, "image_id": image_id, "category_id": ids[d.label],
                                   "bbox": [round(x0, 2), round(y0, 2), round(w, 2), round(h, 2)],
                                   "area": round(w * h, 2), "iscrowd": 0, "score": round(d.score, 5)}
            if d.keypoints:
                ann["keypoints"], ann["num_keypoints"] = _keypoints(d.keypoints, image.width, image.height)
            annotations.append(ann)
    cats: list[dict[str, Any]] = []
    for name, i in ids.items():
        cat: dict[str, Any] = {"id": i, "name": name, "supercategory": "object"}
        if keypoint_names:
            cat["keypoints"], cat["skeleton"] = list(keypoint_names), []
        cats.append(cat)
    return {"info": {"description": description}, "images": out_images, "annotations": annotations,
            "categories": cats}
