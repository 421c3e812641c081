"""`python -m engine.train MODEL [--steps N] [--out DIR] [--device D] [--seed S]`."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from engine.paths import builtin_models_dir
from engine.train.loop import setup_run

BUILTIN = "atelier-shapes"


def _vqgan(args: argparse.Namespace, command: str) -> dict[str, float]:
    from engine.train.vqgan import VQGANConfig, train_vqgan

    config = VQGANConfig()
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps, gan_start=min(config.gan_start, 2 * args.steps // 3))
    out = args.out or builtin_models_dir() / BUILTIN / "vae"
    return train_vqgan(config, setup_run(out, args.device, args.seed), command)


# model name -> trainer (each imports torch and diffusers only when it runs)
TRAINERS: dict[str, Callable[[argparse.Namespace, str], dict[str, float]]] = {
    "vqgan": _vqgan,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m engine.train", description="Train a built-in model from scratch.")
    parser.add_argument("model", choices=sorted(TRAINERS), help="which model to train")
    parser.add_argument("--steps", type=int, help="training steps (default: the model's own)")
    parser.add_argument("--out", type=Path, help="output folder (default: its folder under resources/models/)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the initial weights (default 0)")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    command = shlex.join(["python", "-m", "engine.train", *argv])
    figures = TRAINERS[args.model](args, command)
    for name, value in figures.items():
        print(f"{name}: {value:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
