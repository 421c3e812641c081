"""Optimizers for the built-in models' training beyond torch's own.

Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers"; Liu et al. 2025, "Muon is Scalable
for LLM Training") steps each weight matrix by its Nesterov momentum made orthogonal with a few
Newton-Schulz iterations, so every direction of the matrix moves by about the same amount rather than
the few that dominate the gradient. Conv kernels count as (out, in * kh * kw) matrices. The step is
scaled by 0.2 sqrt(max(rows, cols)) (Moonlight's RMS match), so AdamW's learning rate carries over.
Embeddings, norms, biases and the first and last layers stay with AdamW (`hybrid_optimizer`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # the quintic of Jordan et al., steepest at zero


def orthogonalize(matrix: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """About U V^T of matrix = U S V^T (the singular values pushed into ~[0.7, 1.2]) by Newton-Schulz; a
    (..., m, n) stack is done matrix by matrix, in batched products."""
    a, b, c = NS_COEFFICIENTS
    tall = matrix.shape[-2] > matrix.shape[-1]
    x = matrix.mT if tall else matrix
    shape = x.shape
    x = x.reshape(-1, *shape[-2:])
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.mT
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    x = x.reshape(shape)
    return x.mT if tall else x


class Muon(torch.optim.Optimizer):
    """Muon for weight matrices (any tensor of 2 or more dimensions, flattened after the first)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.95,
                 weight_decay: float = 0.0, ns_steps: int = 5) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                  "ns_steps": ns_steps})
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim < 2:
                    raise ValueError(f"Muon steps matrices; a tensor of shape {tuple(p.shape)} needs AdamW")

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            # the matrices of one shape orthogonalised together: a UNet has dozens of small ones alike,
            # and one batched product costs far less than as many small ones (a flow step 0.04 s less)
            by_shape: dict[tuple[int, int], list[tuple[torch.Tensor, torch.Tensor]]] = defaultdict(list)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p)
                buf = state["momentum"]
                buf.lerp_(p.grad, 1 - momentum)
                update = p.grad.lerp(buf, momentum).reshape(len(p), -1).float()  # Nesterov
                by_shape[tuple(update.shape)].append((p, update))
            for (rows, cols), pairs in by_shape.items():
                updates = orthogonalize(torch.stack([u for _, u in pairs]), group["ns_steps"])
                for (p, _), update in zip(pairs, updates):
                    p.mul_(1 - lr * decay)
                    p.add_(update.view_as(p).to(p.dtype), alpha=-lr * 0.2 * math.sqrt(max(rows, cols)))
        return None


class Optimizers:
    """Several optimizers stepped as one: their param_groups side by side (for the lr schedule)."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:  # type: ignore[type-arg]
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()


def muon_matrices(modules: Iterable[torch.nn.Module], outer: Iterable[torch.nn.Module] = ()) -> list[torch.nn.Parameter]:
    """The weights Muon steps: every trainable weight of 2+ dimensions in `modules`, except embedding
    tables and the weights of the `outer` modules (a network's first and last layer)."""
    skip = {id(p) for m in outer for p in m.parameters()}
    out = []
    for module in modules:
        for sub in module.modules():
            if isinstance(sub, torch.nn.Embedding):
                skip.update(id(p) for p in sub.parameters())
        out += [p for p in module.parameters() if p.requires_grad and p.ndim >= 2 and id(p) not in skip]
    return out


def hybrid_optimizer(params: list[torch.nn.Parameter], matrices: list[torch.nn.Parameter], lr: float,
                     weight_decay: float = 0.01, betas: tuple[float, float] = (0.9, 0.99)) -> Optimizers:
    """Muon on `matrices` (a subset of `params`), fused AdamW on the rest of `params`, one lr."""
    chosen = {id(p) for p in matrices}
    rest = [p for p in params if id(p) not in chosen]
    return Optimizers(Muon(matrices, lr=lr, weight_decay=weight_decay),
                      torch.optim.AdamW(rest, lr=lr, betas=betas, weight_decay=weight_decay, fused=True))
