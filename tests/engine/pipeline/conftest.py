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
