"""Pipeline fixtures: an engine over the tiny models (CPU, fp32) and small job helpers."""

from __future__ import annotations

from typing import Any

import pytest

from engine.models import ModelStore
from engine.models.families import Family
from engine.pipeline import Engine
from engine.settings import Job, ModelRef

SIZE = 64  # pixels; the tiny VAEs downsample by 2, so latents are 32 x 32


def tiny_job(tiny_models, family: Family = Family.SD1, **changes: Any) -> Job:  # type: ignore[no-untyped-def]
    """A small fast job on a tiny model (its diffusers folder)."""
    base: dict[str, Any] = dict(model=ModelRef(path=str(tiny_models[family].folder)), prompt="a red star",
                                negative_prompt="blurry", seed=7, steps=4, sampler="euler",
                                schedule="flow_shift" if family is Family.SD3 else "karras", cfg_scale=5.0,
                                width=SIZE, height=SIZE)
    base.update(changes)
    return Job(**base)


@pytest.fixture(scope="session")
def engine(tiny_models, tiny_resources) -> Engine:  # type: ignore[no-untyped-def]
    """A CPU engine whose store holds the tiny models (folders and single files)."""
    root = tiny_models[Family.SD1].folder.parent
    return Engine(device="cpu", store=ModelStore.with_roots([root]), resources=tiny_resources)


# ---- the built-in shapes model (a real trained 128 px model) ---------------------------------

SHAPES_PROMPT = "a large red star at the top left and a blue ring at the bottom right on a yellow background"


@pytest.fixture(scope="module")
def shapes_engine() -> Engine:
    """A CPU engine that sees no user models: jobs run on the built-in model."""
    return Engine(device="cpu", store=ModelStore.with_roots([]))


@pytest.fixture(scope="module")
def base_job() -> Job:
    """A fast 128 px job on the built-in model (8 Euler steps)."""
    from engine.pipeline import builtin_model

    folder = builtin_model()
    assert folder is not None
    return Job(model=ModelRef(path=str(folder)), prompt=SHAPES_PROMPT, seed=1, steps=8, sampler="euler",
               schedule="flow_shift", cfg_scale=4.0, width=128, height=128)


@pytest.fixture(scope="module")
def base_image(shapes_engine: Engine, base_job: Job) -> Any:
    """The base job's image, (128, 128, 3) uint8."""
    return shapes_engine.run(base_job)[0].image
