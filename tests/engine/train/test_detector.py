"""The built-in shapes detector: target assignment, losses, decoding, a tiny run end to end, and
that the losses and the decoder agree (it overfits a fixed batch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import VQModel

from engine.data import SHAPE_CLASSES, Label, iterate_batches
from engine.detect.evaluate import mean_average_precision
from engine.detect.shapes import GridDetector, GridDetectorConfig, load_detector
from engine.train.detector import (
    DetectorConfig,
    ReconstructionCache,
    build_targets,
    detector_loss,
    giou_loss,
    reconstruct,
    train_detector,
    visible_targets,
)
from engine.train.loop import setup_run

SMALL = GridDetectorConfig(classes=SHAPE_CLASSES, channels=(8, 16, 16, 16))


def _label(box: tuple[float, float, float, float], cls: int, visible: float = 1.0) -> Label:
    return Label(0, box, box, cls, 0, visible)


def test_each_visible_shape_gets_its_centre_cell_and_two_nearest_neighbours() -> None:
    labels = (_label((12.0, 20.0, 26.0, 34.0), 3), _label((60.0, 60.0, 70.0, 70.0), 1, visible=0.2))
    pos, boxes, classes = build_targets([labels], (16, 16), 8)
    # centre (19, 27) -> cell (row 3, col 2); it lies left of the cell's middle (2.375) and below (3.375)
    assert pos.sum() == 3 and pos[0, 3, 2] and pos[0, 3, 1] and pos[0, 2, 2]
    assert classes[0, 3, 2] == 3 and boxes[0, 3, 2].tolist() == [12.0, 20.0, 26.0, 34.0]
    assert not pos[0, 8].any()  # the hidden shape is not a target


def test_a_smaller_shape_wins_a_shared_cell() -> None:
    big, small = _label((0.0, 0.0, 40.0, 40.0), 0), _label((16.0, 16.0, 24.0, 24.0), 5)
    _, _, classes = build_targets([(small, big)], (16, 16), 8)
    assert classes[0, 2, 2] == 5


def test_giou_loss() -> None:
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    b = torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10]])
    loss = giou_loss(a, b)
    assert loss[0].item() == 0.0 and loss[1].item() > 1.0


def test_the_detector_overfits_a_fixed_batch() -> None:
    torch.manual_seed(0)
    batch = next(iter(iterate_batches(range(8), 8)))
    model = GridDetector(GridDetectorConfig(classes=SHAPE_CLASSES, channels=(16, 32, 32, 48))).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(250):
        loss, _ = detector_loss(model, model(batch.images), batch.labels, 2.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    dets = [(b.double().numpy(), s.double().numpy(), c.numpy()) for b, s, c in model.detect(batch.images, 0.01)]
    gts = [visible_targets(labels) for labels in batch.labels]
    assert mean_average_precision(gts, dets, (0.5,)) > 0.8


def test_tiny_run_saves_a_detector_that_loads_and_detects(tmp_path: Path) -> None:
    config = DetectorConfig(steps=3, batch_size=4, warmup=1, eval_images=8, autoencoder_share=0.0)  # crisp renders only
    figures = train_detector(config, setup_run(tmp_path / "det", "cpu", seed=0), "python -m engine.train detector",
                             SMALL)
    record = json.loads((tmp_path / "det" / "training.json").read_text())
    assert record["figures"] == figures and 0 <= figures["heldout_map50"] <= 1
    model = load_detector(tmp_path / "det")
    image = np.zeros((100, 120, 3), np.uint8)  # not a multiple of 16: padded
    found = model.detections(image, min_score=0.0)
    assert all(d.label in SHAPE_CLASSES and 0 <= d.score <= 1 for d in found)


def test_a_share_of_each_batch_is_seen_through_the_vqgan_with_its_own_labels(tiny_builtin: Path) -> None:
    vq = VQModel.from_pretrained(str(tiny_builtin / "vae"), local_files_only=True).eval()
    cache = ReconstructionCache(vq, 6, np.random.default_rng(0), chunk=4)
    assert cache.images.shape == (6, 3, 128, 128) and cache.images.dtype == torch.uint8 and len(cache.labels) == 6
    batch = next(iter(iterate_batches(range(100, 104), 4)))
    first = reconstruct(vq, batch.images[:1])
    levels = first.add(1).mul(127.5)
    torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)  # 8-bit levels, like a generated image
    assert not torch.equal(first, batch.images[:1])  # a random tiny VQGAN does not give the scene back
    images, labels = cache.mix(batch, 2, np.random.default_rng(1))
    assert images.shape == (6, 3, 128, 128) and len(labels) == 6
    assert torch.equal(images[2:], batch.images) and labels[2:] == list(batch.labels)
    for image, label in zip(images[:2], labels[:2]):  # each mixed-in image keeps its own scene's labels
        k = cache.labels.index(label)
        assert torch.equal(image.add(1).mul(127.5).round().to(torch.uint8), cache.images[k])
    assert cache.mix(batch, 0, np.random.default_rng(1))[0] is batch.images


def test_training_through_the_vqgan_records_the_map_on_its_reconstructions(tiny_builtin: Path,
                                                                           tmp_path: Path) -> None:
    config = DetectorConfig(steps=2, batch_size=4, warmup=1, eval_images=4, autoencoder_share=0.5,
                            autoencoder_scenes=4)
    with pytest.raises(ValueError, match="VQGAN"):
        train_detector(config, setup_run(tmp_path / "none", "cpu", seed=0), "test", SMALL)
    figures = train_detector(config, setup_run(tmp_path / "det", "cpu", seed=0), "test", SMALL,
                             vae_dir=tiny_builtin / "vae")
    assert 0 <= figures["heldout_map50_through_vqgan"] <= 1
    assert json.loads((tmp_path / "det" / "training.json").read_text())["config"]["autoencoder_share"] == 0.5
