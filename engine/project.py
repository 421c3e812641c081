"""Project files: the whole canvas (layers, mask, control layers), history and settings.

A project is a zip holding one PNG per layer and per history image plus ``manifest.json``; a
control layer's tint and a pose layer's keypoints live in its manifest entry (both optional, so
projects written before them still load, and older readers skip them). Writing is atomic
(temporary file, then rename), so a crash mid-save never destroys the last good file; reading
checks every entry and reports what is wrong.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from engine.control.pose import PoseKeypoints
from engine.metadata import metadata_texts
from engine.metadata.png import png_bytes_with_text
from engine.settings import Job, SettingsError, job_from_dict, job_to_dict
from engine.settings.files import write_atomic

PROJECT_FORMAT = "atelier-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".atelier"
MAX_ENTRY_BYTES = 512 * 1024 * 1024
MAX_ENTRIES = 10_000
LayerKind = Literal["image", "mask", "control"]
LAYER_KINDS: tuple[str, ...] = ("image", "mask", "control")


class ProjectError(ValueError):
    """A project file cannot be read or written, with the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class ProjectLayer:
    """One canvas layer: (H, W, 4) uint8 RGBA pixels (straight alpha), how it is shown (`tint`: the
    RGB a control map is shown in) and, for a pose control layer, the keypoints its map was drawn from."""

    id: str
    name: str
    kind: LayerKind
    pixels: np.ndarray = field(repr=False)
    visible: bool = True
    opacity: float = 1.0
    control_type: str | None = None
    tint: tuple[int, int, int] | None = None
    pose: tuple[PoseKeypoints, ...] | None = None

    def __post_init__(self) -> None:
        if self.pose is not None and self.kind != "control":
            raise ValueError(f"layer {self.name!r}: only control layers keep pose keypoints, not {self.kind} layers")
        if self.tint is not None and not _is_rgb(self.tint):
            raise ValueError(f"layer {self.name!r}: tint must be (r, g, b) integers 0-255, got {self.tint!r}")


def _is_rgb(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value))


@dataclass(frozen=True)
class ProjectHistoryItem:
    """One history entry: an (H, W, 3) uint8 result and the job that made it."""

    image: np.ndarray = field(repr=False)
    job: Job
    created: float = 0.0


@dataclass(frozen=True)
class Project:
    """Everything the studio needs to restore a session."""

    width: int
    height: int
    layers: tuple[ProjectLayer, ...]
    settings: Job = Job()
    history: tuple[ProjectHistoryItem, ...] = ()
    current_layer: str | None = None


def _png(array: np.ndarray, texts: dict[str, str] | None = None) -> bytes:
    return png_bytes_with_text(Image.fromarray(array), texts or {})


def project_bytes(project: Project) -> bytes:
    """Encode a project as zip bytes (layers stored losslessly as PNG)."""
    layers = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for layer in project.layers:
            if layer.pixels.shape != (project.height, project.width, 4) or layer.pixels.dtype != np.uint8:
                raise ValueError(f"layer {layer.name!r}: pixels must be ({project.height}, {project.width}, 4) "
                                 f"uint8, got {layer.pixels.shape} {layer.pixels.dtype}")
            name = f"layers/{layer.id}.png"
            zf.writestr(name, _png(layer.pixels))
            pose = None if layer.pose is None else [person.to_dict() for person in layer.pose]
            layers.append({"id": layer.id, "name": layer.name, "kind": layer.kind, "visible": layer.visible,
                           "opacity": layer.opacity, "control_type": layer.control_type, "file": name,
                           "tint": None if layer.tint is None else list(layer.tint), "pose": pose})
        history = []
        for i, item in enumerate(project.history):
            name = f"history/{i:04d}.png"
            zf.writestr(name, _png(item.image, metadata_texts(item.job)))
            history.append({"file": name, "settings": job_to_dict(item.job), "created": item.created})
        manifest = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "width": project.width,
                    "height": project.height, "layers": layers, "current_layer": project.current_layer,
                    "settings": job_to_dict(project.settings), "history": history}
        zf.writestr("manifest.json", json.dumps(manifest, indent=1))
    return buf.getvalue()


def save_project(project: Project, path: Path) -> None:
    """Write a project file atomically."""
    write_atomic(Path(path), project_bytes(project))


def _read_entry(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ValueError(f"missing {name}") from None
    if info.file_size > MAX_ENTRY_BYTES:
        raise ValueError(f"{name} is too large ({info.file_size} bytes)")
    return zf.read(info)


def _read_png(zf: zipfile.ZipFile, name: str, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(_read_entry(zf, name))) as im:
            im.load()
            if size is not None and im.size != size:
                raise ValueError(f"{name} is {im.size[0]}x{im.size[1]}, the canvas is {size[0]}x{size[1]}")
            return np.asarray(im.convert(mode)).copy()
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"{name} is not a readable PNG ({exc})") from None


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ValueError(f"{what} has the wrong type ({type(value).__name__})")
    return value


def _layer(zf: zipfile.ZipFile, entry: Any, size: tuple[int, int], i: int) -> ProjectLayer:
    entry = _expect(entry, dict, f"layers[{i}]")
    kind = entry.get("kind")
    if kind not in LAYER_KINDS:
        raise ValueError(f"layers[{i}].kind must be one of {LAYER_KINDS}, got {kind!r}")
    opacity = float(_expect(entry.get("opacity", 1.0), (int, float), f"layers[{i}].opacity"))
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"layers[{i}].opacity must be between 0 and 1, got {opacity}")
    control_type = entry.get("control_type")
    if (kind == "control") != bool(control_type):  # the studio could not open such a layer
        raise ValueError(f"layers[{i}].control_type is needed on control layers and only there, "
                         f"got {control_type!r} for kind {kind!r}")
    tint = entry.get("tint")
    if tint is not None and not (isinstance(tint, list) and _is_rgb(tint)):
        raise ValueError(f"layers[{i}].tint must be [r, g, b] with integers 0-255, got {tint!r}")
    return ProjectLayer(
        id=_expect(entry.get("id"), str, f"layers[{i}].id"),
        name=_expect(entry.get("name", ""), str, f"layers[{i}].name"),
        kind=kind,
        pixels=_read_png(zf, _expect(entry.get("file"), str, f"layers[{i}].file"), "RGBA", size),
        visible=_expect(entry.get("visible", True), bool, f"layers[{i}].visible"),
        opacity=opacity,
        control_type=None if control_type is None else _expect(control_type, str, f"layers[{i}].control_type"),
        tint=None if tint is None else (tint[0], tint[1], tint[2]),
        pose=_pose(entry.get("pose"), kind, f"layers[{i}].pose"),
    )


def _pose(value: Any, kind: str, what: str) -> tuple[PoseKeypoints, ...] | None:
    """The keypoints of a layer entry's "pose" (a list of people), or None when it has none."""
    if value is None:
        return None
    if kind != "control":
        raise ValueError(f"{what}: only control layers keep pose keypoints, not {kind!r} layers")
    try:
        return tuple(PoseKeypoints.from_dict(person, f"{what}[{j}]")
                     for j, person in enumerate(_expect(value, list, what)))
    except SettingsError as exc:  # a ValueError; re-raised plain so it is not reported as "invalid settings"
        raise ValueError(str(exc)) from None


def _parse(zf: zipfile.ZipFile) -> Project:
    if len(zf.infolist()) > MAX_ENTRIES:
        raise ValueError("too many entries")
    try:
        manifest = json.loads(_read_entry(zf, "manifest.json"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ValueError("manifest.json is not valid JSON") from None
    manifest = _expect(manifest, dict, "manifest")
    if manifest.get("format") != PROJECT_FORMAT:
        raise ValueError("not an Atelier project (manifest format)")
    version = manifest.get("version")
    if not isinstance(version, int) or not 1 <= version <= PROJECT_VERSION:
        raise ValueError(f"unsupported project version {version!r} (this Atelier reads up to {PROJECT_VERSION})")
    width = _expect(manifest.get("width"), int, "width")
    height = _expect(manifest.get("height"), int, "height")
    if not (1 <= width <= 16384 and 1 <= height <= 16384):
        raise ValueError(f"impossible canvas size {width}x{height}")
    layers = tuple(_layer(zf, e, (width, height), i)
                   for i, e in enumerate(_expect(manifest.get("layers", []), list, "layers")))
    history = []
    for i, e in enumerate(_expect(manifest.get("history", []), list, "history")):
        e = _expect(e, dict, f"history[{i}]")
        image = _read_png(zf, _expect(e.get("file"), str, f"history[{i}].file"), "RGB", None)
        created = float(_expect(e.get("created", 0.0), (int, float), f"history[{i}].created"))
        history.append(ProjectHistoryItem(image, job_from_dict(e.get("settings")), created))
    current = manifest.get("current_layer")
    return Project(width, height, layers, job_from_dict(manifest.get("settings")), tuple(history),
                   current if isinstance(current, str) else None)


def project_from_bytes(data: bytes, source: str = "project") -> Project:
    """Decode project zip bytes; ProjectError says what is wrong."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _parse(zf)
    except zipfile.BadZipFile:
        raise ProjectError(source, "not an Atelier project (not a zip file)") from None
    except SettingsError as exc:
        raise ProjectError(source, f"invalid settings: {exc}") from None
    except ValueError as exc:
        raise ProjectError(source, str(exc)) from None


def load_project(path: Path) -> Project:
    """Read a project file; ProjectError says what is wrong."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProjectError(path, "no such file") from None
    except OSError as exc:
        raise ProjectError(path, exc.strerror or str(exc)) from None
    return project_from_bytes(data, str(path))
