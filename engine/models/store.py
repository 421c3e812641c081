"""The model store: folders scanned for diffusers folders, checkpoints, VAEs, ControlNets, LoRAs
and upscalers, each recorded with its kind, layout and family."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.models.checkpoint import WEIGHT_SUFFIXES
from engine.models.detect import Detection, Layout, ModelKind, detect_path
from engine.models.errors import ModelLoadError
from engine.models.families import Family
from engine.paths import builtin_models_dir, user_models_dir


def default_models_dir() -> Path:
    """The per-user models folder (platform user data directory, or $ATELIER_HOME/models)."""
    return user_models_dir()


@dataclass(frozen=True)
class ModelEntry:
    """One usable model found by a scan."""

    path: Path
    name: str
    kind: ModelKind
    layout: Layout
    family: Family | None
    compatible: tuple[Family, ...]
    architecture: str
    size_bytes: int
    notes: tuple[str, ...] = ()
    prediction_type: str | None = None

    @staticmethod
    def from_detection(path: Path, root: Path, det: Detection) -> ModelEntry:
        """An entry named by its path relative to the scanned root, without the suffix."""
        rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        name = rel.with_suffix("").as_posix() if path.is_file() else rel.as_posix()
        return ModelEntry(path, name, det.kind, det.layout, det.family, det.compatible, det.architecture,
                          _size_of(path), det.notes, det.prediction_type)


@dataclass(frozen=True)
class ScanProblem:
    """A file or folder that looked like a model but could not be used, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ScanResult:
    """Everything one scan found."""

    entries: tuple[ModelEntry, ...] = ()
    problems: tuple[ScanProblem, ...] = ()

    def of_kind(self, kind: ModelKind, family: Family | None = None) -> tuple[ModelEntry, ...]:
        """Entries of one kind, optionally only those usable with `family`."""
        return tuple(e for e in self.entries if e.kind is kind and (family is None or family in e.compatible))


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _is_model_folder(folder: Path) -> bool:
    return (folder / "model_index.json").is_file() or (
        (folder / "config.json").is_file()
        and any((folder / f"diffusion_pytorch_model{ext}").exists() or (folder / f"diffusion_pytorch_model{ext}.index.json").exists()
                for ext in (".safetensors", ".bin", ".fp16.safetensors"))
    )


def _walk(root: Path) -> Iterator[Path]:
    """Model candidates below `root`: model folders (not descended into) and weight files.
    Symlinked folders are followed (models are often shared with other tools), each real
    folder once, so link cycles end."""
    visited: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = here.resolve()
        if real in visited:
            dirnames.clear()
            continue
        visited.add(real)
        if here != root and _is_model_folder(here):
            dirnames.clear()
            yield here
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in WEIGHT_SUFFIXES:
                yield here / name


@dataclass(frozen=True)
class ModelStore:
    """The folders to scan: the user's models folder, extra ones, and the project's shipped models."""

    roots: tuple[Path, ...] = field(default_factory=lambda: (user_models_dir(), builtin_models_dir()))

    @staticmethod
    def with_roots(roots: Sequence[Path | str]) -> ModelStore:
        """A store over the given folders, in priority order."""
        return ModelStore(tuple(Path(r) for r in roots))

    def scan(self) -> ScanResult:
        """Inspect every candidate below the roots (headers only); failures become ScanProblems."""
        entries: list[ModelEntry] = []
        problems: list[ScanProblem] = []
        seen: set[Path] = set()
        for root in self.roots:
            if not root.is_dir():
                problems.append(ScanProblem(root, "models folder does not exist"))
                continue
            for path in _walk(root):
                real = path.resolve()
                if real in seen:
                    continue
                seen.add(real)
                try:
                    entries.append(ModelEntry.from_detection(path, root, detect_path(path)))
                except ModelLoadError as exc:
                    problems.append(ScanProblem(path, exc.reason))
        return ScanResult(tuple(entries), tuple(problems))
