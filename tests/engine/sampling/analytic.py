"""Ground truth for samplers: a Gaussian mixture whose exact denoiser E[x0 | x, sigma] is closed-form.

Data x0 ~ sum_k w_k N(mu_k, diag(v_k)). At noise level sigma, with x = alpha x0 + sigma noise
(alpha = 1 in EDM space, 1 - t in flow space), x | k ~ N(alpha mu_k, alpha^2 v_k + sigma^2), so
E[x0 | x] = sum_k p(k | x) (mu_k + alpha v_k / (alpha^2 v_k + sigma^2) (x - alpha mu_k)).
The probability-flow ODE solution is computed to 1e-12 with scipy's DOP853 on the exact score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.integrate import solve_ivp
from torch import Tensor

from engine.sampling.core import Space


@dataclass(frozen=True)
class GaussianMixture:
    """A diagonal Gaussian mixture in d = means.shape[1] dimensions (float64)."""

    weights: Tensor  # (K,)
    means: Tensor  # (K, d)
    variances: Tensor  # (K, d)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def mean(self) -> Tensor:
        return self.weights @ self.means  # (d,)

    def covariance(self) -> Tensor:
        m = self.mean()
        second = sum(w * (torch.diag(v) + torch.outer(mu, mu)) for w, mu, v in zip(self.weights, self.means, self.variances))
        return second - torch.outer(m, m)  # (d, d)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means[k] + self.variances[k].sqrt() * z  # (n, d)

    def _posterior(self, x: Tensor, alpha: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """(p(k | x), per-component E[x0 | x, k]) for x (B, d), alpha and sigma (B,)."""
        a, s = alpha[:, None, None], sigma[:, None, None]  # (B, 1, 1)
        var = a * a * self.variances[None] + s * s  # (B, K, d)
        diff = x[:, None, :] - a * self.means[None]  # (B, K, d)
        logp = torch.log(self.weights)[None] - 0.5 * (diff * diff / var + var.log()).sum(-1)  # (B, K)
        post = torch.softmax(logp, dim=1)
        comp = self.means[None] + a * self.variances[None] / var * diff  # (B, K, d)
        return post, comp

    def denoise(self, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        post, comp = self._posterior(x, alpha, sigma)
        return (post[..., None] * comp).sum(1)  # (B, d)

    def ode_rhs(self, x: Tensor, sigma: float) -> Tensor:
        """dx/dsigma = sigma * sum_k p(k | x) (x - mu_k) / (v_k + sigma^2), the EDM PF-ODE (smooth at 0)."""
        s = torch.full((x.shape[0],), sigma, dtype=torch.float64)
        post, _ = self._posterior(x, torch.ones_like(s), s)
        var = self.variances[None] + sigma * sigma  # (1, K, d)
        return sigma * (post[..., None] * (x[:, None, :] - self.means[None]) / var).sum(1)

    def ode_solution(self, x: Tensor, sigma_from: float, sigma_to: float) -> Tensor:
        """The exact probability-flow ODE map in EDM space, to ~1e-12."""
        shape = x.shape
        flat = x.reshape(shape[0], -1).double()

        def rhs(sig: float, y: np.ndarray) -> np.ndarray:
            return self.ode_rhs(torch.from_numpy(y).reshape(flat.shape), sig).reshape(-1).numpy()

        sol = solve_ivp(rhs, (sigma_from, sigma_to), flat.reshape(-1).numpy(), method="DOP853", rtol=1e-12, atol=1e-12)
        assert sol.success, sol.message
        return torch.from_numpy(sol.y[:, -1]).reshape(shape)


class MixtureDenoiser:
    """The exact denoiser of a mixture as a sampler-contract model, in EDM or flow space; counts calls."""

    def __init__(self, mixture: GaussianMixture, space: Space = Space.EDM) -> None:
        self.mixture, self.space, self.calls = mixture, space, 0

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Any) -> Tensor:
        self.calls += 1
        alpha = torch.ones_like(sigma) if self.space is Space.EDM else 1.0 - sigma
        flat = x.reshape(x.shape[0], -1).double()
        return self.mixture.denoise(flat, alpha.double(), sigma.double()).reshape(x.shape).to(x.dtype)


def two_moons_2d() -> GaussianMixture:
    """A skewed 2-D, 3-component mixture: unequal weights, anisotropic and unequal variances."""
    return GaussianMixture(
        weights=torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64),
        means=torch.tensor([[1.0, 0.5], [-1.5, 0.0], [0.3, -1.2]], dtype=torch.float64),
        variances=torch.tensor([[0.09, 0.25], [0.16, 0.04], [0.2, 0.2]], dtype=torch.float64),
    )


def geometric_sigmas(sigma_max: float, sigma_min: float, steps: int, *, zero: bool = False) -> Tensor:
    s = torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps + 1, dtype=torch.float64))
    return torch.cat([s[:-1], torch.zeros(1, dtype=torch.float64)]) if zero else s
