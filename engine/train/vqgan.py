"""The built-in VQGAN (Esser et al. 2021, "Taming Transformers"): a diffusers VQModel with
downsampling 8 and a small codebook, trained on the shapes world with L1 + L2 reconstruction,
a commitment loss with an exponential-moving-average codebook (van den Oord et al. 2017,
appendix; Razavi et al. 2019), dead-code restarts, and a hinge PatchGAN discriminator (Isola et
al. 2017) switched on late in the run.

It trains on random 64 px crops of 128 px scenes (the model is fully convolutional: 4x cheaper
per step) and is evaluated on whole held-out scenes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import VQModel
from torch import nn

from engine.data import HELDOUT_SEEDS, iterate_batches, training_batches
from engine.train.loop import LossLog, ProgressBar, RunSetup, plot_losses, write_record


@dataclass(frozen=True)
class VQGANConfig:
    """Architecture and schedule of the built-in VQGAN."""

    steps: int = 4000  # 17 min at 2 threads; held-out PSNR 28.4 dB (3500 steps, gan_weight 0.05) -> 30.6 dB
    batch_size: int = 16  # 8 for twice the steps: the same PSNR (24.3 against 24.4 dB at equal compute)
    crop: int = 64  # training crop side, px
    # held-out PSNR after 1000 steps with edge_weight 4: lr 1.5e-4 23.0, 3e-4 23.9, 6e-4 24.4 dB
    # (1e-3: the loss rises for a while)
    lr: float = 6e-4
    warmup: int = 100
    codebook_size: int = 8192  # 13 bits per 8 x 8 patch: 512 codes cost 1.1 dB held-out PSNR at 800 steps
    latent_channels: int = 8
    block_out_channels: tuple[int, ...] = (32, 48, 64, 64)  # 4 blocks: downsampling 8
    norm_groups: int = 8
    gan_start: int = 3000  # the discriminator joins once reconstructions are good
    # 1000-step runs, discriminator from step 666: weight 0.05 23.7 dB, 0.01 24.2 dB, none 24.4 dB
    gan_weight: float = 0.01
    restart_every: int = 100  # codes unused for this many steps are moved onto encoder outputs (300: -0.2 dB)
    ema_decay: float = 0.99  # codebook EMA
    quantizer: str = "vq"  # "vq": a learned codebook; "fsq": a fixed grid (see fsq_round)
    fsq_levels: int = 8  # grid points per latent channel for "fsq" (codebook_size = levels ** channels)
    commitment: float = 0.25  # beta: how hard the encoder is pulled onto its codes (0.1: the same PSNR)
    # pixels on or next to an edge (see edge_map) weigh 1 + edge_weight in the L1 + L2 loss: two thirds
    # of the squared error sits in the 3-pixel band along outlines, 6 % of the pixels (0 -> 4: +0.25 dB at 1000 steps)
    edge_weight: float = 4.0
    grad_clip: float = 0.0  # max gradient norm of the autoencoder's step (0: none; lr 1e-3 with 1.0: 23.0 dB at 1000 steps)
    data_seed: int = 0
    eval_images: int = 256


def fsq_grid(levels: int, channels: int) -> torch.Tensor:
    """Every point of the product grid {-1, ..., 1}^channels with `levels` values per axis, in the
    order of their index sum_i k_i * levels^(channels-1-i): (levels^channels, channels)."""
    axis = torch.linspace(-1.0, 1.0, levels)
    return torch.cartesian_prod(*([axis] * channels)).reshape(-1, channels)


def fsq_round(h: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite scalar quantization (Mentzer et al. 2023) with a hard bound: each channel of h (B, C, ...)
    clamped to [-1, 1] and rounded to `levels` values; returns (values, grid indices (N,)). Nearest-
    neighbour search over the product grid decomposes per axis, so a VQModel whose codebook is
    `fsq_grid` quantizes exactly like this."""
    k = torch.round((h.clamp(-1, 1) + 1) * ((levels - 1) / 2)).long()  # (B, C, ...) integer levels
    values = torch.linspace(-1.0, 1.0, levels, device=h.device)[k]  # the grid's own values, bit for bit
    digits = k.movedim(1, -1).reshape(-1, h.shape[1])  # (N, C)
    weights = levels ** torch.arange(h.shape[1] - 1, -1, -1, device=h.device)
    return values, (digits * weights).sum(-1)


def build_vqgan(config: VQGANConfig) -> VQModel:
    """The VQModel the config describes, with random weights (a fixed grid codebook for "fsq")."""
    if config.quantizer not in ("vq", "fsq"):
        raise ValueError(f"quantizer must be 'vq' or 'fsq', got {config.quantizer!r}")
    blocks = len(config.block_out_channels)
    codes = config.fsq_levels ** config.latent_channels if config.quantizer == "fsq" else config.codebook_size
    vq = VQModel(
        in_channels=3, out_channels=3, latent_channels=config.latent_channels,
        block_out_channels=config.block_out_channels, down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks, layers_per_block=1, norm_num_groups=config.norm_groups,
        num_vq_embeddings=codes, vq_embed_dim=config.latent_channels, sample_size=128,
        mid_block_add_attention=False, scaling_factor=1.0,
    )
    if config.quantizer == "fsq":
        with torch.no_grad():
            vq.quantize.embedding.weight.copy_(fsq_grid(config.fsq_levels, config.latent_channels))
        vq.quantize.embedding.weight.requires_grad_(False)
    return vq


class PatchDiscriminator(nn.Module):
    """A PatchGAN: real/fake logits for overlapping ~22 px patches (pix2pix's N-layer discriminator)."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.GroupNorm(8, c_out), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(channels[-1], 1, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1, H/8, W/8)


def edge_map(images: torch.Tensor, threshold: float = 0.1, grow: int = 1) -> torch.Tensor:
    """(B, 1, H, W) bool: pixels whose 3 x 3 neighbourhood spans more than `threshold` (images in
    [-1, 1]) in some channel, grown by `grow` pixels. On shapes-world scenes that is the band along
    shape outlines; flat colours and gradients (a few levels per pixel) stay out."""
    spread = F.max_pool2d(images, 3, 1, 1) + F.max_pool2d(-images, 3, 1, 1)  # local max - local min
    band = (spread.amax(dim=1, keepdim=True) > threshold).float()
    return F.max_pool2d(band, 2 * grow + 1, 1, grow) > 0 if grow > 0 else band > 0


def random_crops(images: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
    """One random size x size crop of each image (B, 3, H, W)."""
    _, _, h, w = images.shape
    ys, xs = rng.integers(0, h - size + 1, len(images)), rng.integers(0, w - size + 1, len(images))
    return torch.stack([img[:, y:y + size, x:x + size] for img, y, x in zip(images, ys, xs)])


def reconstruct(vq: VQModel, x: torch.Tensor, fsq_levels: int | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reconstruction, squared commitment error, code indices (N,), encoder outputs (N, C)) for
    images in [-1, 1]; gradients reach the encoder through the straight-through estimator."""
    h = vq.encode(x).latents.float()  # (B, C, h, w) before quantization
    with torch.autocast(h.device.type, enabled=False):  # code search in float32 under any autocast
        if fsq_levels is None:
            z_q, _, (_, _, indices) = vq.quantize(h)  # z_q = h + (codes - h).detach()
        else:
            values, indices = fsq_round(h, fsq_levels)
            z_q = h + (values - h).detach()
    out = vq.decode(z_q, force_not_quantize=True).sample  # (B, 3, H, W)
    commit = (h - z_q.detach()).square().mean()
    return out, commit, indices.flatten(), h.detach().permute(0, 2, 3, 1).reshape(-1, h.shape[1])


class EMACodebook:
    """Codebook updates by exponential moving averages of the encoder outputs each code is given
    (Razavi et al. 2019, "VQ-VAE-2", eq. in appendix A), with Laplace smoothing of the counts."""

    def __init__(self, vq: VQModel, decay: float, eps: float = 1e-5) -> None:
        self.weight = vq.quantize.embedding.weight  # (K, D)
        self.weight.requires_grad_(False)
        self.decay, self.eps = decay, eps
        self.counts = torch.ones(self.weight.shape[0], device=self.weight.device)  # (K,)
        self.sums = self.weight.detach().clone()  # (K, D)

    @torch.no_grad()
    def update(self, vectors: torch.Tensor, indices: torch.Tensor) -> None:
        """Pull each chosen code towards the mean of the vectors (N, D) assigned to it."""
        k = self.weight.shape[0]
        counts = torch.bincount(indices, minlength=k).to(vectors.dtype)
        sums = torch.zeros_like(self.sums).index_add_(0, indices, vectors)
        self.counts.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.sums.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.counts.sum()
        smoothed = (self.counts + self.eps) / (n + k * self.eps) * n
        self.weight.copy_(self.sums / smoothed[:, None])

    @torch.no_grad()
    def restart_dead(self, usage: torch.Tensor, vectors: torch.Tensor, rng: np.random.Generator) -> int:
        """Move codes no input chose onto random recent encoder outputs (Dhariwal et al. 2020's
        codebook restarts); returns how many moved."""
        dead = torch.nonzero(usage == 0).flatten()
        if len(dead) == 0:
            return 0
        picks = torch.from_numpy(rng.integers(0, len(vectors), len(dead))).to(vectors.device)
        fresh = vectors[picks] + 0.01 * torch.randn_like(vectors[picks])
        self.weight[dead] = fresh
        self.sums[dead], self.counts[dead] = fresh, 1.0
        return len(dead)


def pixel_losses(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(L1, L2) between out and x (B, 3, H, W): plain means, or weighted means with per-pixel
    weights (B, 1, H, W)."""
    if weight is None:
        return (out - x).abs().mean(), (out - x).square().mean()
    total = weight.sum() * x.shape[1]
    return ((out - x).abs() * weight).sum() / total, ((out - x).square() * weight).sum() / total


def _lr(step: int, config: VQGANConfig) -> float:
    """Linear warm-up, then a cosine decay to 5 % over the run."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def evaluate(vq: VQModel, count: int, device: torch.device, batch_size: int = 32) -> dict[str, float]:
    """Held-out PSNR (dB, pixels in [0, 1], mean over images) through the full quantized path, the
    codebook perplexity, and the latent standard deviation (for the scaling factor)."""
    vq.eval()
    psnrs, latents, codes = [], [], []
    seeds = range(HELDOUT_SEEDS.start, HELDOUT_SEEDS.start + count)
    for batch in iterate_batches(seeds, batch_size):
        x = batch.images.to(device)
        h = vq.encode(x).latents
        out = vq.decode(h).sample.clamp(-1, 1)  # quantizes to the codebook
        mse = ((out - x) / 2).square().mean(dim=(1, 2, 3))  # (B,) in [0, 1] units
        psnrs.append(-10 * torch.log10(mse.clamp_min(1e-10)))
        latents.append(h)
        codes.append(vq.quantize(h)[2][2].flatten())
    vq.train()
    counts = torch.bincount(torch.cat(codes), minlength=vq.config.num_vq_embeddings).double()
    p = counts / counts.sum()
    perplexity = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
    return {"heldout_psnr_db": float(torch.cat(psnrs).mean()), "codebook_perplexity": perplexity,
            "latent_std": float(torch.cat(latents).std())}


def train_vqgan(config: VQGANConfig, setup: RunSetup, command: str) -> dict[str, float]:
    """Train, evaluate and save the VQGAN into setup.out_dir (diffusers folder + training record)."""
    device = setup.device
    rng = np.random.default_rng(config.data_seed)
    vq = build_vqgan(config).to(device).train()
    disc = PatchDiscriminator().to(device).train()
    fsq = config.fsq_levels if config.quantizer == "fsq" else None
    codebook = EMACodebook(vq, config.ema_decay) if fsq is None else None
    opt = torch.optim.AdamW([p for p in vq.parameters() if p.requires_grad], lr=config.lr, betas=(0.9, 0.99),
                            weight_decay=0.0)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=config.lr, betas=(0.5, 0.9), weight_decay=0.0)
    batches = training_batches(rng, config.batch_size)
    usage = torch.zeros(vq.config.num_vq_embeddings, dtype=torch.long, device=device)
    log, bar = LossLog(), ProgressBar(config.steps, "vqgan")
    start = time.monotonic()
    for step in range(config.steps):
        for group in opt.param_groups + opt_d.param_groups:
            group["lr"] = _lr(step, config)
        x = random_crops(next(batches).images, config.crop, rng).to(device)  # (B, 3, crop, crop)
        with setup.autocast():
            out, commit, indices, vectors = reconstruct(vq, x, fsq)
            out, commit, vectors = out.float(), commit.float(), vectors.float()
            gan = step >= config.gan_start
            g_loss = -disc(out).float().mean() if gan else None
        weight = 1.0 + config.edge_weight * edge_map(x).float() if config.edge_weight > 0 else None
        l1, l2 = pixel_losses(out, x, weight)
        loss = l1 + l2 + config.commitment * commit
        if g_loss is not None:
            loss = loss + config.gan_weight * g_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(vq.parameters(), config.grad_clip)
        opt.step()
        if codebook is not None:
            codebook.update(vectors, indices)
            usage += torch.bincount(indices, minlength=len(usage))
            if (step + 1) % config.restart_every == 0 and step + 1 < config.gan_start:
                codebook.restart_dead(usage, vectors, rng)
                usage.zero_()
        values = {"l1": l1.item(), "l2": l2.item(), "commit": commit.item()}
        if gan:
            with setup.autocast():
                real, fake = disc(x).float(), disc(out.detach()).float()
            d_loss = F.relu(1 - real).mean() + F.relu(1 + fake).mean()  # hinge
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            values |= {"g": g_loss.item(), "d": d_loss.item()}
        log.add(step, **values)
        bar.update(step + 1, log.recent())
    bar.close()
    seconds = time.monotonic() - start
    figures = evaluate(vq, config.eval_images, device)
    vq.register_to_config(scaling_factor=round(1.0 / figures["latent_std"], 5))  # unit-variance latents
    folder = setup.out_dir
    vq.save_pretrained(folder, safe_serialization=True)
    plot_losses(log, folder / "loss_curve.png", f"VQGAN training ({config.steps} steps)")
    write_record(folder, model="vqgan", command=command, data_seed=config.data_seed, config=config,
                 figures=figures, setup=setup, seconds=seconds)
    return figures


def load_vqgan(folder: Path, device: torch.device | str = "cpu") -> VQModel:
    """The trained VQGAN from its folder."""
    return VQModel.from_pretrained(str(folder), local_files_only=True).to(device).eval()
