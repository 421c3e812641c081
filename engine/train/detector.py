"""Training the built-in shapes detector (engine.detect.shapes) on freshly generated scenes.

Targets: every visible shape (at least half of it uncovered) is assigned to the grid cell holding
its box centre and to the horizontal and vertical neighbours nearest to that centre (YOLOv5's
assignment, three positives per object); where objects compete for a cell the smaller one wins.
Losses: sigmoid focal loss for objectness over all cells (normalised by the positives), GIoU for
the boxes and cross-entropy for the classes at the positives.

The detector judges generated images, and every generated image comes out of the VQGAN's decoder:
with `autoencoder_share` > 0 that share of each batch is the VQGAN's reconstruction of a training
scene (a fixed set of `autoencoder_scenes`, reconstructed once, with the scene's own labels), so the
detector learns to read shapes through the autoencoder as well as in crisp renders.
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

from engine.data import HELDOUT_SEEDS, SHAPE_CLASSES, TRAIN_SEEDS, Batch, Label, iterate_batches, training_batches
from engine.detect.evaluate import COCO_THRESHOLDS, Detections, GroundTruth, mean_average_precision
from engine.detect.shapes import GridDetector, GridDetectorConfig
from engine.train.loop import LossLog, ProgressBar, RunSetup, fast_bf16, plot_losses, write_record


@dataclass(frozen=True)
class DetectorConfig:
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 5e-4
    box_weight: float = 2.0
    data_seed: int = 2
    eval_images: int = 500
    # the share of each batch shown through the VQGAN (0: crisp renders only). 0 -> 0.5: mAP@0.5 on held-out
    # scenes 0.988 -> 0.983, on their VQGAN reconstructions 0.833 -> 0.939; shape classes found in the
    # reconstructions of the benchmark's 200 scenes 83.9 -> 94.5 %, in 100 generated images 41.4 -> 45.0 %
    autoencoder_share: float = 0.5
    autoencoder_scenes: int = 4000  # training scenes reconstructed once for it


def visible_targets(labels: tuple[Label, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth of one image: (boxes (N, 4), class ids (N,)) of its visible shapes."""
    shown = [lb for lb in labels if lb.visible]
    return (np.array([lb.box for lb in shown], dtype=np.float64).reshape(-1, 4),
            np.array([lb.cls for lb in shown], dtype=np.int64))


def build_targets(batch_labels: list[tuple[Label, ...]], grid: tuple[int, int], stride: int,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positive mask (B, gh, gw), target boxes (B, gh, gw, 4) px, target classes (B, gh, gw))."""
    gh, gw = grid
    b = len(batch_labels)
    pos = torch.zeros(b, gh, gw, dtype=torch.bool)
    boxes = torch.zeros(b, gh, gw, 4)
    classes = torch.zeros(b, gh, gw, dtype=torch.long)
    for n, labels in enumerate(batch_labels):
        gt_boxes, gt_classes = visible_targets(labels)
        areas = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
        for k in np.argsort(-areas, kind="stable"):  # larger first: smaller ones overwrite shared cells
            x0, y0, x1, y1 = gt_boxes[k]
            cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
            j, i = min(int(cx), gw - 1), min(int(cy), gh - 1)
            nj = j - 1 if cx - j < 0.5 else j + 1
            ni = i - 1 if cy - i < 0.5 else i + 1
            for ci, cj in ((i, j), (i, nj), (ni, j)):
                if 0 <= ci < gh and 0 <= cj < gw:
                    pos[n, ci, cj] = True
                    boxes[n, ci, cj] = torch.tensor(gt_boxes[k], dtype=torch.float32)
                    classes[n, ci, cj] = int(gt_classes[k])
    return pos, boxes, classes


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - generalised IoU (Rezatofighi et al. 2019) of paired boxes (N, 4)."""
    lt, rb = torch.maximum(pred[:, :2], target[:, :2]), torch.minimum(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_p = (pred[:, 2:] - pred[:, :2]).clamp(min=0).prod(-1)
    area_t = (target[:, 2:] - target[:, :2]).clamp(min=0).prod(-1)
    union = area_p + area_t - inter
    hull = (torch.maximum(pred[:, 2:], target[:, 2:]) - torch.minimum(pred[:, :2], target[:, :2])).prod(-1)
    iou = inter / union.clamp(min=1e-6)
    return 1 - (iou - (hull - union) / hull.clamp(min=1e-6))


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Summed sigmoid focal loss (Lin et al. 2017)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    weight = alpha * targets + (1 - alpha) * (1 - targets)
    return (weight * (1 - p_t) ** gamma * ce).sum()


def detector_loss(model: GridDetector, raw: torch.Tensor, batch_labels: list[tuple[Label, ...]],
                  box_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    pos, boxes, classes = build_targets(batch_labels, (raw.shape[2], raw.shape[3]), model.config.stride)
    pos, boxes, classes = pos.to(raw.device), boxes.to(raw.device), classes.to(raw.device)
    n_pos = max(int(pos.sum()), 1)
    obj = focal_loss(raw[:, 0], pos.float()) / n_pos
    pred_boxes = model.boxes(raw)[pos]  # (P, 4)
    box = giou_loss(pred_boxes, boxes[pos]).mean() if pos.any() else raw.sum() * 0
    cls_logits = raw[:, 5:].permute(0, 2, 3, 1)[pos]  # (P, K)
    cls = F.cross_entropy(cls_logits, classes[pos]) if pos.any() else raw.sum() * 0
    loss = obj + box_weight * box + cls
    return loss, {"obj": obj.item(), "giou": box.item(), "cls": cls.item()}


def reconstruct(vq: VQModel, images: torch.Tensor) -> torch.Tensor:
    """The VQGAN's reconstructions of images (N, 3, H, W) in [-1, 1], rounded to 8 bits like a generated image.
    In bfloat16 where that is fast (twice as fast on the 2-core CPU; pixels within half a level of float32's)."""
    with torch.no_grad(), torch.autocast(vq.device.type, dtype=torch.bfloat16, enabled=fast_bf16(vq.device)):
        out = vq.decode(vq.encode(images.to(vq.device, vq.dtype)).latents).sample.float()
    return out.clamp(-1, 1).add(1).mul(127.5).round().div(127.5).sub(1).to(images.device)


class ReconstructionCache:
    """The VQGAN's reconstructions (uint8) and the labels of a fixed random set of training scenes."""

    def __init__(self, vq: VQModel, count: int, rng: np.random.Generator, chunk: int = 50) -> None:
        seeds = TRAIN_SEEDS.start + rng.choice(len(TRAIN_SEEDS), size=count, replace=False)
        images: list[torch.Tensor] = []
        self.labels: list[tuple[Label, ...]] = []
        bar = ProgressBar(count, "reconstructions")
        for batch in iterate_batches(seeds.tolist(), chunk):
            images.append(reconstruct(vq, batch.images).add(1).mul(127.5).round().to(torch.uint8))
            self.labels += batch.labels
            bar.update(len(self.labels), {})
        bar.close()
        self.images = torch.cat(images)

    def mix(self, batch: Batch, k: int, rng: np.random.Generator) -> tuple[torch.Tensor, list[tuple[Label, ...]]]:
        """`k` random cached scenes, then the batch's (rendered with training_batches(skip=k): the first k
        scenes of each draw are the ones these take the place of)."""
        if k == 0:
            return batch.images, list(batch.labels)
        pick = rng.integers(0, len(self.labels), size=k)
        images = torch.cat([self.images[torch.from_numpy(pick)].float().div(127.5).sub(1), batch.images])
        return images, [self.labels[i] for i in pick] + list(batch.labels)


@torch.no_grad()
def heldout_predictions(model: GridDetector, count: int, device: torch.device,
                        vq: VQModel | None = None) -> tuple[list[GroundTruth], list[Detections]]:
    """(ground truth, detections) per held-out scene, in the evaluator's format; with `vq`, the detections
    are made on the VQGAN's reconstructions of the scenes (what a perfect generator could give)."""
    was_training = model.training
    model.eval()
    gts, dets = [], []
    for batch in iterate_batches(range(HELDOUT_SEEDS.start, HELDOUT_SEEDS.start + count), 50):
        images = batch.images if vq is None else reconstruct(vq, batch.images)
        for (boxes, scores, classes), labels in zip(model.detect(images.to(device), min_score=0.01), batch.labels):
            gts.append(visible_targets(labels))
            dets.append((boxes.cpu().double().numpy(), scores.cpu().double().numpy(), classes.cpu().numpy()))
    model.train(was_training)
    return gts, dets


def evaluate_detector(model: GridDetector, count: int, device: torch.device,
                      vq: VQModel | None = None) -> dict[str, float]:
    """mAP@0.5 and mAP@0.5:0.95 on held-out scenes (the project's COCO-style evaluator), and with `vq` also
    mAP@0.5 on their VQGAN reconstructions."""
    gts, dets = heldout_predictions(model, count, device)
    figures = {"heldout_map50": mean_average_precision(gts, dets, (0.5,)),
               "heldout_map50_95": mean_average_precision(gts, dets, COCO_THRESHOLDS)}
    if vq is not None:
        gts, dets = heldout_predictions(model, count, device, vq)
        figures["heldout_map50_through_vqgan"] = mean_average_precision(gts, dets, (0.5,))
    return figures


def _lr(step: int, config: DetectorConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def train_detector(config: DetectorConfig, setup: RunSetup, command: str,
                   model_config: GridDetectorConfig | None = None, vae_dir: Path | None = None) -> dict[str, float]:
    """Train, evaluate and save the detector into setup.out_dir; `vae_dir` is the VQGAN that generated images
    are decoded by (needed when config.autoencoder_share > 0, and measured through when given)."""
    device = setup.device
    if config.autoencoder_share > 0 and vae_dir is None:
        raise ValueError("autoencoder_share > 0 needs the VQGAN (vae_dir)")
    vq = None if vae_dir is None else VQModel.from_pretrained(str(vae_dir), local_files_only=True).to(device).eval()
    model = GridDetector(model_config or GridDetectorConfig(classes=SHAPE_CLASSES)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = time.monotonic()  # the reconstructions are part of the training time
    mix_rng = np.random.default_rng([config.data_seed, 1])  # its own stream: the fresh batches stay the same
    cache = (ReconstructionCache(vq, config.autoencoder_scenes, mix_rng)
             if vq is not None and config.autoencoder_share > 0 else None)
    mixed = 0 if cache is None else round(config.autoencoder_share * config.batch_size)
    batches = training_batches(np.random.default_rng(config.data_seed), config.batch_size, skip=mixed)
    log, bar = LossLog(), ProgressBar(config.steps, "detector")
    for step in range(config.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, config)
        batch = next(batches)
        images, labels = (batch.images, batch.labels) if cache is None else cache.mix(batch, mixed, mix_rng)
        with setup.autocast():
            raw = model(images.to(device)).float()
        loss, values = detector_loss(model, raw, labels, config.box_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log.add(step, **values)
        bar.update(step + 1, log.recent())
    bar.close()
    seconds = time.monotonic() - start
    figures = evaluate_detector(model, config.eval_images, device, vq)
    model.eval().save(setup.out_dir)
    plot_losses(log, setup.out_dir / "loss_curve.png", f"Shapes detector training ({config.steps} steps)")
    write_record(setup.out_dir, model="detector", command=command, data_seed=config.data_seed, config=config,
                 figures=figures, setup=setup, seconds=seconds)
    return figures
