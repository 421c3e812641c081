"""The built-in flow model's trainer: the flow path and time sampling, a tiny run that the engine
loads as a model folder and generates from, and the model card it writes."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.models import ModelStore
from engine.models.card import read_card
from engine.models.detect import detect_path
from engine.pipeline import Engine
from engine.settings import Job, ModelRef
from engine.data.render import Label
from engine.data import make_sample, segmentation_class_ids
from engine.train.flow import (
    FlowConfig,
    GuideConfig,
    SemanticHead,
    build_unet,
    class_fractions,
    flow_loss,
    flow_pair,
    logit_normal,
    shape_cells,
    size_weights,
    train_flow,
    training_times,
)
from engine.train.loop import setup_run
from tests.engine.train.conftest import TINY_FLOW


def test_flow_path_runs_from_data_to_noise_with_constant_velocity() -> None:
    x0, noise = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    for t in (0.0, 0.25, 1.0):
        xt, v = flow_pair(x0, noise, torch.full((3,), t))
        torch.testing.assert_close(xt, x0 + t * v)  # straight line: x_t = x0 + t (e - x0)
    torch.testing.assert_close(flow_pair(x0, noise, torch.ones(3))[0], noise)


def test_logit_normal_times_have_the_sd3_distribution() -> None:
    t = logit_normal(200_000, torch.Generator().manual_seed(0))
    assert 0 < float(t.min()) and float(t.max()) < 1
    logit = torch.log(t / (1 - t))
    assert abs(float(logit.mean())) < 0.01 and abs(float(logit.std()) - 1) < 0.01
    assert abs(float(t.median()) - 0.5) < 0.005


def test_training_times_follow_the_flow_shift() -> None:
    plain = training_times(100_000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain, logit_normal(100_000, torch.Generator().manual_seed(0)))
    shifted = training_times(100_000, torch.Generator().manual_seed(0), shift=3.0)
    assert abs(float(shifted.median()) - 0.75) < 0.005  # 3 * 0.5 / (1 + 2 * 0.5)
    assert bool((shifted >= plain).all()) and 0 < float(shifted.min()) and float(shifted.max()) < 1


def test_an_unshifted_share_of_training_times_keeps_the_plain_logit_normal() -> None:
    shifted = training_times(100_000, torch.Generator().manual_seed(0), shift=3.0)
    torch.testing.assert_close(training_times(100_000, torch.Generator().manual_seed(0), 3.0, 0.0), shifted)
    plain = logit_normal(100_000, torch.Generator().manual_seed(0))
    mixed = training_times(100_000, torch.Generator().manual_seed(0), 3.0, 0.25)
    kept = torch.isclose(mixed, plain)  # each time is either its plain or its shifted value
    assert bool((kept | torch.isclose(mixed, shifted)).all())
    assert abs(float(kept.float().mean()) - 0.25) < 0.01
    low = [float((t < 0.43).float().mean()) for t in (shifted, mixed, plain)]
    assert low[0] < 0.09 < low[1] < low[2]  # shift 3 leaves ~8 % of the times below 0.43, plain ~39 %


def test_shape_cells_are_the_latent_cells_a_shape_touches_and_their_ring() -> None:
    seg = torch.zeros(2, 3, 128, 128)
    seg[0, 1, 41:47, 42:44] = 1.0  # inside latent cell (5, 5) of an 8x-downsampling autoencoder
    seg[1, :, 127, 0] = 0.5  # one pixel in the bottom-left corner cell (15, 0)
    cells = shape_cells(seg, 8)
    assert cells.shape == (2, 16, 16) and cells.dtype == torch.bool
    expected = torch.zeros(2, 16, 16, dtype=torch.bool)
    expected[0, 4:7, 4:7] = True
    expected[1, 14:16, 0:2] = True
    assert torch.equal(cells, expected)


def test_size_weights_give_each_shape_the_same_share_at_power_one() -> None:
    def label(box: tuple[float, float, float, float]) -> Label:
        return Label(index=0, box=box, full_box=box, cls=0, colour=0, visible_fraction=1.0)

    # a large square over cells 2..9 (its box grown by a cell: 1..10, 100 cells) and a small one in cell
    # 12, 12 (grown: 11..13, 9 cells)
    large, small = label((16.0, 16.0, 80.0, 80.0)), label((97.0, 97.0, 103.0, 103.0))
    cells = torch.zeros(1, 16, 16, dtype=torch.bool)
    cells[0, 1:11, 1:11] = True
    cells[0, 11:14, 11:14] = True
    even = size_weights(cells, [(large, small)], 8, 0.0)
    torch.testing.assert_close(even, cells.float())  # power 0: the plain 0/1 cells
    fair = size_weights(cells, [(large, small)], 8, 1.0)
    torch.testing.assert_close(fair[0, 5, 5], torch.tensor(1 / 100))
    torch.testing.assert_close(fair[0, 12, 12], torch.tensor(1 / 9))
    torch.testing.assert_close(fair[0, 1:11, 1:11].sum(), fair[0, 11:14, 11:14].sum())  # one share each
    assert fair[0, 0, 0] == 0 and fair[0, 15, 15] == 0  # background
    # overlapping boxes: the smaller shape's weight wins, whichever order the labels come in
    inner = label((40.0, 40.0, 48.0, 48.0))  # cell 5, 5, grown to 4..6: 9 cells
    for order in ((large, inner), (inner, large)):
        w = size_weights(cells, [order], 8, 1.0)
        torch.testing.assert_close(w[0, 5, 5], torch.tensor(1 / 9))
        torch.testing.assert_close(w[0, 2, 2], torch.tensor(1 / 100))


def test_flow_loss_weighs_shape_cells_and_is_the_plain_mse_without_weight() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 8, 4, 4, generator=g), torch.randn(3, 8, 4, 4, generator=g)
    cells = torch.rand(3, 4, 4, generator=g) > 0.6
    torch.testing.assert_close(flow_loss(pred, target, cells, 0.0), (pred - target).square().mean())
    err = (pred - target).square()
    on, off = err.permute(1, 0, 2, 3)[:, cells].sum(), err.permute(1, 0, 2, 3)[:, ~cells].sum()
    expected = (5 * on + off) / (8 * (5 * cells.sum() + (~cells).sum()))
    torch.testing.assert_close(flow_loss(pred, target, cells, 4.0), expected)


def test_class_fractions_are_each_cells_share_of_background_and_of_every_class() -> None:
    sample = make_sample(11, controls=("segmentation",))
    seg = torch.from_numpy(sample.segmentation).permute(2, 0, 1)[None].float() / 255
    fractions = class_fractions(seg, 16)
    assert fractions.shape == (1, 9, 8, 8)
    torch.testing.assert_close(fractions.sum(dim=1), torch.ones(1, 8, 8))
    ids = segmentation_class_ids(sample.segmentation) + 1  # 0 background, then SHAPE_CLASSES
    counts = np.stack([(ids == k).reshape(8, 16, 8, 16).sum(axis=(1, 3)) for k in range(9)])
    torch.testing.assert_close(fractions[0], torch.from_numpy(counts / 256.0).float())
    drawn = {int(k) for k in np.unique(ids)} - {0}
    assert {label.cls + 1 for label in sample.labels if label.visible} <= drawn <= {label.cls + 1 for label in sample.labels}
    assert len(drawn) >= 2  # the scene holds more than one class, so the test sees them kept apart


def test_the_semantic_head_trains_the_unets_encoder_only_and_leaves_no_trace_in_it() -> None:
    config = FlowConfig(block_out_channels=(16, 16, 16), attention_heads=2, text_hidden=32)
    unet = build_unet(config, 8)
    keys = set(unet.state_dict())
    head = SemanticHead(unet, level=1)
    states = torch.randn(2, 77, 32)
    unet(torch.randn(2, 8, 16, 16), torch.tensor([500.0, 100.0]), states)
    assert head.features is not None and head.features.shape == (2, 16, 8, 8)
    target = class_fractions(torch.zeros(2, 3, 128, 128), 16)  # all background
    head.loss(target).backward()
    grads = {name: p.grad is not None and bool(p.grad.abs().sum() > 0) for name, p in unet.named_parameters()}
    assert grads["conv_in.weight"] and grads["down_blocks.1.attentions.0.proj_out.weight"]
    assert not any(g for name, g in grads.items() if name.startswith(("up_blocks", "mid_block", "conv_out")))
    head.hook.remove()
    assert set(unet.state_dict()) == keys


def test_tiny_flow_run_writes_a_complete_model_folder(tiny_builtin: Path) -> None:
    names = {p.name for p in tiny_builtin.iterdir()}
    assert {"model_index.json", "unet", "text_encoder", "tokenizer", "scheduler", "vae", "atelier.json",
            "training.json", "flow_loss_curve.png", "samples.png"} <= names
    record = json.loads((tiny_builtin / "training.json").read_text())
    assert record["model"] == "flow" and record["command"].endswith("--steps 3")
    assert all(np.isfinite(v) for v in record["figures"].values())
    det = detect_path(tiny_builtin)
    assert det.prediction_type == "flow" and det.family is not None and det.family.value == "sd1"
    card = read_card(tiny_builtin)
    assert card.recommended["width"] == 128 and card.recommended["schedule"] == "flow_shift" and not card.problem


def test_the_engine_generates_from_the_trained_folder_reproducibly(tiny_builtin: Path) -> None:
    engine = Engine(device="cpu", store=ModelStore.with_roots([tiny_builtin.parent]))
    job = engine.recommended(Job(prompt="a red star on a blue background", seed=3, steps=4))
    assert (job.width, job.height, job.sampler) == (128, 128, "euler")  # from the card
    (a,), (b,) = engine.run(job), engine.run(job)
    assert a.image.shape == (128, 128, 3) and np.array_equal(a.image, b.image)
    assert a.job.model.path == str(tiny_builtin)
    # The weights ship in float16 and load as float32.
    model, _ = engine.load(ModelRef(path=str(tiny_builtin)))
    assert next(model.denoiser.parameters()).dtype == torch.float32


def test_cfg_changes_the_output(tiny_builtin: Path) -> None:
    engine = Engine(device="cpu", store=ModelStore.with_roots([tiny_builtin.parent]))
    job = engine.recommended(Job(prompt="a green ring", seed=1, steps=3))
    (one,), (four,) = engine.run(dataclasses.replace(job, cfg_scale=1.0)), engine.run(job)
    assert not np.array_equal(one.image, four.image)


def test_render_without_settings_takes_the_cards_settings_and_flags_win(tiny_builtin: Path, tmp_path: Path) -> None:
    from engine.render_args import job_from_args
    from studio.cli import build_parser

    engine = Engine(device="cpu", store=ModelStore.with_roots([tiny_builtin.parent]))
    parse = build_parser().parse_args
    job = job_from_args(parse(["render", "--prompt", "a red star", "-o", str(tmp_path / "o.png")]),
                        engine.recommended)
    assert (job.width, job.sampler, job.schedule, job.cfg_scale, job.autoguidance) == (
        128, "euler", "flow_shift", 4.0, 2.0)
    job = job_from_args(parse(["render", "--autoguidance", "0", "-o", str(tmp_path / "o.png")]), engine.recommended)
    assert job.autoguidance == 0.0 and job.cfg_scale == 4.0
    job = job_from_args(parse(["render", "--size", "64x64", "--steps", "3", "-o", str(tmp_path / "o.png")]),
                        engine.recommended)
    assert (job.width, job.height, job.steps, job.sampler) == (64, 64, 3, "euler")


def _with_guide(tiny_builtin: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model with a tiny guide trained into its guide/ (as `python -m engine.train flow-guide`)."""
    folder = tmp_path / "atelier-shapes"
    shutil.copytree(tiny_builtin, folder)
    tiny = GuideConfig(steps=2, batch_size=4, warmup=1, train_scenes=8, text_hidden=32, text_layers=1, text_heads=2,
                       block_out_channels=(16, 16, 16), attention_heads=2, eval_scenes=4)
    train_flow(tiny, setup_run(folder / "guide", "cpu", seed=1, bf16=False), "python -m engine.train flow-guide",
               folder / "vae", text_dir=folder / "text_encoder")
    return folder


def test_the_guide_run_writes_only_its_networks_and_the_engine_loads_them_as_the_models_guide(
        tiny_builtin: Path, tmp_path: Path) -> None:
    folder = _with_guide(tiny_builtin, tmp_path)
    assert {p.name for p in (folder / "guide").iterdir()} == {"unet", "training.json", "flow_loss_curve.png"}
    assert json.loads((folder / "guide" / "training.json").read_text())["model"] == "flow-guide"
    engine = Engine(device="cpu", store=ModelStore.with_roots([folder.parent]))
    model, _ = engine.load(ModelRef(path=str(folder)))
    assert model.guide is not None and model.guide.guide is None
    assert model.guide.denoiser is not model.denoiser and model.guide.vae is model.vae
    assert model.guide.text_encoders is model.text_encoders  # a guide UNet on the model's text states
    assert model.nbytes > model.guide.nbytes  # the guide's UNet counts towards the model's memory
    plain, _ = engine.load(ModelRef(path=str(tiny_builtin)))
    assert plain.guide is None


def test_autoguidance_changes_the_image_only_when_the_model_has_a_guide_and_w_is_above_zero(
        tiny_builtin: Path, tmp_path: Path) -> None:
    folder = _with_guide(tiny_builtin, tmp_path)
    engine = Engine(device="cpu", store=ModelStore.with_roots([folder.parent, tiny_builtin.parent]))
    job = engine.recommended(Job(model=ModelRef(path=str(folder)), prompt="a red star", seed=2, steps=3))
    assert job.autoguidance == 2.0  # the card recommends it
    (guided,), (again,) = engine.run(job), engine.run(job)
    (off,) = engine.run(dataclasses.replace(job, autoguidance=0.0))
    (no_guide,) = engine.run(dataclasses.replace(job, model=ModelRef(path=str(tiny_builtin))))
    assert np.array_equal(guided.image, again.image) and guided.job.autoguidance == 2.0
    assert not np.array_equal(guided.image, off.image)
    assert np.array_equal(off.image, no_guide.image)  # a model without guide/ ignores the weight


def test_a_guide_identical_to_the_model_leaves_the_image_as_it_is(tiny_builtin: Path, tmp_path: Path) -> None:
    """cond - guide = 0 when the guide is the model itself: autoguidance then changes nothing (here the guide
    has its own copy of the text encoder, the other way a guide/ may be laid out)."""
    folder = tmp_path / "atelier-shapes"
    shutil.copytree(tiny_builtin, folder)
    for part in ("unet", "text_encoder"):
        shutil.copytree(tiny_builtin / part, folder / "guide" / part)
    engine = Engine(device="cpu", store=ModelStore.with_roots([folder.parent]))
    job = engine.recommended(Job(model=ModelRef(path=str(folder)), prompt="a blue ring", seed=4, steps=3))
    (guided,), (off,) = engine.run(dataclasses.replace(job, autoguidance=3.0)), engine.run(
        dataclasses.replace(job, autoguidance=0.0))
    assert np.abs(guided.image.astype(int) - off.image.astype(int)).max() <= 1


def test_the_guide_trainer_asks_for_the_model_it_guides_first(tiny_builtin: Path, tmp_path: Path) -> None:
    from engine.train.__main__ import main

    shutil.copytree(tiny_builtin / "vae", tmp_path / "model" / "vae")  # a VQGAN, but no flow model yet
    with pytest.raises(SystemExit, match="train the model it guides first"):
        main(["flow-guide", "--vae", str(tmp_path / "model" / "vae"), "--device", "cpu"])


def _snapshot_run(tiny_builtin: Path, out: Path, steps: int) -> Path:
    """A tiny flow run (Muon) that takes its guide at step 2 (warm-up past the end, so the first steps'
    lr does not depend on the run's length)."""
    tiny = dataclasses.replace(TINY_FLOW, steps=steps, warmup=10, guide_step=2, optimizer="muon")
    train_flow(tiny, setup_run(out, "cpu", seed=0, bf16=False), "python -m engine.train flow", tiny_builtin / "vae")
    return out


def test_a_flow_run_takes_its_guide_from_its_own_snapshot_and_freezes_the_text_encoder_there(
        tiny_builtin: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    short = _snapshot_run(tiny_builtin, tmp_path / "a" / "atelier-shapes", steps=3)
    long = _snapshot_run(tiny_builtin, tmp_path / "b" / "atelier-shapes", steps=5)
    record = json.loads((long / "guide" / "training.json").read_text())
    assert record["model"] == "flow-guide" and record["config"]["step"] == 2
    assert {"guide_heldout_v_mse_t0.5", "heldout_v_mse_t0.5"} <= set(json.loads((long / "training.json").read_text())
                                                                      ["figures"])

    def weights(folder: Path, part: str) -> dict[str, torch.Tensor]:
        name = "model.safetensors" if part == "text_encoder" else "diffusion_pytorch_model.safetensors"
        return load_file(str(folder / part / name))

    # the same first two steps, then the text encoder stops: both runs end with the same one
    for key, value in weights(short, "text_encoder").items():
        assert torch.equal(value, weights(long, "text_encoder")[key]), key
    for key, value in weights(short, "guide/unet").items():
        assert torch.equal(value, weights(long, "guide/unet")[key]), key
    assert any(not torch.equal(v, weights(long, "unet")[k]) for k, v in weights(short, "unet").items())
    assert any(not torch.equal(v, weights(long, "unet")[k]) for k, v in weights(long, "guide/unet").items())
    engine = Engine(device="cpu", store=ModelStore.with_roots([long.parent]))
    model, _ = engine.load(ModelRef(path=str(long)))
    assert model.guide is not None and model.guide.text_encoders is model.text_encoders


def test_an_unknown_optimizer_is_refused(tiny_builtin: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'adamw' or 'muon'"):
        train_flow(dataclasses.replace(TINY_FLOW, optimizer="sgd"), setup_run(tmp_path, "cpu", seed=0, bf16=False),
                   "test", tiny_builtin / "vae")
