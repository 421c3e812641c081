"""Batches for training: tensor layout and ranges, seed splits, samples tied to their seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from engine.data import (
    HELDOUT_SEEDS,
    TRAIN_SEEDS,
    ShapesDataset,
    collate,
    edge_map,
    iterate_batches,
    make_sample,
    render,
    scene_for_seed,
    segmentation_map,
    split_seeds,
    training_batches,
)


def test_splits_are_disjoint_and_documented() -> None:
    train, held = split_seeds("train"), split_seeds("heldout")
    assert train == TRAIN_SEEDS and held == HELDOUT_SEEDS
    assert train.stop <= held.start  # disjoint ranges
    assert held.start == 1_000_000 and len(held) >= 10_000
    with pytest.raises(ValueError, match="split"):
        split_seeds("test")  # type: ignore[arg-type]


def test_training_stream_draws_only_train_seeds() -> None:
    stream = training_batches(np.random.Generator(np.random.PCG64(0)), batch_size=16)
    seeds = torch.cat([next(stream).seeds for _ in range(4)])
    assert ((seeds >= TRAIN_SEEDS.start) & (seeds < TRAIN_SEEDS.stop)).all()
    assert len(set(seeds.tolist())) == len(seeds)
    again = training_batches(np.random.Generator(np.random.PCG64(0)), batch_size=16)
    assert torch.equal(next(again).seeds, seeds[:16])


def test_a_stream_that_skips_scenes_renders_the_rest_of_the_same_draws() -> None:
    full = training_batches(np.random.default_rng(3), batch_size=6)
    part = training_batches(np.random.default_rng(3), batch_size=6, skip=4)
    for _ in range(2):  # the generator advances the same way
        a, b = next(full), next(part)
        assert torch.equal(b.seeds, a.seeds[4:]) and torch.equal(b.images, a.images[4:])
        assert b.captions == a.captions[4:] and b.labels == a.labels[4:]
    with pytest.raises(ValueError, match="skip"):
        next(training_batches(np.random.default_rng(3), batch_size=6, skip=6))


def test_batch_layout_and_ranges() -> None:
    batch = next(iterate_batches(HELDOUT_SEEDS, 4, controls=("edges", "scribble", "segmentation"), low_size=32))
    assert batch.images.shape == (4, 3, 128, 128) and batch.images.dtype == torch.float32
    assert batch.images.min() >= -1.0 and batch.images.max() <= 1.0
    for m in (batch.edges, batch.scribble, batch.segmentation):
        assert m is not None and m.shape == (4, 3, 128, 128)
        assert m.min() >= 0.0 and m.max() <= 1.0 and m.max() > 0.0
    assert batch.low_images is not None and batch.low_images.shape == (4, 3, 32, 32)
    assert batch.seeds.tolist() == list(HELDOUT_SEEDS[:4])
    assert len(batch.captions) == 4 and all(isinstance(c, str) and c for c in batch.captions)
    assert [len(lab) for lab in batch.labels] == [len(scene_for_seed(s).shapes) for s in HELDOUT_SEEDS[:4]]
    # the tensors are the renders, NCHW, scaled
    scene = scene_for_seed(HELDOUT_SEEDS[0])
    img = torch.from_numpy(render(scene)).permute(2, 0, 1).float() / 127.5 - 1.0
    assert torch.allclose(batch.images[0], img)
    assert torch.allclose(batch.edges[0], torch.from_numpy(edge_map(scene)).permute(2, 0, 1).float() / 255)
    seg = torch.from_numpy(segmentation_map(scene)).permute(2, 0, 1).float() / 255
    assert torch.allclose(batch.segmentation[0], seg)
    low = torch.from_numpy(render(scene, 32)).permute(2, 0, 1).float() / 127.5 - 1.0
    assert torch.allclose(batch.low_images[0], low)


def test_controls_are_only_computed_when_asked() -> None:
    batch = next(iterate_batches(range(3), 3))
    assert batch.edges is None and batch.scribble is None and batch.segmentation is None
    assert batch.low_images is None
    with pytest.raises(ValueError, match="control"):
        make_sample(0, controls=("depth",))  # type: ignore[arg-type]


def test_last_batch_may_be_short() -> None:
    sizes = [len(b.captions) for b in iterate_batches(range(7), 3)]
    assert sizes == [3, 3, 1]
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(range(3), 0))


def test_variant_changes_wording_not_the_scene() -> None:
    a, b = make_sample(5, variant=0), make_sample(5, variant=1)
    assert np.array_equal(a.image, b.image) and a.scene == b.scene
    texts = {make_sample(5, variant=v).caption for v in range(8)}
    assert len(texts) > 2
    assert make_sample(5, variant=3).caption == make_sample(5, variant=3).caption


def test_super_resolution_pairs_show_the_same_scene() -> None:
    s = make_sample(9, 512, low_size=128)
    assert s.image.shape == (512, 512, 3) and s.low_image is not None
    assert np.array_equal(s.low_image, render(s.scene, 128))
    assert np.array_equal(s.image, render(s.scene, 512))


def test_dataset_works_with_a_dataloader() -> None:
    ds = ShapesDataset(HELDOUT_SEEDS[:10], controls=("segmentation",))
    assert len(ds) == 10
    batches = list(DataLoader(ds, batch_size=4, collate_fn=collate))
    assert [b.images.shape[0] for b in batches] == [4, 4, 2]
    assert batches[0].segmentation is not None
    assert batches[0].seeds.tolist() == list(HELDOUT_SEEDS[:4])
