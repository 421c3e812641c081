"""A flow-matching UNet model with a VQGAN autoencoder (the shape of Atelier's built-in model):
detected, loaded and run by the engine, decoding through the codebook."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, VQModel

from engine.decoding.vae import decode, is_vq
from engine.models import ModelKind
from engine.models.detect import detect_path
from engine.models.families import Family
from engine.pipeline import Engine
from engine.pipeline.generate import model_denoiser
from engine.sampling import FlowDenoiser
from engine.settings import ModelRef
from tests.engine.models.tiny import VAE
from tests.engine.pipeline.conftest import tiny_job


@pytest.fixture(scope="module")
def vq_flow_folder(tiny_models, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The tiny SD1 folder with its VAE swapped for a tiny VQGAN and a flow-matching scheduler."""
    folder = tmp_path_factory.mktemp("vqflow") / "tiny-vq-flow"
    shutil.copytree(tiny_models[Family.SD1].folder, folder)
    shutil.rmtree(folder / "vae")
    torch.manual_seed(5)
    keep = ("in_channels", "out_channels", "latent_channels", "block_out_channels", "down_block_types",
            "up_block_types", "layers_per_block", "norm_num_groups", "sample_size")
    vq = VQModel(**{k: VAE[k] for k in keep if k in VAE}, num_vq_embeddings=32, vq_embed_dim=VAE["latent_channels"],
                 scaling_factor=1.3)
    vq.save_pretrained(folder / "vae", safe_serialization=True)
    shutil.rmtree(folder / "scheduler")
    FlowMatchEulerDiscreteScheduler(shift=2.0).save_pretrained(folder / "scheduler")
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(config | {"prediction_type": "flow"}))
    return folder


def test_vq_component_is_detected_as_an_autoencoder(vq_flow_folder: Path) -> None:
    det = detect_path(vq_flow_folder / "vae")
    assert det.kind is ModelKind.VAE and det.architecture == "vqgan"
    assert detect_path(vq_flow_folder).prediction_type == "flow"


def test_engine_generates_with_a_vq_flow_model(engine: Engine, tiny_models, vq_flow_folder: Path) -> None:
    job = tiny_job(tiny_models, model=ModelRef(path=str(vq_flow_folder)),
                   schedule="flow_shift", sampler="euler", steps=3)
    model, _ = engine.load(job.model)
    assert is_vq(model.vae) and model.prediction_type == "flow"
    base, _ = model_denoiser(model)
    assert isinstance(base, FlowDenoiser) and base.levels.shift == 2.0
    (result,) = engine.run(job)
    again = engine.run(job)[0]
    assert result.image.shape == (64, 64, 3) and np.array_equal(result.image, again.image)
    # The decode quantizes: latents a little off a code decode exactly like the code itself.
    codes = model.vae.quantize.embedding.weight  # (K, C)
    z = codes[torch.arange(32 * 32) % 32].T.reshape(1, -1, 32, 32) * model.vae.config.scaling_factor
    torch.testing.assert_close(decode(model.vae, z + 1e-3), decode(model.vae, z))
