"""Project files round-trip exactly; broken files give clear errors and never half-load."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.project import (
    Project,
    ProjectError,
    ProjectHistoryItem,
    ProjectLayer,
    load_project,
    project_bytes,
    project_from_bytes,
    save_project,
)
from engine.control import draw_pose
from engine.settings import ControlUnit, Job
from tests.engine.control.images import stick_figure
from tests.engine.test_settings import FULL_JOB


def _project() -> Project:
    rng = np.random.default_rng(0)
    h, w = 24, 40
    layers = (
        ProjectLayer("a1", "Background", "image", rng.integers(0, 256, (h, w, 4), dtype=np.uint8)),
        ProjectLayer("m1", "Mask", "mask", rng.integers(0, 256, (h, w, 4), dtype=np.uint8), visible=False),
        ProjectLayer("c1", "Scribble", "control", rng.integers(0, 256, (h, w, 4), dtype=np.uint8),
                     opacity=0.5, control_type="scribble", tint=(0, 200, 255)),
        ProjectLayer("p1", "Pose", "control", _pose_pixels(w, h), control_type="pose", tint=(255, 0, 200),
                     pose=stick_figure(24)),
    )
    history = (ProjectHistoryItem(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), FULL_JOB, 123.5),
               ProjectHistoryItem(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8), Job(seed=5), 124.0))
    settings = Job(prompt="p", controls=(ControlUnit("scribble", "layer:c1"),))
    return Project(w, h, layers, settings, history, current_layer="c1")


def _pose_pixels(w: int, h: int) -> np.ndarray:
    rgb = draw_pose(stick_figure(24), w, h)  # (H, W, 3)
    return np.dstack([rgb, np.full((h, w), 255, np.uint8)])  # (H, W, 4)


def _assert_equal(a: Project, b: Project) -> None:
    assert (a.width, a.height, a.settings, a.current_layer) == (b.width, b.height, b.settings, b.current_layer)
    assert len(a.layers) == len(b.layers) and len(a.history) == len(b.history)
    for x, y in zip(a.layers, b.layers):
        assert (x.id, x.name, x.kind, x.visible, x.opacity, x.control_type, x.tint, x.pose) == (
            y.id, y.name, y.kind, y.visible, y.opacity, y.control_type, y.tint, y.pose)
        np.testing.assert_array_equal(x.pixels, y.pixels)
    for x, y in zip(a.history, b.history):
        assert (x.job, x.created) == (y.job, y.created)
        np.testing.assert_array_equal(x.image, y.image)


def test_project_round_trip_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "p.atelier"
    save_project(_project(), path)
    loaded = load_project(path)
    _assert_equal(loaded, _project())
    assert loaded.layers[3].pose == stick_figure(24) and loaded.layers[3].tint == (255, 0, 200)
    assert loaded.layers[0].pose is None and loaded.layers[0].tint is None


def test_projects_from_before_tints_and_poses_still_load() -> None:
    def drop_new_keys(manifest, files) -> None:  # type: ignore[no-untyped-def]
        for layer in manifest["layers"]:
            del layer["tint"], layer["pose"]

    loaded = project_from_bytes(_mutated(drop_new_keys))
    assert [(layer.tint, layer.pose) for layer in loaded.layers] == [(None, None)] * 4
    for x, y in zip(loaded.layers, _project().layers):
        np.testing.assert_array_equal(x.pixels, y.pixels)


def test_a_bad_pose_is_a_layer_problem_not_a_settings_one() -> None:
    with pytest.raises(ProjectError) as info:
        project_from_bytes(_mutated(lambda m, f: m["layers"][3]["pose"][0]["body"][0].update(visibility=2)))
    assert str(info.value) == "project: layers[3].pose[0].body[0]: visibility must be within [0, 1], got 2.0"


def test_pose_keypoints_only_on_control_layers() -> None:
    pixels = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="only control layers keep pose keypoints"):
        ProjectLayer("a", "A", "image", pixels, pose=stick_figure())
    with pytest.raises(ValueError, match="tint must be"):
        ProjectLayer("c", "C", "control", pixels, control_type="canny", tint=(0, 0, 256))


def _mutated(edit) -> bytes:  # type: ignore[no-untyped-def]
    src = zipfile.ZipFile(io.BytesIO(project_bytes(_project())))
    files = {i.filename: src.read(i) for i in src.infolist()}
    manifest = json.loads(files["manifest.json"])
    edit(manifest, files)
    files["manifest.json"] = json.dumps(manifest).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m, f: f.pop("layers/a1.png"), "missing layers/a1.png"),
        (lambda m, f: f.__setitem__("layers/a1.png", b"garbage"), "not a readable PNG"),
        (lambda m, f: m.update(width=41), "the canvas is 41x24"),
        (lambda m, f: m.update(width=0), "impossible canvas size"),
        (lambda m, f: m.update(format="other"), "not an Atelier project"),
        (lambda m, f: m.update(version=9), "unsupported project version"),
        (lambda m, f: m["layers"][0].update(kind="sticker"), "layers[0].kind"),
        (lambda m, f: m["layers"][1].update(opacity=3), "opacity must be between"),
        (lambda m, f: m["layers"][1].update(visible="yes"), "layers[1].visible has the wrong type"),
        (lambda m, f: m["settings"].update(steps=-1), "invalid settings: steps"),
        (lambda m, f: m.update(layers={}), "layers has the wrong type"),
        (lambda m, f: m["layers"][3]["pose"][0]["body"][1].update(x="left"), "layers[3].pose[0].body[1].x: expected a number"),
        (lambda m, f: m["layers"][3]["pose"][0]["body"].pop(), "layers[3].pose[0]: body needs 18 points"),
        (lambda m, f: m["layers"][3].update(pose={}), "layers[3].pose has the wrong type"),
        (lambda m, f: m["layers"][0].update(pose=[]), "layers[0].pose: only control layers keep pose keypoints"),
        (lambda m, f: m["layers"][2].update(tint=[0, 300, 0]), "layers[2].tint must be [r, g, b]"),
        (lambda m, f: m["layers"][2].update(control_type=None), "layers[2].control_type is needed on control layers"),
        (lambda m, f: m["layers"][0].update(control_type="canny"), "got 'canny' for kind 'image'"),
    ],
    ids=["missing", "garbage", "size", "zero", "format", "version", "kind", "opacity", "visible", "settings", "type",
         "pose-field", "pose-count", "pose-type", "pose-kind", "tint", "untyped-control", "typed-image"],
)
def test_broken_projects_name_the_problem(edit, fragment: str) -> None:
    with pytest.raises(ProjectError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        project_from_bytes(_mutated(edit))


def test_not_a_zip_and_truncated(tmp_path: Path) -> None:
    path = tmp_path / "x.atelier"
    path.write_bytes(b"hello")
    with pytest.raises(ProjectError, match="not a zip"):
        load_project(path)
    data = project_bytes(_project())
    with pytest.raises(ProjectError):
        project_from_bytes(data[: len(data) // 2])
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "absent.atelier")


def test_failed_save_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "p.atelier"
    save_project(_project(), path)
    before = path.read_bytes()
    bad = Project(10, 10, (ProjectLayer("x", "x", "image", np.zeros((5, 5, 4), np.uint8)),))
    with pytest.raises(ValueError, match="pixels must be"):
        save_project(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.atelier"]
