"""`atelier detect`: COCO JSON and overlay from image files of several formats, ONNX detectors
with labels and backend, and one clear line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from engine.detect.registry import DETECTORS
from studio.cli import main
from tests.engine.detect.test_yolo_onnx import GREY_200, MEAN_R, NAMES, _head
from tests.engine.detect.tiny_onnx import build_yolo_onnx


def test_help_lists_the_detectors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in DETECTORS) and ".onnx" in help_text


@pytest.mark.parametrize("mode", ["RGB", "I;16", "RGBA"])
def test_detect_writes_coco_json_and_an_overlay(tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    rgb = data.astronaut()
    image = {"RGB": lambda: Image.fromarray(rgb),
             "I;16": lambda: Image.fromarray(rgb[:, :, 1].astype(np.uint16) * 257),  # 16-bit grey
             "RGBA": lambda: Image.fromarray(np.dstack([rgb, np.full((512, 512), 255, np.uint8)]))}[mode]()
    image.save(tmp_path / "astronaut.png")
    out, overlay = tmp_path / "faces.json", tmp_path / "faces.png"
    code = main(["detect", str(tmp_path / "astronaut.png"), "--detector", "haar-face", "--min-score", "0.5",
                 "-o", str(out), "--overlay", str(overlay)])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [f"1 detection: {out}", str(overlay)]
    coco = json.loads(out.read_text())
    assert coco["images"] == [{"id": 1, "file_name": "astronaut.png", "width": 512, "height": 512}]
    assert coco["categories"] == [{"id": 1, "name": "face", "supercategory": "object"}]
    face, = coco["annotations"]
    x, y, w, h = face["bbox"]
    assert 170 < x < 185 and 60 < y < 75 and 85 < w < 100 and h == w and face["score"] > 0.9
    drawn = np.asarray(Image.open(overlay))
    original = np.asarray(Image.open(tmp_path / "astronaut.png").convert("RGB"))
    assert drawn.shape == (512, 512, 3) and (drawn != original).any()


def test_detect_with_an_onnx_file_labels_and_opencv(tmp_path: Path) -> None:
    bias, weights = _head()
    model = build_yolo_onnx(tmp_path / "pets.onnx", bias, weights, names=NAMES)
    Image.fromarray(GREY_200).save(tmp_path / "grey.png")
    out = tmp_path / "pets.json"
    code = main(["detect", str(tmp_path / "grey.png"), "--detector", str(model), "--labels", "kitten,puppy",
                 "--backend", "opencv", "--min-score", "0.3", "-o", str(out)])
    assert code == 0
    coco = json.loads(out.read_text())
    assert [c["name"] for c in coco["categories"]] == ["kitten", "puppy"]
    assert [(a["category_id"], a["bbox"]) for a in coco["annotations"]] == [(1, [27.5, 13.75, 25.0, 12.5]),
                                                                            (2, [40.0, 12.5, 20.0, 10.0])]
    assert coco["annotations"][1]["score"] == pytest.approx(MEAN_R, abs=1e-4)


def test_bad_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.fromarray(GREY_200).save(tmp_path / "grey.png")
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    cases = [
        (["grey.png", "--detector", "retinaface"], "unknown detector 'retinaface'"),
        (["broken.png"], "broken.png: not a readable image"),
        (["absent.png"], "absent.png: no such file"),
        (["grey.png", "--detector", str(tmp_path / "broken.onnx")], "broken.onnx: not a readable ONNX model"),
        (["grey.png", "--labels", "a,b"], "apply to .onnx detectors only"),
    ]
    for args, fragment in cases:
        args = [str(tmp_path / args[0]), *args[1:], "-o", str(tmp_path / "out.json")]
        assert main(["detect", *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("atelier: error:") and fragment in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out.json").exists()
