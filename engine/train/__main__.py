"""`python -m engine.train MODEL [--steps N] [--set FIELD=VALUE ...] [--out DIR] [--device D] [--seed S]
[--vae DIR] [--base DIR] [--kind TYPE ...]`."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from engine.paths import builtin_models_dir
from engine.train.loop import setup_run

BUILTIN = "atelier-shapes"
C = TypeVar("C")


class ConfigError(ValueError):
    """A --set that names no field of the model's config, or a value of the wrong kind."""


def _coerce(name: str, text: str, current: Any) -> Any:
    """`text` as a value of the same kind as the field's default (bool, int, float, str or a tuple of them)."""
    def one(item: str, like: Any) -> Any:
        if isinstance(like, bool):
            if item.lower() not in ("true", "false", "1", "0"):
                raise ConfigError(f"{name} takes true or false, not {item!r}")
            return item.lower() in ("true", "1")
        try:
            return type(like)(item)
        except ValueError:
            raise ConfigError(f"{name} takes a {type(like).__name__}, not {item!r}") from None

    if isinstance(current, tuple):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise ConfigError(f"{name} takes a comma-separated list")
        return tuple(one(item, current[0]) for item in items)
    return one(text, current)


def apply_settings(config: C, settings: Sequence[str]) -> C:
    """The config with each FIELD=VALUE in `settings` applied (values parsed like the field's default)."""
    fields = {f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    changes = {}
    for setting in settings:
        name, sep, text = setting.partition("=")
        name = name.strip()
        if not sep or name not in fields:
            raise ConfigError(f"--set {setting!r}: {type(config).__name__} has the fields {', '.join(sorted(fields))}")
        changes[name] = _coerce(name, text.strip(), getattr(config, name))
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]


def _config(cls: type[C], args: argparse.Namespace) -> C:
    """The model's default config, with --steps and then every --set applied."""
    config = cls()
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)  # type: ignore[type-var]
    return apply_settings(config, args.set or ())


def _vqgan(args: argparse.Namespace, command: str) -> dict[str, float]:
    from engine.train.vqgan import VQGANConfig, train_vqgan

    config = VQGANConfig()
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps, gan_start=min(config.gan_start, 2 * args.steps // 3))
    config = apply_settings(config, args.set or ())
    out = args.out or builtin_models_dir() / BUILTIN / "vae"
    return train_vqgan(config, setup_run(out, args.device, args.seed), command)


def _flow(args: argparse.Namespace, command: str) -> dict[str, float]:
    from engine.train.flow import FlowConfig, train_flow

    config = _config(FlowConfig, args)
    vae = args.vae or builtin_models_dir() / BUILTIN / "vae"
    if not (vae / "config.json").is_file():
        raise SystemExit(f"no VQGAN in {vae}: train it first (python -m engine.train vqgan) or pass --vae DIR")
    out = args.out or vae.parent
    return train_flow(config, setup_run(out, args.device, args.seed, bf16=False), command, vae)


def _flow_guide(args: argparse.Namespace, command: str) -> dict[str, float]:
    from engine.train.flow import GuideConfig, train_flow

    config = _config(GuideConfig, args)
    vae = args.vae or builtin_models_dir() / BUILTIN / "vae"
    if not (vae / "config.json").is_file():
        raise SystemExit(f"no VQGAN in {vae}: train it first (python -m engine.train vqgan) or pass --vae DIR")
    text = vae.parent / "text_encoder"
    if not (text / "config.json").is_file():
        raise SystemExit(f"no text encoder in {text}: train the model it guides first (python -m engine.train flow)")
    out = args.out or vae.parent / "guide"
    return train_flow(config, setup_run(out, args.device, args.seed, bf16=False), command, vae, text_dir=text)


def _detector(args: argparse.Namespace, command: str) -> dict[str, float]:
    from engine.train.detector import DetectorConfig, train_detector

    config = _config(DetectorConfig, args)
    vae = args.vae or builtin_models_dir() / BUILTIN / "vae"
    if not (vae / "config.json").is_file():
        if config.autoencoder_share > 0:
            raise SystemExit(f"no VQGAN in {vae}: train it first (python -m engine.train vqgan) or pass --vae DIR")
        vae = None
    out = args.out or builtin_models_dir() / BUILTIN / "detector"
    return train_detector(config, setup_run(out, args.device, args.seed), command, vae_dir=vae)


def _sr(args: argparse.Namespace, command: str) -> dict[str, float]:
    from engine.train.sr import SRConfig, train_sr

    config = _config(SRConfig, args)
    out = args.out or builtin_models_dir() / BUILTIN / "upscaler"
    return train_sr(config, setup_run(out, args.device, args.seed), command)


def _controlnet(args: argparse.Namespace, command: str) -> dict[str, float]:
    from engine.pipeline.resolve import builtin_model
    from engine.train.controlnet import CONTROL_TYPE, KINDS, ControlNetConfig, train_controlnets

    config = _config(ControlNetConfig, args)
    base = args.base or builtin_model()
    if base is None:
        raise SystemExit("no built-in model to control: train it first (vqgan, then flow) or pass --base DIR")
    out = args.out or builtin_models_dir() / "controlnet"
    kinds = KINDS if not args.kind else tuple(k for k in KINDS if CONTROL_TYPE[k] in args.kind)
    results = train_controlnets(config, setup_run(out, args.device, args.seed, bf16=False), command, base, kinds)
    return {f"{kind} {name}": value for kind, figures in results.items() for name, value in figures.items()}


# model name -> trainer (each imports torch and diffusers only when it runs)
TRAINERS: dict[str, Callable[[argparse.Namespace, str], dict[str, float]]] = {
    "vqgan": _vqgan,
    "flow": _flow,
    "flow-guide": _flow_guide,
    "detector": _detector,
    "sr": _sr,
    "controlnet": _controlnet,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m engine.train", description="Train a built-in model from scratch.")
    parser.add_argument("model", choices=sorted(TRAINERS), help="which model to train")
    parser.add_argument("--steps", type=int, help="training steps (default: the model's own)")
    parser.add_argument("--set", action="append", metavar="FIELD=VALUE",
                        help="change one field of the model's config, e.g. block_out_channels=32,64,128,128 "
                        "(repeatable; recorded in training.json)")
    parser.add_argument("--out", type=Path, help="output folder (default: its folder under resources/models/)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the initial weights (default 0)")
    parser.add_argument("--vae", type=Path, help="flow, detector: the trained VQGAN folder (default: the built-in one)")
    parser.add_argument("--base", type=Path, help="controlnet: the base model folder (default: the built-in one)")
    parser.add_argument("--kind", action="append", choices=("canny", "scribble", "seg"),
                        help="controlnet: train only this control type (repeatable; default: all three). "
                        "Each kind reseeds, so one trained alone equals the same kind in a full run")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    command = shlex.join(["python", "-m", "engine.train", *argv])
    try:
        figures = TRAINERS[args.model](args, command)
    except ConfigError as exc:
        parser.error(str(exc))
    for name, value in figures.items():
        print(f"{name}: {value:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
