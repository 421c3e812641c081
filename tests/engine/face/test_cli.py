"""`atelier faces`: faces as JSON, aligned crops with faces.json, and one clear line when there is
no face."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.face import ALIGNERS, SOURCES, FiveLandmarks, arcface_template
from engine.face.cli import METHODS
from engine.face.cli import SOURCES as CLI_SOURCES
from engine.face.export import LANDMARK_ORDER
from engine.face.similarity import apply_affine
from studio.cli import main


@pytest.fixture()
def astronaut_png(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


def test_choices_match_the_registries() -> None:
    assert METHODS == tuple(ALIGNERS) and CLI_SOURCES == ("auto", *SOURCES)
    assert LANDMARK_ORDER == tuple(FiveLandmarks.__dataclass_fields__)[:5]


def test_prints_the_faces_as_json(astronaut_png: Path, astronaut_face: FiveLandmarks,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faces", str(astronaut_png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["width"] == 512 and out["height"] == 512 and out["landmark_order"] == list(LANDMARK_ORDER)
    (face,) = out["faces"]
    assert face["source"] == "mediapipe"
    np.testing.assert_allclose(face["landmarks"], astronaut_face.points, atol=1e-3)
    np.testing.assert_allclose(face["box"], astronaut_face.box, atol=1e-3)


@pytest.mark.parametrize("method", ["arcface", "ffhq"])
def test_align_writes_crops_and_faces_json(astronaut_png: Path, tmp_path: Path, method: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "faces"
    assert main(["faces", str(astronaut_png), "--align", "--size", "256", "--method", method, "-o", str(out_dir)]) == 0
    assert capsys.readouterr().out.split() == [str(out_dir / "face_000.png")]
    record = json.loads((out_dir / "faces.json").read_text())
    assert record["method"] == method and record["size"] == 256 and record["image"] == str(astronaut_png)
    (face,) = record["faces"]
    crop = np.asarray(Image.open(out_dir / face["file"]))
    assert crop.shape == (256, 256, 3)
    matrix = np.array(face["matrix"])
    np.testing.assert_allclose(apply_affine(matrix, np.array(face["landmarks"])), face["crop_landmarks"], atol=2e-3)
    if method == "arcface":
        np.testing.assert_allclose(face["crop_landmarks"][:2], arcface_template(256)[:2], atol=0.5)


def test_source_can_be_forced(astronaut_png: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faces", str(astronaut_png), "--source", "haar"]) == 0
    assert [f["source"] for f in json.loads(capsys.readouterr().out)["faces"]] == ["haar"]


def test_no_face_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 400), 128, np.uint8)).save(blank)
    out_dir = tmp_path / "out"
    assert main(["faces", str(blank), "--align", "-o", str(out_dir)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"atelier: error: {blank}: no face found in the 400x300 image (tried mediapipe, dlib, haar)"]
    assert not out_dir.exists()


def test_sixteen_bit_grey_file(tmp_path: Path, astronaut: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "grey16.png"
    grey = (astronaut.mean(axis=2) * 257).astype(np.uint16)
    Image.fromarray(grey).save(path)
    assert main(["faces", str(path)]) == 0
    assert len(json.loads(capsys.readouterr().out)["faces"]) == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["--align"], "give the folder with -o DIR"), (["-o", "out"], "without --align"), ([], "no such file")],
)
def test_user_errors_are_one_line(tmp_path: Path, astronaut_png: Path, args: list[str], fragment: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    image = str(astronaut_png) if args else str(tmp_path / "absent.png")
    assert main(["faces", image, *args]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and fragment in err


def test_bad_size_is_refused(astronaut_png: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["faces", str(astronaut_png), "--size", "4"])
    assert info.value.code == 2 and "at least 8 px" in capsys.readouterr().err
