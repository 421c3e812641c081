"""VAE/VQGAN decoding with scaling, tiled decoding with blending, and latent previews."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, VQModel

from engine.decoding.preview import LatentPreview, fit_preview, preview_for
from engine.decoding.vae import LatentScaling, TileSpec, _starts, decode, encode, from_uint8, to_uint8


def _kl(scale: float = 0.5, shift: float | None = None) -> AutoencoderKL:
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, norm_num_groups=8, scaling_factor=scale, shift_factor=shift, sample_size=32,
    )
    return vae.eval()


def _vq() -> VQModel:
    torch.manual_seed(0)
    return VQModel(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, norm_num_groups=8, num_vq_embeddings=16, vq_embed_dim=4, sample_size=32,
    ).eval()


def test_scaling_and_shift_are_applied() -> None:
    vae = _kl(scale=0.5, shift=0.25)
    assert LatentScaling.of(vae) == LatentScaling(0.5, 0.25)
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    z = encode(vae, images)
    raw = vae.encode(images).latent_dist.mode()
    torch.testing.assert_close(z, (raw - 0.25) * 0.5)
    torch.testing.assert_close(decode(vae, z), vae.decode(raw).sample.clamp(-1, 1))


def test_vq_decode_quantizes_to_the_codebook() -> None:
    vq = _vq()
    z = torch.randn(1, 4, 8, 8)
    out = decode(vq, z)
    quantized, *_ = vq.quantize(z / vq.config.scaling_factor)
    expected = vq.decode(quantized, force_not_quantize=True).sample.clamp(-1, 1)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, vq.decode(z, force_not_quantize=True).sample.clamp(-1, 1))


@pytest.mark.parametrize(("size", "tile", "overlap"), [(40, 16, 4), (33, 16, 8), (16, 16, 4), (100, 32, 8)])
def test_tile_starts_cover_the_image(size: int, tile: int, overlap: int) -> None:
    starts = _starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, size) == size
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_tiled_decode_is_close_to_full_decode_and_seamless() -> None:
    """A random-weight decoder is a harsh case (no trained locality); the bound is loose but the
    shared GroupNorm statistics must at least halve the error of naive per-tile decoding."""
    from engine.decoding.vae import _decode_tiled

    vae = _kl()
    torch.manual_seed(1)
    z = F.interpolate(torch.randn(1, 4, 6, 8), size=(48, 64), mode="bilinear")  # smooth latents
    full = decode(vae, z)
    tiled = decode(vae, z, TileSpec(tile=24, overlap=12))
    naive = _decode_tiled(vae, z / vae.config.scaling_factor, TileSpec(tile=24, overlap=12), passes=1).clamp(-1, 1)
    assert tiled.shape == full.shape == (1, 3, 96, 128)
    err = (tiled - full).abs()
    assert err.mean() < 0.08, err.mean()
    assert err.mean() < 0.7 * (naive - full).abs().mean()
    # no seam: the error along tile boundaries is not much larger than elsewhere
    col = err.mean(dim=(0, 1, 2))  # (W,)
    assert col.max() < 4 * col.mean(), (col.max(), col.mean())


def test_shared_group_norm_statistics_are_exact() -> None:
    """The tiled GroupNorm gives GroupNorm's own result on a whole image, and the statistics merged
    from tiles that split an image are those of the whole image."""
    from engine.decoding.vae import _GroupNormStats

    torch.manual_seed(3)
    norm = torch.nn.GroupNorm(4, 8)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 8, 12, 10) * 3 + 1
    with _GroupNormStats(norm) as stats:
        torch.testing.assert_close(norm(x), F.group_norm(x, 4, norm.weight, norm.bias, norm.eps))
        stats._moments = {}
        for left, right in ((0, 4), (4, 10)):  # two tiles, each recording only its own columns
            stats.core = (0.0, 1.0, left / 10, right / 10)
            norm(x)
        stats.end_pass()
        mean, var = stats.shared[id(norm)]
        grouped = x.reshape(2, 4, -1).double()
        torch.testing.assert_close(mean, grouped.mean(-1))
        torch.testing.assert_close(var, grouped.var(-1, unbiased=False))
        torch.testing.assert_close(norm(x[..., 4:]), F.group_norm(x, 4, norm.weight, norm.bias, norm.eps)[..., 4:],
                                   rtol=1e-5, atol=1e-5)  # a tile normalised with the whole image's statistics
    assert "forward" not in vars(norm)  # the module is restored


def test_tile_spec_validation() -> None:
    with pytest.raises(ValueError, match="tile"):
        TileSpec(tile=4)
    with pytest.raises(ValueError, match="overlap"):
        TileSpec(tile=16, overlap=12)


def test_uint8_round_trip() -> None:
    import numpy as np

    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(from_uint8(img))[0], img)


def test_preview_maps() -> None:
    sd = LatentPreview.sd()
    out = sd(torch.zeros(4, 8, 8))
    assert out.shape == (8, 8, 3) and out.dtype.name == "uint8" and (out == 128).all()
    with pytest.raises(ValueError, match="4 channels"):
        sd(torch.zeros(16, 8, 8))


class _LinearEncoder(torch.nn.Module):
    """An autoencoder stand-in whose latents are a known linear map of the pixel colours, so the
    fitted preview has an exact answer."""

    def __init__(self, mix: torch.Tensor) -> None:
        super().__init__()
        self.mix = mix  # (C, 3)
        self.config = type("Config", (), {"scaling_factor": 1.0, "shift_factor": None, "latent_channels": mix.shape[0]})()
        self.register_buffer("anchor", torch.zeros(1))

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype

    def encode(self, images: torch.Tensor):  # type: ignore[no-untyped-def]
        small = F.avg_pool2d(images, 8)  # (N, 3, h, w)
        latents = torch.einsum("cr,nrhw->nchw", self.mix, small) + 0.1
        dist = type("Dist", (), {"mode": lambda self: latents})()
        return type("Out", (), {"latent_dist": dist})()


def test_fitted_preview_recovers_a_known_linear_map() -> None:
    torch.manual_seed(3)
    mix = torch.randn(6, 3)
    preview = fit_preview(_LinearEncoder(mix), size=64, samples=6)
    colour = torch.tensor([0.8, -0.6, 0.2])
    latents = mix @ colour + 0.1  # (6,)
    got = preview(latents[:, None, None].expand(6, 4, 4)).astype(float)[0, 0] / 127.5 - 1
    assert abs(got - colour.numpy()).max() < 0.02, got


def test_preview_choice_by_family() -> None:
    vae = _kl(scale=0.18215)
    assert torch.equal(preview_for(vae, "sd1").factors, LatentPreview.sd().factors)
    assert preview_for(_kl(scale=0.13025), "sdxl").bias[0] == pytest.approx(0.1084)
