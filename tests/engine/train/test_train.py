"""The built-in models' training: a tiny run end to end, the pieces of the loop, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.decoding.vae import decode, encode
from engine.train.loop import LossLog, plot_losses, setup_run
from engine.train.vqgan import (
    EMACodebook,
    VQGANConfig,
    build_vqgan,
    edge_map,
    fsq_grid,
    fsq_round,
    load_vqgan,
    pixel_losses,
    random_crops,
    train_vqgan,
)

ROOT = Path(__file__).resolve().parents[3]
TINY = VQGANConfig(steps=4, batch_size=2, crop=32, codebook_size=16, latent_channels=4,
                   block_out_channels=(8, 8, 8, 8), norm_groups=4, gan_start=2, restart_every=2, eval_images=4,
                   warmup=1)


def test_tiny_vqgan_run_saves_a_loadable_model_and_its_record(tmp_path: Path) -> None:
    setup = setup_run(tmp_path / "vae", "cpu", seed=0)
    figures = train_vqgan(TINY, setup, "python -m engine.train vqgan --steps 4")
    folder = tmp_path / "vae"
    assert {"config.json", "diffusion_pytorch_model.safetensors", "loss_curve.png", "training.json"} <= {
        p.name for p in folder.iterdir()}
    record = json.loads((folder / "training.json").read_text())
    assert record["command"] == "python -m engine.train vqgan --steps 4" and record["data_seed"] == 0
    assert record["config"]["steps"] == 4 and record["figures"] == figures
    assert record["cpu"] == f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()}"  # times compare within a class
    assert 0 < figures["heldout_psnr_db"] < 60 and figures["codebook_perplexity"] >= 1
    vq = load_vqgan(folder)
    assert vq.config.scaling_factor == pytest.approx(1 / figures["latent_std"], rel=1e-3)
    x = torch.zeros(1, 3, 64, 64)
    z = encode(vq, x)  # (1, 4, 8, 8): downsampling 8, scaled to unit variance
    assert z.shape == (1, 4, 8, 8) and decode(vq, z).shape == (1, 3, 64, 64)


def test_training_is_reproducible(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, steps=2, gan_start=10)
    weights = []
    for run in ("a", "b"):
        train_vqgan(config, setup_run(tmp_path / run, "cpu", seed=0), "test")
        weights.append(load_vqgan(tmp_path / run).state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_dead_codes_move_onto_encoder_outputs() -> None:
    torch.manual_seed(0)
    vq = build_vqgan(TINY)
    codebook = EMACodebook(vq, decay=0.99)
    before = vq.quantize.embedding.weight.detach().clone()
    usage = torch.zeros(16, dtype=torch.long)
    usage[:4] = 3  # codes 4.. were never chosen
    vectors = torch.full((10, 4), 7.0)
    moved = codebook.restart_dead(usage, vectors, np.random.default_rng(0))
    after = vq.quantize.embedding.weight.detach()
    assert moved == 12
    assert torch.equal(after[:4], before[:4])
    assert torch.allclose(after[4:], torch.full((12, 4), 7.0), atol=0.1)


def test_ema_codebook_converges_to_the_mean_of_its_vectors() -> None:
    torch.manual_seed(0)
    vq = build_vqgan(TINY)
    codebook = EMACodebook(vq, decay=0.9)
    vectors = torch.tensor([[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 1.0, 0.0]])  # both assigned to code 5
    for _ in range(200):
        codebook.update(vectors, torch.tensor([5, 5]))
    torch.testing.assert_close(vq.quantize.embedding.weight[5], torch.tensor([2.0, 2.0, 2.0, 2.0]), atol=1e-3,
                               rtol=0)
    assert not vq.quantize.embedding.weight.requires_grad  # the optimiser leaves the codebook alone


def test_fsq_grid_codebook_quantizes_exactly_like_fsq_rounding() -> None:
    """Trained with FSQ rounding, saved as a plain VQModel: its nearest-code lookup must agree."""
    vq = build_vqgan(dataclasses.replace(TINY, quantizer="fsq", fsq_levels=5))
    assert vq.config.num_vq_embeddings == 5**4 and not vq.quantize.embedding.weight.requires_grad
    h = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(2)) * 1.5  # some beyond [-1, 1]
    values, indices = fsq_round(h, 5)
    z_q, _, (_, _, nearest) = vq.quantize(h)
    assert torch.equal(nearest.flatten(), indices)
    torch.testing.assert_close(z_q, values, rtol=0, atol=1e-6)  # z_q = h + (code - h): exact up to rounding
    assert set(values.unique().tolist()) <= {-1.0, -0.5, 0.0, 0.5, 1.0}
    assert torch.equal(fsq_grid(5, 4)[indices], values.movedim(1, -1).reshape(-1, 4))


def test_random_crops_are_seeded_windows() -> None:
    images = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    a = random_crops(images, 8, np.random.default_rng(1))
    b = random_crops(images, 8, np.random.default_rng(1))
    assert a.shape == (2, 3, 8, 8) and torch.equal(a, b)
    row = a[0, 0, 0, 0].item() // 16 % 16, a[0, 0, 0, 0].item() % 16  # the crop's origin in image 0
    assert torch.equal(a[0], images[0, :, int(row[0]):int(row[0]) + 8, int(row[1]):int(row[1]) + 8])


def _square_scene() -> torch.Tensor:
    """(1, 3, 32, 32) in [-1, 1]: a faint horizontal gradient with a white 6 x 6 square at rows and columns 20-25."""
    image = torch.linspace(-0.5, -0.4, 32).expand(1, 3, 32, 32).clone()
    image[:, :, 20:26, 20:26] = 1.0
    return image


def test_edge_map_marks_shape_outlines_and_not_gradients() -> None:
    edges = edge_map(_square_scene(), grow=0)[0, 0]
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[19:27, 19:27] = True  # the square and the pixels touching it
    inside[21:25, 21:25] = False  # the square's interior: flat
    assert torch.equal(edges, inside)
    grown = edge_map(_square_scene(), grow=1)[0, 0]
    assert grown.sum() > edges.sum() and bool(grown[18, 18]) and not bool(grown[22, 22])


def test_pixel_losses_weigh_pixels_and_reduce_to_plain_means() -> None:
    x, out = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    out[0, :, 0, 0] = 2.0  # one wrong pixel
    assert [v.item() for v in pixel_losses(out, x)] == pytest.approx([0.5, 1.0])
    assert [v.item() for v in pixel_losses(out, x, torch.ones(1, 1, 2, 2))] == pytest.approx([0.5, 1.0])
    weight = torch.tensor([[[[5.0, 1.0], [1.0, 1.0]]]])  # the wrong pixel weighs 5
    assert [v.item() for v in pixel_losses(out, x, weight)] == pytest.approx([10 / 8, 20 / 8])


def test_loss_curve_has_a_log_panel_and_a_signed_panel(tmp_path: Path) -> None:
    log = LossLog()
    for step in range(100):
        log.add(step, l1=1.0 / (1 + step), g=np.sin(step / 10))
    plot_losses(log, tmp_path / "curve.png", "test")
    with Image.open(tmp_path / "curve.png") as im:
        assert im.size == (900, 640)  # two panels: the adversarial loss can be negative
        assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 3


def test_cli_lists_models_and_rejects_bad_steps() -> None:
    out = subprocess.run([sys.executable, "-m", "engine.train", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "vqgan" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "engine.train", "vqgan", "--steps", "0"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--steps must be >= 1" in bad.stderr


def test_set_changes_config_fields_with_their_own_types() -> None:
    from engine.train.__main__ import ConfigError, apply_settings
    from engine.train.flow import FlowConfig

    config = apply_settings(VQGANConfig(), ["block_out_channels=32, 64,128,128", "lr=1e-4", "steps=7",
                                            "quantizer=fsq"])
    assert config.block_out_channels == (32, 64, 128, 128) and config.lr == 1e-4 and config.steps == 7
    assert config.quantizer == "fsq" and config.latent_channels == VQGANConfig().latent_channels
    flow = apply_settings(FlowConfig(), ["attention=false,true,false", "caption_dropout=0.2"])
    assert flow.attention == (False, True, False) and flow.caption_dropout == 0.2
    for bad, words in (("nope=1", "has the fields"), ("steps", "has the fields"), ("steps=1.5", "takes a int"),
                       ("attention=maybe", "true or false"), ("block_out_channels=", "comma-separated")):
        with pytest.raises(ConfigError, match=words):
            apply_settings(FlowConfig() if bad.startswith("attention") else VQGANConfig(), [bad])


def test_cli_set_is_recorded_and_bad_fields_are_refused(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "engine.train", "sr", "--set", "colour=red"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "SRConfig has the fields" in bad.stderr and "Traceback" not in bad.stderr
    out = subprocess.run([sys.executable, "-m", "engine.train", "sr", "--steps", "2", "--set", "features=8",
                          "--set", "eval_images=2", "--set", "scenes_per_step=1", "--out", str(tmp_path / "sr"),
                          "--device", "cpu"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "sr" / "training.json").read_text())
    assert record["config"]["features"] == 8 and record["config"]["steps"] == 2
    assert "--set features=8" in record["command"]
