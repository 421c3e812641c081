"""The built-in text-to-image model: a latent rectified flow (Liu et al. 2022; Esser et al. 2024,
"Scaling Rectified Flow Transformers", the SD3 recipe) in the built-in VQGAN's latent space.

x_t = (1 - t) x_0 + t e is the straight path from a latent x_0 to noise e; a UNet2DConditionModel
learns the velocity v = e - x_0, with t drawn from a logit-normal distribution (SD3's
"lognorm(0, 1)"), from the text states of a small CLIP text encoder (the CLIP architecture and
the real CLIP tokenizer, trained from scratch together with the UNet). Captions are dropped to
the empty prompt 10 % of the time, so classifier-free guidance works at inference.

The MSE weighs the latent pixels a shape touches (and their ring) 1 + shape_weight times a background
one. Each pixel's optimum is still the mean velocity, so the flow is the same; what changes is where
the small model's capacity goes: shapes cover about a third of the latent pixels (with the ring) yet
all of the prompt's hard part, and plain MSE spends most of its gradient on the easy background.

The result is an SD1-shaped diffusers folder with a flow scheduler, loaded by the same code as
users' checkpoints; only the UNet and text encoder weights are stored in float16 (the loader
casts them to the run's dtype), which halves the download-free install.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel, VQModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from engine.conditioning.clip import window_ids
from engine.data import HELDOUT_SEEDS, SEGMENTATION_COLOURS, SHAPE_CLASSES, iterate_batches, split_seeds
from engine.models.card import write_card
from engine.sampling.schedules import shift_time
from engine.train.loop import LossLog, ProgressBar, RunSetup, fast_bf16, plot_losses, write_record
from engine.train.optim import hybrid_optimizer, muon_matrices

CLIP_BOS, CLIP_EOS = 49406, 49407


@dataclass(frozen=True)
class FlowConfig:
    """Architecture and schedule of the built-in flow model."""

    # 3500 -> 7000 steps: colour 83 -> 93 %, class 45 -> 49 % (with the earlier settings). With Muon and the
    # guide, 7000 -> 5500 steps (92 -> 69 min on the 2-core CPU, to fit the 2-hour budget): class 79.2 -> 74.5 %
    # at autoguidance 2, colour 97.4 % both; with the semantic loss (below) 5500 steps give 91.9 %
    steps: int = 5500
    # half the batch at equal compute (32, 14000 steps, lr 1.2e-3, warmup 400, EMA 0.9995): class 65.4 -> 69.0 %
    # on the benchmark's prompts but 62.1 -> 61.4 % on 300 others, colour 96.5 -> 96.3 and 96.3 -> 95.1 %
    batch_size: int = 64
    # 4e-4 -> 8e-4 (the model underfits: its error on training scenes is within 1-4 % of the held-out one):
    # class 49.9 -> 57.8 % on the benchmark's prompts, 50.2 -> 55.9 % on 300 others; colour 92.5 -> 94.1 %.
    # 8e-4 -> 1.2e-3: class 57.8 -> 59.5 % (benchmark's prompts), 53.6 -> 58.7 % (300 others), colour
    # 94.1 -> 93.0 and 93.0 -> 94.0 %; held-out velocity error 3-7 % lower at every t. 1.2e-3 -> 1.6e-3:
    # class 59.5 -> 65.4 % and 58.7 -> 62.1 %, colour 93.0 -> 96.5 and 94.0 -> 96.3 %; velocity error
    # 1-2 % lower at t <= 0.5, 1-7 % higher at 0.7 and 0.9. 1.6e-3 -> 2e-3 (past the peak): class 65.4 -> 64.0 %
    # and 62.1 -> 59.0 %, colour 96.5 -> 92.3 and 96.3 -> 95.3 %, velocity error 1-2 % higher at every t
    lr: float = 1.6e-3
    warmup: int = 200
    caption_dropout: float = 0.1
    ema_decay: float = 0.999
    train_scenes: int = 12000  # scenes encoded once into the latent cache, cycled in a fixed shuffled order
    # text encoder (CLIP architecture; the 49408-token embedding dominates its size)
    text_hidden: int = 96
    text_layers: int = 3
    text_heads: int = 4
    # UNet on 16 x 16 latents
    # (32, 64, 96) -> (64, 64, 96): twice the channels at 16 px, where a shape's outline is drawn; 2.8M -> 3.2M
    # weights, steps 1.3x as long; class 65.4 -> 68.2 % (benchmark's prompts) and 62.1 -> 65.7 % (300 others),
    # colour 96.5 -> 94.4 and 96.3 -> 97.4 %; held-out velocity error 1-11 % lower at every t
    block_out_channels: tuple[int, ...] = (64, 64, 96)
    attention: tuple[bool, ...] = (False, True, True)  # self- and cross-attention at 8 and 4 px, not at 16
    layers_per_block: int = 1
    attention_heads: int = 4
    # the flow shift of sampling and of the logit-normal training times (1: none; SD3 uses 3 at 1024 px).
    # Sampling alone at shift 1, 3: colour 78, 79 %; trained and sampled at 3: 87 % (class 36, 40, 40 %)
    shift: float = 3.0
    train_shift: float = 3.0
    # the share of training times drawn without the shift (training_times; 0 trains only at shift 3, which
    # leaves 8 % of the times below 0.43). 0 -> 0.5 on 300 tuning prompts: class 46.2 -> 50.2 %, colour 93.7
    # -> 93.0 %; held-out velocity error at t 0.1/0.3/0.5 0.53/0.19/0.154 -> 0.35/0.16/0.148, at 0.7/0.9
    # 0.21/0.36 -> 0.23/0.47
    unshifted_share: float = 0.5
    # extra loss weight on latent pixels at and next to shapes (0: plain MSE); the per-pixel optimum
    # is unchanged, the model's capacity goes where the prompt's shapes are rather than to the background
    shape_weight: float = 12.0  # 0, 4, 12 on 200 held-out prompts: colour 63, 69, 80 %; class 30, 36, 38 %
    # how that extra weight shares out between shapes (size_weights): 0, each shape cell alike, so a large
    # shape's 81 cells outweigh a small one's 25; 1, each shape the same in all whatever its size. Small
    # shapes are the weak ones (one-shape prompts: large 17/19 found, small 8/20), but 0 -> 1 cost more
    # than it gained: class 68.2 -> 57.4 % (benchmark's prompts) and 65.7 -> 62.1 % (300 others), colour
    # 94.4 -> 97.7 and 97.4 -> 95.7 %, held-out velocity error 2-9 % higher at every t (large shapes 17 -> 12
    # of 19 in one-shape prompts, small 8 -> 7 of 20)
    size_power: float = 0.0
    # "adamw", or "muon": Muon (engine.train.optim) on the UNet's and text encoder's weight matrices, AdamW
    # on embeddings, norms, biases and the UNet's first and last conv, at the same lr. AdamW -> Muon on a
    # 2000-step run (the guide's, frozen text encoder): held-out velocity error 0.306 0.143 0.130 0.209 0.460
    # -> 0.289 0.129 0.116 0.192 0.453, class 53.0 -> 57.8 %, colour 91.6 -> 95.1 % (CFG 4, no guide); the
    # whole run (with guide_step 2000): CFG 4 alone class 68.2 -> 77.0 %, colour 94.4 -> 97.2 %; 0.13 s a
    # step more (Newton-Schulz) on the 2-core CPU
    optimizer: str = "muon"
    # the autoguidance guide taken from this run (0: none): the text encoder trains until this step and
    # then stays frozen at its EMA weights, and the UNet's EMA at that step, a weaker model on the very
    # same text states, is saved as guide/ (no training of its own: python -m engine.train flow-guide
    # trains one separately). A guide needs the text states it was trained on: the 2000-step model used as
    # guide on the final model's text encoder gave class 67.2 / 68.4 % at weight 1 / 2 (68.2 % without)
    guide_step: int = 2000
    # a supervised representation loss (after REPA, Yu et al. 2025, with the scenes' own labels instead of
    # a pretrained encoder's features): a small head on the UNet's encoder features at down block
    # `semantic_level` predicts which classes cover each cell of the clean scene (soft labels from its
    # segmentation map, background included), cross-entropy times semantic_weight added to the flow
    # loss (0: off); the head is dropped when the model is saved. 0 -> 0.5 at 5500 steps (head at 8 px,
    # 16 px cells; 3 % more time a step): class 74.5 -> 91.9 % on the benchmark's prompts (autoguidance 2),
    # colour 97.4 -> 97.2 %, held-out velocity error 1-9 % lower at every t (0.248 0.104 0.086 0.146 0.438
    # at t = 0.1 ... 0.9), the training loss 4-5 % lower from step 500 on; CFG 4 alone 91.7 %; on 300 other
    # held-out prompts 76.0 -> 91.4 % (against the 7000-step run without it), colour 95.9 -> 96.0 %
    semantic_weight: float = 0.5
    semantic_level: int = 1
    data_seed: int = 1
    eval_scenes: int = 256


@dataclass(frozen=True)
class GuideConfig(FlowConfig):
    """A guide for autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of
    Itself") trained apart, for a model trained with guide_step 0 (the built-in one takes its guide from its
    own run, FlowConfig.guide_step): the same UNet trained for fewer steps (its own full schedule) on the
    trained model's frozen text encoder, so the guide is a UNet alone in the model's guide/ (`python -m
    engine.train flow-guide`, after flow). Guides trained with AdamW, measured at autoguidance 1 on the
    benchmark's 200 prompts (class 68.2 % without): this UNet with its own text encoder, 2000 steps: 71.7 %
    (and 65.7 -> 70.6 % on 300 others); 1000 steps on 4000 scenes: 69.9 % (70.7 % at w = 2); half the
    channels at every level, 1000 steps on 4000 scenes: 67.4 %. A guide much worse than the model does not
    help. With Muon (the default optimizer) the same 2000-step run reached a held-out velocity error 4-11 %
    lower."""

    steps: int = 2000
    guide_step: int = 0  # the guide is the whole run


def build_text_encoder(config: FlowConfig) -> CLIPTextModel:
    """A small CLIPTextModel for the real CLIP vocabulary (random weights)."""
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=config.text_hidden, intermediate_size=4 * config.text_hidden,
        projection_dim=config.text_hidden, num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=CLIP_BOS, eos_token_id=CLIP_EOS, pad_token_id=CLIP_EOS,
    ))


def build_unet(config: FlowConfig, latent_channels: int) -> UNet2DConditionModel:
    """The velocity UNet on 16 px latents, with attention blocks where `config.attention` says."""
    if len(config.attention) != len(config.block_out_channels):
        raise ValueError("FlowConfig.attention needs one entry per UNet level")
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in config.attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.attention))
    return UNet2DConditionModel(
        sample_size=16, in_channels=latent_channels, out_channels=latent_channels,
        block_out_channels=config.block_out_channels, down_block_types=down, up_block_types=up,
        layers_per_block=config.layers_per_block, cross_attention_dim=config.text_hidden,
        attention_head_dim=config.attention_heads, norm_num_groups=16,
    )


def logit_normal(n: int, generator: torch.Generator) -> torch.Tensor:
    """t ~ sigmoid(N(0, 1)) (SD3's logit-normal time sampling), (n,) in (0, 1)."""
    return torch.sigmoid(torch.randn(n, generator=generator))


def training_times(n: int, generator: torch.Generator, shift: float = 1.0, unshifted_share: float = 0.0) -> torch.Tensor:
    """Logit-normal times under the flow shift (SD3 trains and samples its larger images with the same
    shift): shift 3 moves the median time from 0.5 to 0.75, towards the noisy end where layout is decided.
    A share `unshifted_share` of them (each time on its own) keeps the plain logit-normal time, so the
    less noisy times where shapes get their detail are not starved (shift 3 leaves 8 % of times below 0.43)."""
    t = logit_normal(n, generator)
    if unshifted_share <= 0:  # no further draw: the same stream of random numbers as before the option
        return shift_time(t, shift)
    plain = torch.rand(n, generator=generator) < unshifted_share
    return torch.where(plain, t, shift_time(t, shift))


def flow_pair(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, velocity target) on the straight path: x_t = (1 - t) x0 + t e, v = e - x0."""
    t4 = t.view(-1, 1, 1, 1)
    return (1 - t4) * x0 + t4 * noise, noise - x0


@torch.no_grad()
def encode_latents(vq: VQModel, images: torch.Tensor) -> torch.Tensor:
    """Scaled, quantized latents of images in [-1, 1]: what the decoder receives, times the scaling factor."""
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=fast_bf16(images.device)):
        h = vq.encode(images).latents.float()
    z_q = vq.quantize(h)[0]  # the code search in float32
    return z_q * vq.config.scaling_factor


def shape_cells(segmentation: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, h, w) bool: the latent cells a shape covers at all, grown by one cell (so its rim is in),
    from (N, 3, H, W) segmentation maps (background black) and the autoencoder's downsampling factor."""
    foreground = (segmentation.sum(dim=1, keepdim=True) > 0).float()
    cells = torch.nn.functional.max_pool2d(foreground, factor)
    return torch.nn.functional.max_pool2d(cells, 3, stride=1, padding=1)[:, 0] > 0


def size_weights(cells: torch.Tensor, labels: list[tuple[Any, ...]], factor: int, power: float) -> torch.Tensor:
    """(N, h, w) float: each cell of `cells` (shape_cells) weighs (1 / A) ** power, A the cell count of the
    box (grown by one cell) of the smallest shape whose box covers it, from each scene's labels (pixel
    boxes); background cells 0. Power 0 gives `cells` as 0/1; the caller rescales to a mean of 1."""
    out = torch.zeros(cells.shape)
    h, w = cells.shape[1:]
    for n, scene in enumerate(labels):
        for label in sorted(scene, key=lambda lab: -(lab.box[2] - lab.box[0]) * (lab.box[3] - lab.box[1])):
            x0, y0, x1, y1 = label.box  # largest first, so a smaller shape's weight wins where boxes overlap
            c0, r0 = max(0, int(x0 // factor) - 1), max(0, int(y0 // factor) - 1)
            c1, r1 = min(w, math.ceil(x1 / factor) + 1), min(h, math.ceil(y1 / factor) + 1)
            out[n, r0:r1, c0:c1] = (1.0 / ((r1 - r0) * (c1 - c0))) ** power
    return out * cells


def class_fractions(segmentation: torch.Tensor, cell: int) -> torch.Tensor:
    """(N, 1 + classes, H / cell, W / cell): the share of each cell that is background (channel 0) or each
    shape class (SHAPE_CLASSES order), from (N, 3, H, W) segmentation maps in [0, 1] (palette colours)."""
    rgb = segmentation.mul(255).round()
    palette = torch.tensor([SEGMENTATION_COLOURS[c] for c in SHAPE_CLASSES], dtype=rgb.dtype)
    shapes = (rgb[:, None] == palette[None, :, :, None, None]).all(dim=2)  # (N, K, H, W)
    onehot = torch.cat([~shapes.any(dim=1, keepdim=True), shapes], dim=1).float()
    return torch.nn.functional.avg_pool2d(onehot, cell)


class SemanticHead(torch.nn.Module):
    """Per-cell class logits from UNet features (a two-layer 1x1-conv MLP); reads the features of the
    module it is attached to by a forward hook, so the UNet itself is unchanged."""

    def __init__(self, unet: UNet2DConditionModel, level: int) -> None:
        super().__init__()
        block = unet.down_blocks[level]
        tap = block.attentions[-1] if getattr(block, "attentions", None) else block.resnets[-1]
        channels = unet.config.block_out_channels[level]
        self.mlp = torch.nn.Sequential(torch.nn.Conv2d(channels, 4 * channels, 1), torch.nn.SiLU(),
                                       torch.nn.Conv2d(4 * channels, 1 + len(SHAPE_CLASSES), 1))
        self.features: torch.Tensor | None = None
        self.hook = tap.register_forward_hook(self._keep)

    def _keep(self, module: torch.nn.Module, args: Any, out: Any) -> None:
        self.features = out[0] if isinstance(out, tuple) else getattr(out, "sample", out)

    def loss(self, target: torch.Tensor) -> torch.Tensor:
        """Soft-label cross-entropy of the last forward pass's features against class_fractions."""
        if self.features is None:
            raise RuntimeError("SemanticHead.loss before a UNet forward pass")
        logits = self.mlp(self.features).float()
        return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def flow_loss(pred: torch.Tensor, target: torch.Tensor, cells: torch.Tensor, shape_weight: float) -> torch.Tensor:
    """The velocity MSE, each latent pixel weighing 1 + shape_weight * cells (N, h, w; bool, or float
    weights from size_weights) times a background one: a weighted mean over (N, C, h, w), the plain mean
    when shape_weight is 0."""
    weight = 1 + shape_weight * cells[:, None].to(pred.dtype)
    return ((pred - target).square() * weight).sum() / (weight.sum() * pred.shape[1])


class LatentCache:
    """Latents, caption token ids and shape cells of a fixed set of scenes, encoded once: `cells` holds
    size_weights(shape_cells(...), size_power) scaled to a mean of 1 over the cells shapes cover."""

    def __init__(self, vq: VQModel, tokenizer: Any, seeds: range, device: torch.device, label: str = "latents",
                 size_power: float = 0.0, class_cell: int = 0) -> None:
        latents, ids, cells, classes = [], [], [], []
        factor = 2 ** (len(vq.config.block_out_channels) - 1)
        bar = ProgressBar(len(seeds), label)
        for batch in iterate_batches(seeds, 64, controls=("segmentation",)):
            latents.append(encode_latents(vq, batch.images.to(device)).cpu())
            ids += [window_ids(tokenizer, c)[0] for c in batch.captions]
            cells.append(size_weights(shape_cells(batch.segmentation, factor), batch.labels, factor, size_power))
            if class_cell:
                classes.append(class_fractions(batch.segmentation, class_cell).half())
            bar.update(sum(len(x) for x in latents), {})
        bar.close()
        self.latents = torch.cat(latents)  # (N, C, 16, 16)
        self.ids = torch.tensor(ids)  # (N, 77)
        weights = torch.cat(cells)  # (N, 16, 16), 0 on the background
        self.cells = weights * ((weights > 0).sum() / weights.sum().clamp(min=1e-12))
        self.empty = torch.tensor(window_ids(tokenizer, "")[0])  # (77,)
        # with class_cell: class_fractions per scene, (N, 1 + classes, H / class_cell, W / class_cell)
        self.classes = torch.cat(classes) if classes else None


@torch.no_grad()
def text_states(text: CLIPTextModel, ids: torch.Tensor, device: torch.device, chunk: int = 256) -> torch.Tensor:
    """A frozen text encoder's last hidden states for each row of `ids` (N, 77), on the device: computed
    once, so the training steps after the encoder froze skip its forward pass (a tenth of a flow step)."""
    return torch.cat([text(ids[i:i + chunk].to(device)).last_hidden_state for i in range(0, len(ids), chunk)])


def _lr(step: int, config: FlowConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


class EMA:
    """An exponential moving average of a module's weights (with the usual warm-up of the decay)."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        averages, weights = list(self.module.parameters()), [p.detach() for p in module.parameters()]
        torch._foreach_lerp_(averages, weights, 1 - d)  # one call over all tensors


@torch.no_grad()
def heldout_loss(unet: UNet2DConditionModel, text: CLIPTextModel, cache: LatentCache, device: torch.device,
                 ts: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)) -> dict[str, float]:
    """Velocity MSE on held-out scenes at fixed times with fixed noise (lower is better)."""
    g = torch.Generator().manual_seed(0)
    out: dict[str, float] = {}
    for t in ts:
        losses = []
        for i in range(0, len(cache.latents), 64):
            x0 = cache.latents[i:i + 64].to(device)
            noise = torch.randn(x0.shape, generator=g).to(device)
            xt, v = flow_pair(x0, noise, torch.full((len(x0),), t, device=device))
            states = text(cache.ids[i:i + 64].to(device)).last_hidden_state
            pred = unet(xt, torch.full((len(x0),), t * 1000, device=device), states).sample
            losses.append((pred - v).square().mean(dim=(1, 2, 3)))
        out[f"heldout_v_mse_t{t:g}"] = float(torch.cat(losses).mean())
    return out


def _save_half(module: torch.nn.Module, folder: Path, weights_name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(folder / weights_name), metadata={"format": "pt"})


def save_text_encoder(folder: Path, text: CLIPTextModel) -> None:
    """folder/text_encoder: the config and the float16 weights."""
    (folder / "text_encoder").mkdir(parents=True, exist_ok=True)
    conf = text.config.to_dict() | {"dtype": "float32", "architectures": ["CLIPTextModel"]}
    (folder / "text_encoder" / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    _save_half(text, folder / "text_encoder", "model.safetensors")


def save_flow_folder(folder: Path, unet: UNet2DConditionModel, text: CLIPTextModel, shift: float) -> None:
    """Write everything but vae/: model_index.json, unet/, text_encoder/, tokenizer/ and scheduler/."""
    unet.save_config(folder / "unet")
    _save_half(unet, folder / "unet", "diffusion_pytorch_model.safetensors")
    save_text_encoder(folder, text)
    tok = folder / "tokenizer"
    tok.mkdir(parents=True, exist_ok=True)  # vocab and merges: the shipped CLIP files (resources/tokenizers)
    (tok / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "do_lower_case": True}, indent=2) + "\n")
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps({
        "_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": shift,
        "use_dynamic_shifting": False, "prediction_type": "flow"}, indent=2) + "\n")
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "VQModel"],
        "safety_checker": [None, None], "feature_extractor": [None, None],
        "requires_safety_checker": False}, indent=2) + "\n")


BUILTIN_DESCRIPTION = ("Trained by Atelier on its procedural shapes world: 128 x 128 scenes of up to four "
                       "circles, squares, triangles, stars, rings, crosses, hearts or diamonds in named "
                       "colours on flat or gradient backgrounds. It knows nothing else.")
RECOMMENDED = {"width": 128, "height": 128, "sampler": "euler", "schedule": "flow_shift", "steps": 20,
               "cfg_scale": 4.0, "autoguidance": 2.0}


def save_samples(folder: Path, device: torch.device, count: int = 8) -> float:
    """Generate held-out captions through the Engine (the product's own path) into samples.png, a
    grid with each caption under its image; returns the mean seconds per image."""
    from PIL import Image, ImageDraw

    from engine.data import make_sample
    from engine.models import ModelStore
    from engine.pipeline import Engine
    from engine.settings import Job, ModelRef

    engine = Engine(device=str(device), store=ModelStore.with_roots([folder.parent]))
    base = Job(model=ModelRef(name=folder.name, path=str(folder)), **RECOMMENDED)
    tiles, seconds = [], 0.0
    for i in range(count):
        prompt = make_sample(HELDOUT_SEEDS.start + i).caption
        start = time.monotonic()
        (result,) = engine.run(dataclasses.replace(base, prompt=prompt, seed=i))
        seconds += time.monotonic() - start
        tiles.append((Image.fromarray(result.image), prompt))
    cols, cell, text_h = 4, 128, 60
    grid = Image.new("RGB", (cols * (cell + 8), ((count + cols - 1) // cols) * (cell + text_h)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, prompt) in enumerate(tiles):
        x, y = (i % cols) * (cell + 8), (i // cols) * (cell + text_h)
        grid.paste(image, (x, y))
        words, lines = prompt.split(), [""]
        for word in words:  # wrap at ~22 characters
            lines[-1:] = [lines[-1] + " " + word] if len(lines[-1]) + len(word) < 22 else [lines[-1], word]
        draw.multiline_text((x + 2, y + cell + 2), "\n".join(line.strip() for line in lines[:4]), fill="black")
    grid.save(folder / "samples.png")
    return seconds / count


def train_flow(config: FlowConfig, setup: RunSetup, command: str, vae_dir: Path,
               text_dir: Path | None = None) -> dict[str, float]:
    """Train the UNet and text encoder on the VQGAN in `vae_dir`; save the whole model folder
    (with a copy of the VQGAN unless it already lies there) into setup.out_dir. With `text_dir` (a
    trained model's text_encoder/: how a GuideConfig runs) the text encoder is that one, frozen, and only
    the UNet is saved (with the record and loss curve): setup.out_dir is then the model's guide/."""
    from engine.models.families import Family
    from engine.models.resources import ResourcePaths, clip_tokenizer

    device = setup.device
    start = time.monotonic()  # the latent caches are part of the training time (3-4 minutes on the CPU)
    vq = VQModel.from_pretrained(str(vae_dir), local_files_only=True).to(device).eval()
    resources = ResourcePaths()
    tokenizer = clip_tokenizer(resources.component_dir(Family.SD1, "tokenizer"), resources.tokenizers / "clip")
    train_seeds = split_seeds("train")
    seeds = range(train_seeds.start + config.data_seed * config.train_scenes,
                  train_seeds.start + (config.data_seed + 1) * config.train_scenes)
    factor = 2 ** (len(vq.config.block_out_channels) - 1)
    semantic = config.semantic_weight > 0
    cache = LatentCache(vq, tokenizer, seeds, device, size_power=config.size_power,
                        class_cell=factor * 2 ** config.semantic_level if semantic else 0)
    heldout = LatentCache(vq, tokenizer, range(HELDOUT_SEEDS.start, HELDOUT_SEEDS.start + config.eval_scenes),
                          device, "held-out latents")
    unet = build_unet(config, vq.config.latent_channels).to(device).train()
    frozen = guide_run = text_dir is not None
    if text_dir is not None:  # the model's own text states: the guide is only a weaker UNet
        text = CLIPTextModel.from_pretrained(str(text_dir), local_files_only=True).float().to(device).eval()
        text.requires_grad_(False)
    else:
        text = build_text_encoder(config).to(device).train()
    ema_unet, ema_text = EMA(unet, config.ema_decay), EMA(text, config.ema_decay)
    head = SemanticHead(unet, config.semantic_level).to(device) if semantic else None  # after the EMA copy
    params = (list(unet.parameters()) + ([] if frozen else list(text.parameters()))
              + ([] if head is None else list(head.parameters())))
    if config.optimizer == "muon":
        matrices = muon_matrices([unet] if frozen else [unet, text], outer=[unet.conv_in, unet.conv_out])
        opt: Any = hybrid_optimizer(params, matrices, config.lr)
    elif config.optimizer == "adamw":  # fused: one kernel over all tensors; the foreach form spent ~0.1 s a
        # step (a fifth of it) on the 4.7M-weight token embedding's dense update on the 2-core CPU
        opt = torch.optim.AdamW(params, lr=config.lr, betas=(0.9, 0.99), weight_decay=0.01, fused=True)
    else:
        raise ValueError(f"FlowConfig.optimizer {config.optimizer!r}: 'adamw' or 'muon'")
    g = torch.Generator().manual_seed(config.data_seed)
    order = torch.randperm(len(cache.latents), generator=g)
    log, bar = LossLog(), ProgressBar(config.steps, "flow")
    pos = 0
    guide: UNet2DConditionModel | None = None
    guide_seconds = 0.0
    # while the text encoder is frozen: its states for every training caption, the empty one last
    captions = torch.cat([cache.ids, cache.empty[None]])
    states_of = text_states(text, captions, device) if frozen else None
    for step in range(config.steps):
        if step == config.guide_step > 0 and not guide_run:  # the guide's snapshot; the text encoder stops here
            guide, guide_seconds = copy.deepcopy(ema_unet.module), time.monotonic() - start
            guide.save_config(setup.out_dir / "guide" / "unet")  # at once: a stopped run keeps it
            _save_half(guide, setup.out_dir / "guide" / "unet", "diffusion_pytorch_model.safetensors")
            text.load_state_dict(ema_text.module.state_dict())
            text.eval().requires_grad_(False)
            save_text_encoder(setup.out_dir, text)  # final from here on: with guide/, the snapshot can be sampled
            frozen = True
            states_of = text_states(text, captions, device)
        for group in opt.param_groups:
            group["lr"] = _lr(step, config)
        if pos + config.batch_size > len(order):
            order, pos = torch.randperm(len(cache.latents), generator=g), 0
        idx = order[pos:pos + config.batch_size]
        pos += config.batch_size
        x0, ids = cache.latents[idx].to(device), cache.ids[idx].clone()
        drop = torch.rand(len(idx), generator=g) < config.caption_dropout
        ids[drop] = cache.empty
        t = training_times(len(idx), g, config.train_shift, config.unshifted_share).to(device)
        xt, target = flow_pair(x0, torch.randn(x0.shape, generator=g).to(device), t)
        with setup.autocast():
            if states_of is None:
                states = text(ids.to(device)).last_hidden_state
            else:
                states = states_of[torch.where(drop, len(cache.ids), idx).to(device)]
            pred = unet(xt, t * 1000, states).sample.float()
        loss = flow_loss(pred, target, cache.cells[idx].to(device), config.shape_weight)
        values = {"loss": loss.item()}
        if head is not None and cache.classes is not None:
            with setup.autocast():
                semantic_loss = head.loss(cache.classes[idx].to(device).float())
            values["semantic"] = semantic_loss.item()
            loss = loss + config.semantic_weight * semantic_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_unet.update(unet, step)
        if not frozen:
            ema_text.update(text, step)
        log.add(step, **values)
        bar.update(step + 1, log.recent())
    bar.close()
    if head is not None:
        head.hook.remove()
    seconds = time.monotonic() - start
    figures = heldout_loss(ema_unet.module, text if frozen else ema_text.module, heldout, device)
    folder = setup.out_dir
    if guide_run:
        ema_unet.module.save_config(folder / "unet")
        _save_half(ema_unet.module, folder / "unet", "diffusion_pytorch_model.safetensors")
        plot_losses(log, folder / "flow_loss_curve.png", f"Guide model training ({config.steps} steps)")
        write_record(folder, model="flow-guide", command=command, data_seed=config.data_seed, config=config,
                     figures=figures, setup=setup, seconds=seconds)
        return figures
    if guide is not None:
        guide_figures = heldout_loss(guide, text, heldout, device)
        write_record(folder / "guide", model="flow-guide", command=command, data_seed=config.data_seed,
                     config={"snapshot_of": "the flow run in the folder above", "step": config.guide_step},
                     figures=guide_figures, setup=setup, seconds=guide_seconds)
        figures.update({f"guide_{k}": v for k, v in guide_figures.items()})
    if (folder / "vae").resolve() != vae_dir.resolve():
        shutil.copytree(vae_dir, folder / "vae", dirs_exist_ok=True)
    save_flow_folder(folder, ema_unet.module, ema_text.module, config.shift)
    write_card(folder, "Atelier Shapes (built-in)", BUILTIN_DESCRIPTION, RECOMMENDED)
    figures["sample_seconds"] = save_samples(folder, device)
    plot_losses(log, folder / "flow_loss_curve.png", f"Flow model training ({config.steps} steps)")
    write_record(folder, model="flow", command=command, data_seed=config.data_seed, config=config,
                 figures=figures, setup=setup, seconds=seconds)
    return figures
