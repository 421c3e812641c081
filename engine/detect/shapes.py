"""The built-in shapes detector: a YOLO-style single-stage grid detector (Redmon et al. 2016; the
box parameterisation and neighbour-cell assignment of YOLOv5). A small conv backbone maps a
128 x 128 image to a 16 x 16 grid (stride 8) with context from a stride-16 branch; each cell
predicts an objectness logit, a box (centre offset in the cell, log width and height) and class
logits. Detections are the cells scoring above a threshold after class-aware NMS.

Stored as `config.json` + `model.safetensors` in its folder (resources/models/atelier-shapes/detector)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from engine.detect.boxes import Detection, nms


@dataclass(frozen=True)
class GridDetectorConfig:
    classes: tuple[str, ...]
    channels: tuple[int, int, int, int] = (16, 32, 64, 96)  # strides 2, 4, 8, 16
    stride: int = 8
    box_scale: float = 32.0  # box side (px) of a zero size prediction
    image_size: int = 128  # what it was trained at; any multiple of 16 runs


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.SiLU())


class GridDetector(nn.Module):
    """Image (B, 3, H, W) in [-1, 1] -> raw grid predictions (B, 5 + classes, H/8, W/8)."""

    def __init__(self, config: GridDetectorConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = config.channels
        self.stem = nn.Sequential(_block(3, c1, 2), _block(c1, c2, 2), _block(c2, c2), _block(c2, c3, 2),
                                  _block(c3, c3))
        self.context = nn.Sequential(_block(c3, c4, 2), _block(c4, c4), _block(c4, c4))
        self.lateral = nn.Conv2d(c4, c3, 1)
        self.head = nn.Sequential(_block(c3, c3), nn.Conv2d(c3, 5 + len(config.classes), 1))
        with torch.no_grad():  # start with few objects everywhere (RetinaNet's prior)
            self.head[-1].bias[0] = -math.log((1 - 0.01) / 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fine = self.stem(x)
        coarse = self.context(fine)
        fine = fine + F.interpolate(self.lateral(coarse), size=fine.shape[-2:], mode="nearest")
        return self.head(fine)

    def boxes(self, raw: torch.Tensor) -> torch.Tensor:
        """Boxes (B, H', W', 4) as x0, y0, x1, y1 pixels from raw predictions."""
        _, _, gh, gw = raw.shape
        s = self.config.stride
        ys, xs = torch.meshgrid(torch.arange(gh, device=raw.device), torch.arange(gw, device=raw.device),
                                indexing="ij")
        cx = (xs + 2 * torch.sigmoid(raw[:, 1]) - 0.5) * s  # centre may lie up to half a cell outside
        cy = (ys + 2 * torch.sigmoid(raw[:, 2]) - 0.5) * s
        w = self.config.box_scale * torch.exp(raw[:, 3].clamp(max=6))
        h = self.config.box_scale * torch.exp(raw[:, 4].clamp(max=6))
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)

    @torch.no_grad()
    def detect(self, images: torch.Tensor, min_score: float = 0.05, iou_threshold: float = 0.5,
               max_detections: int = 100) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per image: (boxes (N, 4) px, scores (N,), class ids (N,)) after class-aware NMS."""
        raw = self(images)
        boxes = self.boxes(raw).flatten(1, 2)  # (B, cells, 4)
        obj = torch.sigmoid(raw[:, 0]).flatten(1)  # (B, cells)
        cls_p = torch.softmax(raw[:, 5:], dim=1).flatten(2)  # (B, K, cells)
        conf, cls = cls_p.max(dim=1)
        scores = obj * conf
        out = []
        for b in range(len(images)):
            keep = scores[b] >= min_score
            bx, sc, cl = boxes[b][keep], scores[b][keep], cls[b][keep]
            kept = nms(bx, sc, iou_threshold, cl)[:max_detections]
            out.append((bx[kept], sc[kept], cl[kept]))
        return out

    def detections(self, image: np.ndarray, min_score: float = 0.25) -> list[Detection]:
        """Detections in one (H, W, 3) uint8 RGB image (sides padded up to a multiple of 16)."""
        h, w = image.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(127.5).sub(1)[None]
        x = F.pad(x, (0, -w % 16, 0, -h % 16), value=0.0)
        device = next(self.parameters()).device
        (boxes, scores, classes), = self.detect(x.to(device), min_score)
        return [Detection(tuple(float(v) for v in box.clamp(min=0).tolist()), float(s), self.config.classes[int(c)])
                for box, s, c in zip(boxes.cpu(), scores.cpu(), classes.cpu())]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({"_class_name": "GridDetector", **asdict(self.config)},
                                                       indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))


def load_detector(folder: Path, device: torch.device | str = "cpu") -> GridDetector:
    """The detector saved in `folder` (config.json + model.safetensors), in eval mode."""
    data = json.loads((folder / "config.json").read_text())
    data.pop("_class_name", None)
    config = GridDetectorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    model = GridDetector(config)
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.to(device).eval()
