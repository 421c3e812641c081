"""Per-family text conditioning equals what diffusers' own pipelines feed their denoisers."""

from __future__ import annotations

import pytest
import torch
from diffusers import (
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)

from engine.conditioning.family import encode_sd, encode_sd3, encode_sdxl, sdxl_time_ids
from engine.models import LoadOptions, load_model
from engine.models.families import Family

PROMPT, NEGATIVE = "a red star at the top left", "blurry, lowres"


def _load(tiny_models, tiny_resources, family: Family):  # type: ignore[no-untyped-def]
    return load_model(tiny_models[family].folder, LoadOptions(), tiny_resources)


def test_sd1_matches_diffusers(tiny_models, tiny_resources) -> None:
    m = _load(tiny_models, tiny_resources, Family.SD1)
    pipe = StableDiffusionPipeline(**m.components(), scheduler=EulerDiscreteScheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    ref_pos, ref_neg = pipe.encode_prompt(PROMPT, "cpu", 1, True, NEGATIVE)
    pos, neg = encode_sd(m.tokenizers[0], m.text_encoders[0], PROMPT, NEGATIVE)
    torch.testing.assert_close(pos.hidden, ref_pos)
    torch.testing.assert_close(neg.hidden, ref_neg)


@pytest.mark.parametrize("negative", [NEGATIVE, ""])
def test_sdxl_matches_diffusers(tiny_models, tiny_resources, negative: str) -> None:
    m = _load(tiny_models, tiny_resources, Family.SDXL)
    pipe = StableDiffusionXLPipeline(**m.components(), scheduler=EulerDiscreteScheduler())
    ref = pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
                             negative_prompt=negative or None)  # no negative: diffusers zeros it
    pos, neg = encode_sdxl(m.tokenizers, m.text_encoders, PROMPT, negative)
    for ours, theirs in zip((pos.hidden, neg.hidden, pos.pooled, neg.pooled), ref):
        torch.testing.assert_close(ours, theirs)
    assert sdxl_time_ids(1024, 768).tolist() == [[768, 1024, 0, 0, 768, 1024]]


def test_sd3_without_t5_matches_diffusers(tiny_models, tiny_resources) -> None:
    m = _load(tiny_models, tiny_resources, Family.SD3)
    parts = m.components()
    pipe = StableDiffusion3Pipeline(**parts, text_encoder_3=None, tokenizer_3=None,
                                    scheduler=FlowMatchEulerDiscreteScheduler())
    ref = pipe.encode_prompt(PROMPT, None, None, device="cpu", negative_prompt=NEGATIVE)
    joint = m.denoiser.config.joint_attention_dim
    pos, neg = encode_sd3(m.tokenizers, m.text_encoders, PROMPT, NEGATIVE, joint_dim=joint)
    for ours, theirs in zip((pos.hidden, neg.hidden, pos.pooled, neg.pooled), ref):
        torch.testing.assert_close(ours, theirs)
