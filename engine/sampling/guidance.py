"""Guidance as a denoiser wrapper: classifier-free guidance (Ho & Salimans 2022) with cond and
uncond in one batched call, guidance rescale (Lin et al. 2023), a guidance window over noise
levels, a classifier-guidance hook (Dhariwal & Nichol 2021) and autoguidance (Karras et al. 2024,
"Guiding a Diffusion Model with a Bad Version of Itself"): the cond prediction pushed away from a
weaker model's, which sharpens what the model already draws rather than what the prompt asks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from engine.sampling.core import FLOW_EDM_MAX_T, Denoiser, Space, check_sigmas, space_of

# (x, sigma) -> grad_x log p(y | x) at that noise level, shaped like x; called with autograd enabled.
ClassifierGrad = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Guidance:
    """How to guide: CFG scale, rescale phi, the fraction of steps with CFG, a classifier hook."""

    scale: float = 7.0
    rescale: float = 0.0  # phi in [0, 1]; 0 is plain CFG
    start: float = 0.0  # CFG applies from this fraction of the steps ...
    end: float = 1.0  # ... up to this one; outside, only the cond branch runs
    classifier: ClassifierGrad | None = None
    classifier_scale: float = 1.0
    autoguidance: float = 0.0  # w: cond + w (cond - guide's cond); 0 runs no guide model


    def __post_init__(self) -> None:
        if not math.isfinite(self.scale):
            raise ValueError(f"guidance scale must be finite, got {self.scale}")
        if not 0.0 <= self.rescale <= 1.0:
            raise ValueError(f"guidance rescale must lie in [0, 1], got {self.rescale}")
        if not 0.0 <= self.start <= self.end <= 1.0:
            raise ValueError(f"guidance window needs 0 <= start <= end <= 1, got ({self.start}, {self.end})")
        if not (math.isfinite(self.autoguidance) and self.autoguidance >= 0.0):
            raise ValueError(f"autoguidance must be finite and >= 0, got {self.autoguidance}")


def batch_cond(uncond: Any, cond: Any, key: str = "cond") -> Any:
    """Concatenate uncond and cond along the batch: tensors are stacked, dicts recursed, the rest must match."""
    if isinstance(cond, Tensor):
        if not isinstance(uncond, Tensor) or uncond.shape != cond.shape:
            got = tuple(uncond.shape) if isinstance(uncond, Tensor) else type(uncond).__name__
            raise ValueError(f"uncond {key!r} must match cond's shape {tuple(cond.shape)}, got {got}")
        return torch.cat([uncond, cond])
    if isinstance(cond, Mapping):
        if not isinstance(uncond, Mapping) or uncond.keys() != cond.keys():
            raise ValueError(f"uncond {key!r} must have the same keys as cond")
        return {k: batch_cond(uncond[k], cond[k], k) for k in cond}
    if uncond != cond:
        raise ValueError(f"non-tensor argument {key!r} differs between cond and uncond")
    return cond


def _per_sample_std(t: Tensor) -> Tensor:
    return t.std(dim=tuple(range(1, t.ndim)), keepdim=True)  # (B, 1, ...)


class CFGDenoiser:
    """A denoiser applying classifier-free (and optionally classifier) guidance to `model`; with a `guide`
    (a weaker denoiser of the same kind, called with `guide_cond`) and guidance.autoguidance w > 0, the
    result moves by w (cond - guide) at every step, inside the CFG window or not."""

    def __init__(self, model: Denoiser, cond: Mapping[str, Any], uncond: Mapping[str, Any], guidance: Guidance,
                 sigmas: Tensor, guide: Denoiser | None = None, guide_cond: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.guide = guide if guidance.autoguidance > 0.0 else None
        self.guide_cond = dict(guide_cond or {})
        self.cond = dict(cond)
        self.batched = batch_cond(dict(uncond), self.cond)
        self.guidance = guidance
        self.space = space_of(model)
        self.levels = getattr(model, "levels", None)
        sig = check_sigmas(sigmas)
        n = len(sig) - 1
        self.sigma_hi = sig[math.ceil(guidance.start * n)]  # guided while sigma_lo < sigma <= sigma_hi
        self.sigma_lo = sig[math.ceil(guidance.end * n)] if guidance.end < 1.0 else -1.0

    def _guided(self, sigma: Tensor) -> bool:
        s = float(sigma[0])
        return self.guidance.scale != 1.0 and self.sigma_lo < s <= self.sigma_hi

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        if not self._guided(sigma):
            denoised = cond = self.model(x, sigma, **self.cond, **extra)
        else:
            both = self.model(torch.cat([x, x]), torch.cat([sigma, sigma]), **self.batched, **extra)  # (2B, ...)
            uncond, cond = both.chunk(2)
            denoised = uncond + (cond - uncond) * self.guidance.scale
            if self.guidance.rescale > 0.0:
                denoised = self._rescale(x, sigma, cond, denoised)
        if self.guide is not None:  # the predictions are linear in x0, eps, v alike: one form serves all
            denoised = denoised + (cond - self.guide(x, sigma, **self.guide_cond)) * self.guidance.autoguidance
        if self.guidance.classifier is not None:
            denoised = denoised + self._classifier_shift(x, sigma)
        return denoised

    def _rescale(self, x: Tensor, sigma: Tensor, cond: Tensor, guided: Tensor) -> Tensor:
        """Match the std of the guided noise prediction to the cond one (Lin et al. 2023, Algorithm 2)."""
        s = sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))  # (B, 1, ...)
        eps_cond, eps_cfg = (x - cond) / s, (x - guided) / s
        rescaled = eps_cfg * (_per_sample_std(eps_cond) / _per_sample_std(eps_cfg))
        phi = self.guidance.rescale
        return x - (rescaled * phi + eps_cfg * (1.0 - phi)) * s

    def _classifier_shift(self, x: Tensor, sigma: Tensor) -> Tensor:
        """sigma^2 / alpha * grad log p(y | x): the change of E[x0 | x] when the gradient joins the score."""
        with torch.enable_grad():
            grad = self.guidance.classifier(x.detach(), sigma)  # type: ignore[misc]
        if grad.shape != x.shape:
            raise ValueError(f"classifier gradient has shape {tuple(grad.shape)}, expected {tuple(x.shape)}")
        s = sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        alpha = torch.ones_like(s) if self.space is Space.EDM else (1.0 - s).clamp_min(1.0 - FLOW_EDM_MAX_T)
        return grad.detach() * (s * s / alpha) * self.guidance.classifier_scale
