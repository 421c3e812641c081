"""YOLOv8 ONNX detectors: the header reader against onnx's own parser, letterboxing, decoding and
class-aware NMS against a plain reference, and tiny models run with onnxruntime and OpenCV DNN
whose boxes are computed by hand (including the letterbox of a non-square image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from engine.detect.errors import DetectorError
from engine.detect.onnx_info import OnnxFormatError, read_onnx_info
from engine.detect.registry import detect, open_detector
from engine.detect.yolo_onnx import PAD_VALUE, decode_yolov8, letterbox, load_onnx_detector, parse_names
from tests.engine.detect.test_boxes_and_map import _iou_one, _reference_nms
from tests.engine.detect.tiny_onnx import build_yolo_onnx

BACKENDS = ("onnxruntime", "opencv")
NAMES = {0: "cat", 1: "dog"}
GREY_200 = np.full((40, 80, 3), 200, np.uint8)  # h 40, w 80: letterboxed into 64 x 64 at r = 0.8, top pad 16
MEAN_R = (2048 * 200 + 2048 * 114) / 4096 / 255  # half the 64 x 64 input is image, half padding


def _head() -> tuple[np.ndarray, np.ndarray]:
    """Bias and weights of a 2-class head with 8 candidates (cx, cy, w, h in input pixels); the
    last three score 0."""
    bias = np.zeros((6, 8))
    bias[:, 0] = [32, 32, 20, 10, 0.9, 0.1]  # cat 0.9
    bias[:, 1] = [40, 30, 16, 8, 0.0, 0.0]  # dog, scored by the weights below: mean R of the input
    bias[:, 2] = [33, 32, 20, 10, 0.5, 0.0]  # cat 0.5, IoU 190/210 with candidate 0: suppressed
    bias[:, 3] = [32, 4, 20, 8, 0.8, 0.0]  # cat 0.8 but wholly in the top padding: no object
    bias[:, 4] = [10, 30, 8, 8, 0.2, 0.1]  # below the threshold
    weights = np.zeros((6, 8, 3))
    weights[5, 1, 0] = 1.0
    return bias, weights


# Candidate 0: x0 y0 x1 y1 = (22, 27, 42, 37) in the input; minus (left 0, top 16), / 0.8.
# Candidate 1: (32, 26, 48, 34) -> (40, 12.5, 60, 22.5).
EXPECTED = [("cat", 0.9, (27.5, 13.75, 52.5, 26.25)), ("dog", MEAN_R, (40.0, 12.5, 60.0, 22.5))]


def _check(found: list, expected: list) -> None:  # type: ignore[type-arg]
    assert [d.label for d in found] == [e[0] for e in expected]
    for d, (_, score, box) in zip(found, expected):
        assert d.score == pytest.approx(score, abs=2e-5)
        np.testing.assert_allclose(d.box, box, atol=1e-4)


def test_header_reader_agrees_with_onnx(tmp_path: Path) -> None:
    bias, weights = _head()
    for hw in [(64, 96), None]:
        path = build_yolo_onnx(tmp_path / f"m{hw is None}.onnx", bias, weights, hw, NAMES, metadata={"stride": "32"})
        info = read_onnx_info(path.read_bytes())
        model = onnx.load(str(path))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert info.input_name == model.graph.input[0].name == "images"
        assert info.input_shape == tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        assert info.input_shape == ((1, 3, *hw) if hw else (None, 3, None, None))
        assert info.metadata == {p.key: p.value for p in model.metadata_props}
        assert parse_names(info.metadata["names"]) == ("cat", "dog")
    with pytest.raises(OnnxFormatError):
        read_onnx_info(path.read_bytes()[: len(path.read_bytes()) // 2])


def test_letterbox_pads_a_wide_image_top_and_bottom() -> None:
    blob, placement = letterbox(GREY_200, 64, 64)
    assert blob.shape == (1, 3, 64, 64) and blob.dtype == np.float32
    assert (placement.scale, placement.left, placement.top) == (0.8, 0, 16)
    np.testing.assert_array_equal(blob[0, :, :16], PAD_VALUE / 255)
    np.testing.assert_array_equal(blob[0, :, 48:], PAD_VALUE / 255)
    np.testing.assert_allclose(blob[0, :, 16:48], 200 / 255)
    assert blob[0, 0].mean() == pytest.approx(MEAN_R)
    # odd padding splits as ultralytics does: round(dw - 0.1) before, the rest after
    _, tall = letterbox(np.zeros((64, 33, 3), np.uint8), 64, 64)
    assert (tall.left, tall.top, tall.scale) == (15, 0, 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transposed", [False, True])
def test_tiny_model_gives_the_hand_computed_detections(tmp_path: Path, backend: str, transposed: bool) -> None:
    bias, weights = _head()
    path = build_yolo_onnx(tmp_path / "tiny.onnx", bias, weights, (64, 64), NAMES, transposed)
    detector = load_onnx_detector(path, backend=backend)
    assert detector.labels == ("cat", "dog") and detector.input_size == (64, 64)
    _check(detector.detect(GREY_200, 0.3), EXPECTED)
    _check(detector.detect(GREY_200, 0.7), EXPECTED[:1])
    detector.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_input_uses_640_or_the_imgsz_metadata(tmp_path: Path, backend: str) -> None:
    bias = np.zeros((6, 1))
    bias[:, 0] = [320, 320, 160, 80, 0.0, 0.75]
    model = build_yolo_onnx(tmp_path / "dyn.onnx", bias, None, None, NAMES)
    detector = load_onnx_detector(model, backend=backend)
    assert detector.input_size == (640, 640)  # r = 8, top pad 160: (240, 280, 400, 360) -> (30, 15, 50, 25)
    _check(detector.detect(GREY_200, 0.5), [("dog", 0.75, (30.0, 15.0, 50.0, 25.0))])
    sized = build_yolo_onnx(tmp_path / "sized.onnx", bias / np.array([[2], [2], [2], [2], [1], [1]]), None, None,
                            NAMES, metadata={"imgsz": "[320, 320]"})
    detector = load_onnx_detector(sized, backend=backend)
    assert detector.input_size == (320, 320)
    _check(detector.detect(GREY_200, 0.5), [("dog", 0.75, (30.0, 15.0, 50.0, 25.0))])


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_precision_input(tmp_path: Path, backend: str) -> None:
    bias, weights = _head()
    path = build_yolo_onnx(tmp_path / "half.onnx", bias, weights, names=NAMES, half_input=True)
    assert read_onnx_info(path.read_bytes()).input_elem_type == 10  # FLOAT16
    found = load_onnx_detector(path, backend=backend).detect(GREY_200, 0.3)
    assert [d.label for d in found] == ["cat", "dog"]
    assert found[1].score == pytest.approx(MEAN_R, abs=1e-3)  # the input went through float16


def test_bad_metadata_and_arguments(tmp_path: Path) -> None:
    bias, weights = _head()
    for metadata, message in [({"names": "['a', 'b'"}, "'names' metadata is not a dict literal"),
                              ({"names": "{1: 'a', 2: 'b'}"}, "must map 0..n-1 to strings"),
                              ({"imgsz": "640"}, "'imgsz' metadata must be \\[height, width\\]")]:
        path = build_yolo_onnx(tmp_path / "meta.onnx", bias, weights, None, metadata=metadata)
        with pytest.raises(DetectorError, match=f"meta.onnx: not a usable ONNX detector .*{message}"):
            load_onnx_detector(path)
    with pytest.raises(ValueError, match="iou_threshold"):
        load_onnx_detector(path, iou_threshold=0.0)
    with pytest.raises(DetectorError, match="labels must be non-empty names"):
        load_onnx_detector(path, labels=["a", ""])


def test_class_names_from_labels_or_numbered(tmp_path: Path) -> None:
    bias, weights = _head()
    plain = build_yolo_onnx(tmp_path / "plain.onnx", bias, weights)
    assert load_onnx_detector(plain).labels == ("class_0", "class_1")
    assert load_onnx_detector(plain, labels=["kitten", "puppy"]).labels == ("kitten", "puppy")
    with pytest.raises(DetectorError, match=r"plain\.onnx.*does not fit 4 box values \+ 3 classes"):
        load_onnx_detector(plain, labels=["a", "b", "c"])
    found = detect(np.dstack([GREY_200, np.full((40, 80), 255, np.uint8)]), str(plain), 0.3, labels=["k", "p"])
    _check(found, [("k", 0.9, EXPECTED[0][2]), ("p", MEAN_R, EXPECTED[1][2])])  # RGBA input, via the registry


def test_corrupt_file_and_wrong_output_shape_are_clear_errors(tmp_path: Path) -> None:
    bias, weights = _head()
    good = build_yolo_onnx(tmp_path / "good.onnx", bias, weights, names=NAMES).read_bytes()
    cases = {
        "text.onnx": (b"this is not a model\n", "not a readable ONNX model"),
        "truncated.onnx": (good[: len(good) // 2], "not a readable ONNX model"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        for backend in BACKENDS:
            with pytest.raises(DetectorError, match=rf"{name}: {message}"):
                load_onnx_detector(tmp_path / name, backend=backend)
    narrow = build_yolo_onnx(tmp_path / "narrow.onnx", np.zeros((3, 7)))
    wrong = build_yolo_onnx(tmp_path / "wrong.onnx", bias, weights, names={0: "only"})
    for backend in BACKENDS:
        with pytest.raises(DetectorError, match=r"narrow\.onnx: not a YOLOv8 detect head.*\(1, 3, 7\)"):
            load_onnx_detector(narrow, backend=backend)
        with pytest.raises(DetectorError, match=r"wrong\.onnx: not a YOLOv8 detect head.*\(1, 6, 8\)"):
            load_onnx_detector(wrong, backend=backend)
    with pytest.raises(DetectorError, match="absent.onnx: no such file"):
        open_detector(str(tmp_path / "absent.onnx"))
    with pytest.raises(DetectorError, match="unknown ONNX backend 'tensorrt'"):
        load_onnx_detector(tmp_path / "good.onnx", backend="tensorrt")


def _reference_decode(pred: np.ndarray, min_score: float, iou: float) -> list[tuple[int, float, list[float]]]:
    """Plain-python YOLOv8 decoding of a (4 + nc, N) prediction: best class, threshold, class-aware NMS."""
    boxes, scores, classes = [], [], []
    for n in range(pred.shape[1]):
        cls = max(range(4, pred.shape[0]), key=lambda c: (pred[c, n], -c)) - 4
        cx, cy, w, h = pred[:4, n]
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        scores.append(pred[4 + cls, n])
        classes.append(cls)
    candidates = [n for n in range(len(boxes)) if scores[n] >= min_score]
    cand_boxes = np.array([boxes[n] for n in candidates]).reshape(-1, 4)
    kept = _reference_nms(cand_boxes, np.array([scores[n] for n in candidates]),
                          np.array([classes[n] for n in candidates]), iou)
    return [(classes[candidates[k]], scores[candidates[k]], boxes[candidates[k]]) for k in kept]


@pytest.mark.parametrize("seed", range(6))
def test_decoding_and_class_aware_nms_match_a_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nc, n = 3, 150
    pred = np.concatenate([rng.uniform(0, 40, (2, n)), rng.uniform(8, 40, (2, n)), rng.uniform(0, 1, (nc, n))])
    pred = pred.astype(np.float32).astype(np.float64)  # what a float32 head gives
    want = _reference_decode(pred, 0.3, 0.45)
    candidates = int((pred[4:].max(axis=0) >= 0.3).sum())
    assert 10 < len(want) < 0.8 * candidates  # the case exercises suppression and survival both
    for output in (pred[None], pred.T[None]):  # (1, 4 + nc, N) and the transposed layout
        boxes, scores, classes = decode_yolov8(output, nc, 0.3, 0.45)
        assert classes.tolist() == [w[0] for w in want]
        np.testing.assert_allclose(scores, [w[1] for w in want], atol=1e-6)
        np.testing.assert_allclose(boxes, [w[2] for w in want], atol=1e-4)
    same_class = [(i, j) for i in range(len(want)) for j in range(i) if want[i][0] == want[j][0]]
    assert all(_iou_one(np.array(want[i][2]), np.array(want[j][2])) <= 0.45 for i, j in same_class)
    capped = decode_yolov8(pred[None], nc, 0.3, 0.45, max_candidates=40)
    best_40 = pred[:, np.argsort(-pred[4:].max(axis=0), kind="stable")[:40]]
    np.testing.assert_allclose(capped[0], [w[2] for w in _reference_decode(best_40, 0.3, 0.45)], atol=1e-4)
