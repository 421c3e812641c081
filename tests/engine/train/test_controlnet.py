"""The built-in ControlNets: a tiny run on the tiny built-in model, found by the store as ControlNets
that fit only that model, and used by the engine for a job's control unit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from engine.data import make_sample
from engine.models import ModelKind, ModelStore
from engine.models.loader import controlnet_fits
from engine.pipeline import Engine
from engine.pipeline.inputs import ImageInputs
from engine.settings import ControlUnit, Job, ModelRef
from engine.train.controlnet import ControlNetConfig, train_controlnets
from engine.train.loop import setup_run


@pytest.fixture(scope="module")
def tiny_controlnets(tiny_builtin: Path, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("cn") / "controlnet"
    config = ControlNetConfig(steps=2, transfer_steps=0, batch_size=2, warmup=1, train_scenes=4, eval_scenes=2)
    results = train_controlnets(config, setup_run(out, "cpu", seed=0, bf16=False), "test", tiny_builtin,
                                kinds=("edges", "segmentation"))
    assert set(results) == {"edges", "segmentation"}
    assert all(np.isfinite(v) for figures in results.values() for v in figures.values())
    return out


def test_each_controlnet_is_a_diffusers_folder_with_its_record(tiny_controlnets: Path, tiny_builtin: Path) -> None:
    folder = tiny_controlnets / f"{tiny_builtin.name}-canny"
    assert {"config.json", "diffusion_pytorch_model.safetensors", "training.json", "loss_curve.png"} <= {
        p.name for p in folder.iterdir()}
    assert json.loads((folder / "training.json").read_text())["model"] == "controlnet-edges"


def test_the_engine_finds_and_uses_the_builtin_controlnet(tiny_controlnets: Path, tiny_builtin: Path) -> None:
    engine = Engine(device="cpu", store=ModelStore.with_roots([tiny_builtin.parent, tiny_controlnets.parent]))
    kinds = {e.name for e in engine.scan_models().of_kind(ModelKind.CONTROLNET)}
    assert kinds == {"controlnet/atelier-shapes-canny", "controlnet/atelier-shapes-seg"}
    edges = make_sample(3, controls=("edges",)).edges
    base = engine.recommended(Job(model=ModelRef(path=str(tiny_builtin)), prompt="a red star", steps=3, seed=2))
    unit = ControlUnit(type="canny", image="edges.png")  # the studio's type for edge maps
    (plain,) = engine.run(base)
    (controlled,) = engine.run(dataclasses.replace(base, controls=(unit,)), ImageInputs(images={"edges.png": edges}))
    assert controlled.image.shape == plain.image.shape
    model, _ = engine.load(base.model)
    folder = tiny_controlnets / f"{tiny_builtin.name}-canny"
    assert controlnet_fits(folder, model.denoiser.config)
    assert not controlnet_fits(folder, {**model.denoiser.config, "cross_attention_dim": 768})  # an SD1.5 UNet


def test_later_kinds_can_start_from_the_edge_controlnet(tiny_builtin: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    config = ControlNetConfig(steps=2, transfer_steps=1, batch_size=2, warmup=1, train_scenes=4, eval_scenes=2)
    out = tmp_path / "controlnet"
    train_controlnets(config, setup_run(out, "cpu", seed=0, bf16=False), "test", tiny_builtin,
                      kinds=("edges", "scribble"))
    record = json.loads((out / f"{tiny_builtin.name}-scribble" / "training.json").read_text())
    assert record["config"]["started_from"] == str(out / f"{tiny_builtin.name}-canny")
    edges = json.loads((out / f"{tiny_builtin.name}-canny" / "training.json").read_text())
    assert "started_from" not in edges["config"]
    first = load_file(str(out / f"{tiny_builtin.name}-scribble" / "diffusion_pytorch_model.safetensors"))
    # trained alone into the same folder, the scribble ControlNet is the same one
    train_controlnets(config, setup_run(out, "cpu", seed=0, bf16=False), "test", tiny_builtin, kinds=("scribble",))
    again = load_file(str(out / f"{tiny_builtin.name}-scribble" / "diffusion_pytorch_model.safetensors"))
    assert all(first[k].equal(again[k]) for k in first)
    with pytest.raises(FileNotFoundError, match="train --kind canny into this folder first"):
        train_controlnets(config, setup_run(tmp_path / "empty", "cpu", seed=0, bf16=False), "test", tiny_builtin,
                          kinds=("scribble",))
