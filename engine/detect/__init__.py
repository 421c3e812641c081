"""Detection: the Detection type, box utilities and class-aware NMS, the mAP evaluator, and the
built-in shapes detector (a YOLO-style grid detector)."""

from engine.detect.boxes import Detection, box_iou, nms
from engine.detect.evaluate import average_precision, mean_average_precision

__all__ = ["Detection", "average_precision", "box_iou", "mean_average_precision", "nms"]
