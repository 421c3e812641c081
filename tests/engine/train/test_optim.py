"""Muon and the hybrid optimizer the flow trainer can use (engine.train.optim)."""

from __future__ import annotations

import pytest
import torch

from engine.train.optim import Muon, hybrid_optimizer, muon_matrices, orthogonalize


@pytest.mark.parametrize("shape", [(24, 96), (96, 24), (32, 32)])
def test_orthogonalize_flattens_the_singular_values_and_keeps_the_directions(shape: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(shape[0], min(shape), generator=g))
    v, _ = torch.linalg.qr(torch.randn(shape[1], min(shape), generator=g))
    s = torch.logspace(-1, 1, min(shape))  # singular values 100x apart
    m = u @ torch.diag(s) @ v.T
    out = orthogonalize(m)
    values = torch.linalg.svdvals(out)
    assert out.shape == m.shape
    assert values.min() > 0.5 and values.max() < 1.3  # the quintic lands them in ~[0.7, 1.2]
    polar = u @ v.T  # the exact answer, U V^T
    assert torch.nn.functional.cosine_similarity(out.flatten(), polar.flatten(), dim=0) > 0.97


def test_muon_steps_matrices_only() -> None:
    with pytest.raises(ValueError, match="needs AdamW"):
        Muon([torch.nn.Parameter(torch.zeros(4))], lr=0.1)


def test_muon_matrices_leave_embeddings_outer_layers_and_vectors_to_adamw() -> None:
    net = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 8), torch.nn.LayerNorm(8),
                              torch.nn.Conv2d(8, 8, 3), torch.nn.Linear(8, 2))
    chosen = {id(p) for p in muon_matrices([net], outer=[net[4]])}
    assert chosen == {id(net[1].weight), id(net[3].weight)}


def test_the_hybrid_optimizer_fits_a_regression_and_follows_the_lr_schedule() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 16)
    y = torch.sin(x @ torch.randn(16, 4))
    net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU(),
                              torch.nn.Linear(64, 4))
    params = list(net.parameters())
    opt = hybrid_optimizer(params, muon_matrices([net], outer=[net[0], net[4]]), lr=3e-3)
    assert len(opt.param_groups) == 2 and sum(len(g["params"]) for g in opt.param_groups) == len(params)
    first = torch.nn.functional.mse_loss(net(x), y).item()
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    before = net[2].weight.detach().clone()
    for group in opt.param_groups:
        group["lr"] = 0.0  # weight decay scales with lr too: nothing moves
    net(x).sum().backward()
    opt.step()
    assert torch.equal(net[2].weight, before)


def test_a_stack_of_matrices_is_orthogonalised_matrix_by_matrix() -> None:
    g = torch.Generator().manual_seed(1)
    for shape in [(5, 12, 40), (3, 40, 12)]:
        stack = torch.randn(shape, generator=g)
        alone = torch.stack([orthogonalize(m) for m in stack])
        assert torch.allclose(orthogonalize(stack), alone, atol=1e-5)
