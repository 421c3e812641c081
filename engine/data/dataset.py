"""Training data from the shapes world: samples by seed, train / held-out seed ranges, and
batches as torch tensors (images in [-1, 1] NCHW, captions, control maps, labels).

Splits are by seed: train = seeds [0, 1_000_000); held-out = seeds [1_000_000, 1_100_000).
Every seed >= 1_000_000 is reserved for evaluation and never drawn for training."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.data.captions import REFERENCE_SIZE, caption
from engine.data.control_maps import edge_map, scribble_map, segmentation_map
from engine.data.render import Label, check_size, labels, rasterise, render
from engine.data.sampling import scene_for_seed
from engine.data.scene import Scene

Split = Literal["train", "heldout"]
ControlKind = Literal["edges", "scribble", "segmentation"]
CONTROL_KINDS: tuple[ControlKind, ...] = ("edges", "scribble", "segmentation")

TRAIN_SEEDS = range(0, 1_000_000)
HELDOUT_SEEDS = range(1_000_000, 1_100_000)
# Second word of the SeedSequence for a seed's non-scene randomness (caption wording, scribble).
_CAPTION_STREAM, _SCRIBBLE_STREAM = 1, 2


def split_seeds(split: Split) -> range:
    """The seeds of a split (see the module docstring)."""
    if split == "train":
        return TRAIN_SEEDS
    if split == "heldout":
        return HELDOUT_SEEDS
    raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")


def _stream(seed: int, stream: int, variant: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, variant])))


@dataclass(frozen=True)
class Sample:
    """One scene with everything derived from it at one size; control maps and the low-res
    image are None unless asked for. Arrays are (H, W, 3) uint8."""

    seed: int
    scene: Scene
    image: np.ndarray
    caption: str
    labels: tuple[Label, ...]
    edges: np.ndarray | None = None
    scribble: np.ndarray | None = None
    segmentation: np.ndarray | None = None
    low_image: np.ndarray | None = None


@dataclass(frozen=True)
class Batch:
    """Collated samples: images (N, 3, H, W) float32 in [-1, 1]; control maps (N, 3, H, W)
    float32 in [0, 1] or None; low_images (N, 3, h, w) in [-1, 1] or None."""

    seeds: torch.Tensor  # (N,) int64
    images: torch.Tensor
    captions: list[str]
    labels: list[tuple[Label, ...]]
    edges: torch.Tensor | None = None
    scribble: torch.Tensor | None = None
    segmentation: torch.Tensor | None = None
    low_images: torch.Tensor | None = None


def _check_controls(controls: Collection[str]) -> frozenset[str]:
    unknown = set(controls) - set(CONTROL_KINDS)
    if unknown:
        raise ValueError(f"unknown control kinds {sorted(unknown)}; known: {CONTROL_KINDS}")
    return frozenset(controls)


def make_sample(
    seed: int,
    size: int = 128,
    *,
    controls: Collection[ControlKind] = (),
    low_size: int | None = None,
    variant: int = 0,
) -> Sample:
    """The sample of `seed` at `size` px; `variant` picks another caption wording and scribble
    for the same scene; `low_size` adds the same scene rendered at that size (super-resolution)."""
    wanted = _check_controls(controls)
    check_size(size)
    if low_size is not None:
        check_size(low_size)
    scene = scene_for_seed(seed)
    raster = rasterise(scene, size)
    ref = raster if size == REFERENCE_SIZE else None
    return Sample(
        seed=seed,
        scene=scene,
        image=render(scene, size, raster=raster),
        caption=caption(scene, _stream(seed, _CAPTION_STREAM, variant), raster=ref),
        labels=tuple(labels(scene, size, raster=raster)),
        edges=edge_map(scene, size, raster=raster) if "edges" in wanted else None,
        scribble=(
            scribble_map(scene, _stream(seed, _SCRIBBLE_STREAM, variant), size, raster=raster)
            if "scribble" in wanted
            else None
        ),
        segmentation=segmentation_map(scene, size, raster=raster) if "segmentation" in wanted else None,
        low_image=render(scene, low_size) if low_size is not None else None,
    )


def _stack(arrays: Sequence[np.ndarray], signed: bool) -> torch.Tensor:
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()  # (N, 3, H, W)
    return x / 127.5 - 1.0 if signed else x / 255.0


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a Batch (a DataLoader collate_fn)."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")

    def maybe(name: str, signed: bool) -> torch.Tensor | None:
        arrays = [getattr(s, name) for s in samples]
        if all(a is None for a in arrays):
            return None
        if any(a is None for a in arrays):
            raise ValueError(f"some samples have {name} and some do not")
        return _stack(arrays, signed)

    return Batch(
        seeds=torch.tensor([s.seed for s in samples], dtype=torch.int64),
        images=_stack([s.image for s in samples], signed=True),
        captions=[s.caption for s in samples],
        labels=[s.labels for s in samples],
        edges=maybe("edges", False),
        scribble=maybe("scribble", False),
        segmentation=maybe("segmentation", False),
        low_images=maybe("low_image", True),
    )


def iterate_batches(
    seeds: Iterable[int],
    batch_size: int,
    size: int = 128,
    *,
    controls: Collection[ControlKind] = (),
    low_size: int | None = None,
    variant: int = 0,
) -> Iterator[Batch]:
    """Batches of the given seeds in order (the last one may be short): for evaluation."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chunk: list[Sample] = []
    for seed in seeds:
        chunk.append(make_sample(seed, size, controls=controls, low_size=low_size, variant=variant))
        if len(chunk) == batch_size:
            yield collate(chunk)
            chunk = []
    if chunk:
        yield collate(chunk)


def training_batches(
    rng: np.random.Generator,
    batch_size: int,
    size: int = 128,
    *,
    controls: Collection[ControlKind] = (),
    low_size: int | None = None,
    skip: int = 0,
) -> Iterator[Batch]:
    """An endless stream of batches of train-split seeds drawn uniformly with `rng`, each with
    a caption/scribble variant also drawn from `rng`. With `skip`, the first `skip` scenes of each
    draw are left unrendered (a trainer that puts other images there): the batches hold the other
    batch_size - skip, the same scenes as without it, and `rng` advances the same."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0 <= skip < batch_size:
        raise ValueError(f"skip must be in [0, batch_size), got {skip}")
    while True:
        seeds = rng.integers(TRAIN_SEEDS.start, TRAIN_SEEDS.stop, size=batch_size)
        variants = rng.integers(0, 2**31, size=batch_size)
        yield collate(
            [
                make_sample(int(s), size, controls=controls, low_size=low_size, variant=int(v))
                for s, v in zip(seeds[skip:], variants[skip:])
            ]
        )


class ShapesDataset(Dataset):
    """Map-style dataset over a seed range (a split or a slice of one), for a DataLoader with
    collate_fn=collate and worker processes."""

    def __init__(
        self,
        seeds: range,
        size: int = 128,
        *,
        controls: Collection[ControlKind] = (),
        low_size: int | None = None,
        variant: int = 0,
    ) -> None:
        check_size(size)
        self.seeds = seeds
        self.size = size
        self.controls = _check_controls(controls)
        self.low_size = low_size
        self.variant = variant

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, index: int) -> Sample:
        return make_sample(
            self.seeds[index], self.size, controls=self.controls, low_size=self.low_size, variant=self.variant
        )
