"""Detection: the Detection type, box utilities and class-aware NMS, the mAP evaluator, the
built-in shapes detector (a YOLO-style grid detector), the registry of detectors (mediapipe,
Haar cascades, shapes, YOLOv8 ONNX files), COCO export and overlay drawing.

Exports load on first use, so the command line can list the detectors without loading torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import lazy_getattr

_EXPORTS: dict[str, str] = {
    "Detection": "engine.detect.boxes",
    "box_iou": "engine.detect.boxes",
    "nms": "engine.detect.boxes",
    "average_precision": "engine.detect.evaluate",
    "mean_average_precision": "engine.detect.evaluate",
    "DetectorError": "engine.detect.errors",
    "DETECTORS": "engine.detect.registry",
    "Detector": "engine.detect.registry",
    "detect": "engine.detect.registry",
    "open_detector": "engine.detect.registry",
    "run_detector": "engine.detect.registry",
    "load_onnx_detector": "engine.detect.yolo_onnx",
    "CocoImage": "engine.detect.coco",
    "to_coco": "engine.detect.coco",
    "draw_detections": "engine.detect.overlay",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from engine.detect.boxes import Detection, box_iou, nms
    from engine.detect.coco import CocoImage, to_coco
    from engine.detect.errors import DetectorError
    from engine.detect.evaluate import average_precision, mean_average_precision
    from engine.detect.overlay import draw_detections
    from engine.detect.registry import DETECTORS, Detector, detect, open_detector, run_detector
    from engine.detect.yolo_onnx import load_onnx_detector


__getattr__ = lazy_getattr(__name__, _EXPORTS)
