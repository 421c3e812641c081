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
from engine.settings import ControlUnit, Job
from tests.engine.test_settings import FULL_JOB


def _project() -> Project:
    rng = np.random.default_rng(0)
    h, w = 24, 40
    layers = (
        ProjectLayer("a1", "Background", "image", rng.integers(0, 256, (h, w, 4), dtype=np.uint8)),
        ProjectLayer("m1", "Mask", "mask", rng.integers(0, 256, (h, w, 4), dtype=np.uint8), visible=False),
        ProjectLayer("c1", "Scribble", "control", rng.integers(0, 256, (h, w, 4), dtype=np.uint8),
                     opacity=0.5, control_type="scribble"),
    )
    history = (ProjectHistoryItem(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), FULL_JOB, 123.5),
               ProjectHistoryItem(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8), Job(seed=5), 124.0))
    settings = Job(prompt="p", controls=(ControlUnit("scribble", "layer:c1"),))
    return Project(w, h, layers, settings, history, current_layer="c1")


def _assert_equal(a: Project, b: Project) -> None:
    assert (a.width, a.height, a.settings, a.current_layer) == (b.width, b.height, b.settings, b.current_layer)
    assert len(a.layers) == len(b.layers) and len(a.history) == len(b.history)
    for x, y in zip(a.layers, b.layers):
        assert (x.id, x.name, x.kind, x.visible, x.opacity, x.control_type) == (
            y.id, y.name, y.kind, y.visible, y.opacity, y.control_type)
        np.testing.assert_array_equal(x.pixels, y.pixels)
    for x, y in zip(a.history, b.history):
        assert (x.job, x.created) == (y.job, y.created)
        np.testing.assert_array_equal(x.image, y.image)


def test_project_round_trip_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "p.atelier"
    save_project(_project(), path)
    _assert_equal(load_project(path), _project())


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
    ],
    ids=["missing", "garbage", "size", "zero", "format", "version", "kind", "opacity", "visible", "settings", "type"],
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
