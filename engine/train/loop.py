"""What every built-in model's training shares: seeding, a terminal progress bar, the loss log and
its curve as a PNG, and the record each model folder keeps of how it was made."""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from PIL import Image, ImageDraw

from engine import __version__


@dataclass(frozen=True)
class RunSetup:
    """Where and how a training run happens."""

    out_dir: Path
    device: torch.device
    seed: int
    threads: int
    bf16: bool = False  # autocast to bfloat16 (weights, optimizer state and losses stay float32)

    def autocast(self) -> torch.autocast:
        """The forward passes' mixed-precision context: bfloat16 where the hardware runs it fast."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matmuls and convolutions run natively here: CUDA GPUs from Ampere on, CPUs
    with AVX-512 BF16 or AMX (about 2x faster training on this project's CPU machines)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.backends.cpu.get_cpu_capability()  # "AVX512" on capable x86 machines
        return cpu.startswith("AVX512") and bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    return False


def cpu_class() -> str:
    """The machine and the widest vector instructions torch uses on it ("x86_64 AVX512"): the same
    run takes about twice as long on an AVX2-only CPU, which has no fast bfloat16 either."""
    return f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()}"


def setup_run(out_dir: Path, device: str | None, seed: int, bf16: bool | None = None) -> RunSetup:
    """Seed torch and pick the device (CUDA when there is one) and the precision (bfloat16 autocast
    where it is fast, unless `bf16` says otherwise); the data draws from its own generator."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    return RunSetup(out_dir, dev, seed, torch.get_num_threads(), fast_bf16(dev) if bf16 is None else bf16)


class ProgressBar:
    """A one-line bar with the step, recent losses, speed and time left, redrawn at most 4x a second."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.start = self._last = time.monotonic()

    def update(self, step: int, values: dict[str, float]) -> None:
        now = time.monotonic()
        if now - self._last < 0.25 and step < self.total:
            return
        self._last = now
        done = step / self.total
        rate = step / max(now - self.start, 1e-9)
        left = (self.total - step) / rate if rate > 0 else float("inf")
        bar = "#" * round(24 * done) + "-" * (24 - round(24 * done))
        shown = " ".join(f"{k} {v:.4g}" for k, v in values.items())
        self.stream.write(f"\r{self.label} [{bar}] {step}/{self.total} {shown} | {rate:.2f} it/s, "
                          f"{left / 60:.1f} min left ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


@dataclass
class LossLog:
    """Losses by step, smoothed for the curve."""

    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def add(self, step: int, **values: float) -> None:
        for name, value in values.items():
            self.series.setdefault(name, []).append((step, float(value)))

    def recent(self, window: int = 50) -> dict[str, float]:
        """The mean of each series over its last `window` entries."""
        return {k: float(np.mean([v for _, v in s[-window:]])) for k, s in self.series.items() if s}


_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def _smoothed(points: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    steps = np.array([p for p, _ in points], dtype=np.float64)
    values = np.array([v for _, v in points], dtype=np.float64)
    k = max(1, len(values) // 50)  # a moving average over 2 % of the run
    return steps[k - 1:], np.convolve(values, np.ones(k) / k, mode="valid")


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], curves: dict[str, tuple[np.ndarray, np.ndarray]],
           log_scale: bool, x_max: float, first_colour: int) -> None:
    """One chart: curves in a box (left, top, right, bottom), log10 or linear y axis."""
    left, top, right, bottom = box
    ys = {n: (np.log10(v) if log_scale else v) for n, (_, v) in curves.items()}
    lo, hi = min(float(v.min()) for v in ys.values()), max(float(v.max()) for v in ys.values())
    if log_scale:
        lo, hi = math.floor(lo), math.ceil(hi)
    hi = hi if hi > lo else lo + 1

    def to_px(step: float, value: float) -> tuple[float, float]:
        return left + (right - left) * step / x_max, bottom - (bottom - top) * (value - lo) / (hi - lo)

    draw.rectangle(box, outline="black")
    ticks = range(int(lo), int(hi) + 1) if log_scale else np.linspace(lo, hi, 5)
    for tick in ticks:
        _, y = to_px(0, float(tick))
        draw.line((left, y, right, y), fill=(225, 225, 225))
        draw.text((8, y - 6), f"1e{int(tick)}" if log_scale else f"{tick:.3g}", fill="black")
    for i, (name, (steps, _)) in enumerate(curves.items()):
        colour = _COLOURS[(first_colour + i) % len(_COLOURS)]
        draw.line([to_px(s, v) for s, v in zip(steps, ys[name])], fill=colour, width=2)
        draw.text((right + 10, top + 16 * i), name, fill=colour)


def plot_losses(log: LossLog, path: Path, title: str, width: int = 900) -> None:
    """The loss curves as a PNG drawn with PIL: positive losses on a log scale; losses that can be
    negative (adversarial ones) in a linear panel below."""
    curves = {name: _smoothed(points) for name, points in log.series.items() if points}
    positive = {n: c for n, c in curves.items() if (c[1] > 0).all()}
    signed = {n: c for n, c in curves.items() if n not in positive}
    height = 420 + (220 if signed else 0)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((70, 8), title, fill="black")
    x_max = max([float(s.max()) for s, _ in curves.values()] + [1.0])
    if positive:
        _panel(draw, (70, 30, width - 150, 380), positive, True, x_max, 0)
    if signed:
        _panel(draw, (70, 420, width - 150, height - 40), signed, False, x_max, len(positive))
    draw.text((70, height - 32), "0", fill="black")
    draw.text((width - 190, height - 32), f"{int(x_max)} steps", fill="black")
    image.save(path)


def write_record(out_dir: Path, *, model: str, command: str, data_seed: int, config: Any, figures: dict[str, Any],
                 setup: RunSetup, seconds: float) -> Path:
    """training.json in the model folder: the command, seeds, config and figures that produced it."""
    record = {
        "model": model,
        "command": command,
        "data_seed": data_seed,
        "torch_seed": setup.seed,
        "config": asdict(config) if hasattr(config, "__dataclass_fields__") else config,
        "figures": figures,
        "training_seconds": round(seconds, 1),
        "device": str(setup.device),
        "threads": setup.threads,
        "bf16_autocast": setup.bf16,
        "cpu": cpu_class(),
        "atelier": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    path = out_dir / "training.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
