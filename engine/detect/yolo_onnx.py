"""User-supplied YOLOv8 detectors exported to ONNX (ultralytics `yolo export format=onnx`), run
with onnxruntime or OpenCV DNN.

Pre-processing is ultralytics' LetterBox: resize keeping the aspect ratio, centre on a grey (114)
canvas of the model's input size, RGB / 255 as (1, 3, H, W) float32. The YOLOv8 detect head
(Jocher et al. 2023, anchor-free, no objectness) gives (1, 4 + nc, N): per candidate, box centre
x, y, width, height in input pixels and nc class scores; a candidate's score is its best class
score. Candidates at or above the score threshold go through class-aware NMS, and their boxes are
mapped back through the letterbox and clipped to the image."""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.detect.boxes import Detection, nms
from engine.detect.errors import DetectorError
from engine.detect.onnx_info import ELEM_FLOAT, ELEM_FLOAT16, OnnxFormatError, OnnxInfo, read_onnx_info

DEFAULT_INPUT_SIDE = 640  # ultralytics' default export size, used when the input shape is dynamic
PAD_VALUE = 114  # ultralytics' letterbox grey
IOU_THRESHOLD = 0.7  # ultralytics' `predict` default
MAX_DETECTIONS = 300  # ultralytics' max_det
# The best-scoring candidates that enter NMS (ultralytics' max_nms is 30000, but our NMS builds the
# full IoU matrix: 3000 candidates take 72 MB and about 0.1 s, a whole 8400-candidate head 565 MB).
MAX_CANDIDATES = 3000
ANALYSIS_SIDE = 1280  # larger images are shrunk first: the letterbox shrinks them anyway

Runner = Callable[[np.ndarray], np.ndarray]  # (1, 3, H, W) input -> raw head output


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed in the model input: input = image * scale + (left, top)."""

    scale: float
    left: int
    top: int

    def to_image(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Boxes (N, 4) x0, y0, x1, y1 in input pixels -> image pixels, clipped to the image."""
        out = (boxes - np.array([self.left, self.top, self.left, self.top], dtype=boxes.dtype)) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
        return out


def letterbox(rgb: np.ndarray, height: int, width: int) -> tuple[np.ndarray, Letterbox]:
    """(H, W, 3) uint8 -> the (1, 3, height, width) float32 input in [0, 1] and its placement
    (ultralytics LetterBox with auto=False, scaleup=True, centred)."""
    h, w = rgb.shape[:2]
    r = min(height / h, width / w)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    resized = rgb if (new_w, new_h) == (w, h) else cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (width - new_w) / 2, (height - new_h) / 2
    top, left = int(round(dh - 0.1)), int(round(dw - 0.1))  # ultralytics' rounding of odd padding
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top:top + new_h, left:left + new_w] = resized
    blob = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0  # (1, 3, H, W)
    return np.ascontiguousarray(blob), Letterbox(r, left, top)


def channels_first(shape: tuple[int, ...], num_classes: int | None) -> bool:
    """Whether a head output of `shape` is (1, 4 + nc, N) (True) or the transposed (1, N, 4 + nc).
    With nc unknown the smaller axis is taken for the 4 + nc one (a head has far more candidates
    than classes); a square output is read as ultralytics' own (1, 4 + nc, N)."""
    if len(shape) != 3 or shape[0] != 1:
        raise ValueError(f"expected a YOLOv8 output of shape (1, 4 + classes, N) or (1, N, 4 + classes), got {shape}")
    a, b = shape[1], shape[2]
    if num_classes is None:
        if min(a, b) < 5:
            raise ValueError(f"output shape {shape} has no axis of 4 box values + at least one class")
        return a <= b
    if a == 4 + num_classes:
        return True
    if b == 4 + num_classes:
        return False
    raise ValueError(f"output shape {shape} does not fit 4 box values + {num_classes} classes")


def decode_yolov8(output: np.ndarray, num_classes: int | None, min_score: float,
                  iou_threshold: float = IOU_THRESHOLD, max_detections: int = MAX_DETECTIONS,
                  max_candidates: int = MAX_CANDIDATES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A YOLOv8 head output -> (boxes (K, 4) x0, y0, x1, y1 in input pixels, scores (K,),
    class ids (K,)), best first, after the score threshold and class-aware NMS over the
    `max_candidates` best-scoring candidates."""
    pred = output[0] if channels_first(output.shape, num_classes) else output[0].T  # (4 + nc, N)
    pred = torch.from_numpy(np.ascontiguousarray(pred, dtype=np.float64))
    scores, classes = pred[4:].max(dim=0)
    keep = torch.nonzero(scores >= min_score).squeeze(1)
    if len(keep) > max_candidates:
        keep = keep[torch.argsort(scores[keep], descending=True, stable=True)[:max_candidates]]
    cx, cy, w, h = pred[:4, keep]
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)  # (K, 4)
    scores, classes = scores[keep], classes[keep]
    kept = nms(boxes, scores, iou_threshold, classes)[:max_detections]
    return boxes[kept].numpy(), scores[kept].numpy(), classes[kept].numpy()


def parse_names(text: str) -> tuple[str, ...]:
    """Class names from ultralytics' `names` metadata, a dict literal {0: 'person', 1: ...}."""
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"'names' metadata is not a dict literal ({exc})") from None
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names or sorted(names) != list(range(len(names))) \
            or not all(isinstance(v, str) for v in names.values()):
        raise ValueError(f"'names' metadata must map 0..n-1 to strings, got {text[:80]!r}")
    return tuple(names[i] for i in range(len(names)))


def _input_size(info: OnnxInfo) -> tuple[int, int]:
    """(height, width) of the model input: its static shape, else the `imgsz` metadata, else 640."""
    shape = info.input_shape
    if len(shape) != 4 or shape[1] not in (3, None):
        raise ValueError(f"input {info.input_name!r} has shape {shape}; expected an image (N, 3, H, W)")
    if shape[2] is not None and shape[3] is not None:
        return shape[2], shape[3]
    if "imgsz" not in info.metadata:
        return DEFAULT_INPUT_SIDE, DEFAULT_INPUT_SIDE
    text = info.metadata["imgsz"]
    try:
        size = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        size = None
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise ValueError(f"'imgsz' metadata must be [height, width], got {text[:40]!r}")
    return size[0], size[1]


def _onnxruntime_runner(path: Path, info: OnnxInfo) -> Runner:
    import onnxruntime as ort  # loads only for ONNX detectors

    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
    providers = [p for p in wanted if p in ort.get_available_providers()]
    session = ort.InferenceSession(str(path), providers=providers)
    dtype = np.float16 if info.input_elem_type == ELEM_FLOAT16 else np.float32

    def run(blob: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {info.input_name: blob.astype(dtype)})[0], dtype=np.float32)

    return run


def _opencv_runner(path: Path, info: OnnxInfo) -> Runner:
    net = cv2.dnn.readNetFromONNX(str(path))

    def run(blob: np.ndarray) -> np.ndarray:
        net.setInput(blob)
        return np.asarray(net.forward(), dtype=np.float32)

    return run


BACKENDS: dict[str, Callable[[Path, OnnxInfo], Runner]] = {
    "onnxruntime": _onnxruntime_runner,
    "opencv": _opencv_runner,
}


def _backend_errors() -> tuple[type[BaseException], ...]:
    """What the backends raise for a model they cannot load or run (their own exception types)."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, InvalidGraph, InvalidProtobuf
    from onnxruntime.capi.onnxruntime_pybind11_state import NoSuchFile, RuntimeException
    from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

    return (cv2.error, RuntimeError, Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile,
            OrtNotImplemented, RuntimeException)


class OnnxDetector:
    """A YOLOv8 ONNX model as a Detector."""

    max_side = ANALYSIS_SIDE
    keypoint_names: tuple[str, ...] = ()

    def __init__(self, path: Path, runner: Runner, input_size: tuple[int, int], labels: tuple[str, ...],
                 iou_threshold: float) -> None:
        self.path = path
        self.name = path.name
        self.labels = labels
        self.input_size = input_size  # (height, width)
        self.iou_threshold = iou_threshold
        self._runner: Runner | None = runner

    def raw_output(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """The model's head output for an (H, W, 3) uint8 image, and the letterbox used."""
        if self._runner is None:
            raise DetectorError(f"{self.path}: detector is closed")
        blob, placement = letterbox(rgb, *self.input_size)
        try:
            return self._runner(blob), placement
        except _backend_errors() as exc:
            raise DetectorError(f"{self.path}: the model failed to run ({exc})") from None

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        """Detections in an (H, W, 3) uint8 RGB image with score >= min_score."""
        output, placement = self.raw_output(rgb)
        try:
            boxes, scores, classes = decode_yolov8(output, len(self.labels), min_score, self.iou_threshold)
        except ValueError as exc:
            raise DetectorError(f"{self.path}: {exc}") from None
        boxes = placement.to_image(boxes, rgb.shape[1], rgb.shape[0])
        return [Detection(tuple(float(v) for v in box), float(s), self.labels[int(c)])
                for box, s, c in zip(boxes, scores, classes)
                if box[2] > box[0] and box[3] > box[1]]  # a box wholly in the padding is no object

    def close(self) -> None:
        self._runner = None


def load_onnx_detector(path: Path | str, labels: Sequence[str] | None = None, backend: str = "onnxruntime",
                       iou_threshold: float = IOU_THRESHOLD) -> OnnxDetector:
    """A YOLOv8 ONNX file as a detector. Class names: `labels` if given, else the model's `names`
    metadata, else class_0, class_1, ... The model runs once on a blank image at load, so a file
    whose output is not a YOLOv8 head fails here with its path in the message."""
    path = Path(path)
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
    if backend not in BACKENDS:
        raise DetectorError(f"unknown ONNX backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if not path.is_file():
        raise DetectorError(f"{path}: no such file")
    if labels is not None and (not labels or not all(isinstance(x, str) and x for x in labels)):
        raise DetectorError(f"{path}: labels must be non-empty names, got {list(labels)!r}")
    try:
        info = read_onnx_info(path.read_bytes())
        size = _input_size(info)
        names = tuple(labels) if labels is not None else (
            parse_names(info.metadata["names"]) if "names" in info.metadata else None)
    except OnnxFormatError as exc:
        raise DetectorError(f"{path}: not a readable ONNX model (corrupt or another format: {exc})") from None
    except ValueError as exc:
        raise DetectorError(f"{path}: not a usable ONNX detector ({exc})") from None
    if info.input_elem_type not in (ELEM_FLOAT, ELEM_FLOAT16):
        raise DetectorError(f"{path}: input {info.input_name!r} has element type {info.input_elem_type}, "
                            "expected float or float16")
    try:
        runner = BACKENDS[backend](path, info)
    except _backend_errors() as exc:
        raise DetectorError(f"{path}: {backend} cannot load the model ({exc})") from None
    probe = OnnxDetector(path, runner, size, (), iou_threshold)
    output, _ = probe.raw_output(np.full((*size, 3), PAD_VALUE, dtype=np.uint8))
    try:
        first = channels_first(output.shape, len(names) if names is not None else None)
    except ValueError as exc:
        raise DetectorError(f"{path}: not a YOLOv8 detect head ({exc})") from None
    if names is None:
        names = tuple(f"class_{i}" for i in range((output.shape[1] if first else output.shape[2]) - 4))
    return OnnxDetector(path, runner, size, names, iou_threshold)
