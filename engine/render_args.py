"""`atelier render` flags -> a Job: settings from JSON or an image's metadata, then flags override."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from engine.metadata import read_image_settings
from engine.sampling.names import parse_sampler_name, parse_schedule_name
from engine.settings import ControlUnit, DetailPass, Inpaint, Job, LoraRef, ModelRef, Upscale, load_settings
from engine.settings.job import image_detail_size

SIZE_RE = re.compile(r"^(\d+)[xX](\d+)$")


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `atelier render`."""
    parser.add_argument("settings", nargs="?", type=Path, help="a settings JSON file to start from")
    parser.add_argument("--from", dest="from_image", type=Path, metavar="IMAGE",
                        help="start from the settings recorded in an image Atelier made")
    parser.add_argument("--model", help="checkpoint path or model name")
    parser.add_argument("--prompt")
    parser.add_argument("--negative", help="negative prompt")
    parser.add_argument("--sampler", help="sampler id or display name, e.g. dpmpp_2m or 'DPM++ 2M'")
    parser.add_argument("--schedule", help="schedule id or display name, e.g. karras")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--cfg", type=float, help="CFG scale")
    parser.add_argument("--autoguidance", type=float, metavar="W",
                        help="weight of the model's guide model (autoguidance; 0 = off; models without one ignore it)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--size", help="WIDTHxHEIGHT, e.g. 512x768")
    parser.add_argument("--batch", type=int, help="batch size")
    parser.add_argument("--strength", type=float, help="img2img denoise strength (with --init)")
    parser.add_argument("--init", type=Path, help="init image for img2img")
    parser.add_argument("--mask", type=Path, help="inpaint mask (white = repaint), with --init")
    parser.add_argument("--control", action="append", default=[], metavar="TYPE=IMAGE[:WEIGHT]",
                        help="a ControlNet unit; repeat for several")
    parser.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]", help="repeatable")
    parser.add_argument("--detail", action="append", default=[], metavar="DETECTOR[:DENOISE]",
                        help="a detail pass (ADetailer-style): repaint each detection of a detector (e.g. "
                        "mediapipe-face, mediapipe-hands, shapes, or a .onnx file) at DENOISE (default "
                        f"{DetailPass().denoise:g}), at the image's size; repeat for several")
    parser.add_argument("--detail-prompt", action="append", default=[], metavar="TEXT",
                        help="the detail passes' prompt (default: the job's); once for all, or once per --detail")
    parser.add_argument("--detail-negative", action="append", default=[], metavar="TEXT",
                        help="the detail passes' negative prompt, given like --detail-prompt")
    parser.add_argument("--detail-align", action="store_true",
                        help="repaint the faces the detail passes find upright on an aligned crop (five "
                        "landmarks, ArcFace-style) instead of an axis-aligned one; needs a face detector")
    parser.add_argument("--hires", metavar="SCALE[:DENOISE]",
                        help="hires fix: upscale each image by SCALE, then repaint it by img2img at DENOISE with "
                        "its seed (default 0: only upscale); large targets are repainted in tiles")
    parser.add_argument("--hires-upscaler", metavar="NAME",
                        help=f"the hires upscaler (default {Upscale().upscaler}): lanczos, bicubic, atelier-x4, an "
                        "ESRGAN-family model file (its path, or its name in the models folder), or a latent one "
                        "(Latent, 'Latent (bicubic)', 'Latent (nearest-exact)', ...)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output PNG")


def _split_weight(text: str, what: str) -> tuple[str, float | None]:
    """'name:0.8' -> ('name', 0.8); 'C:\\x.png' or 'a.png' -> (text, None)."""
    head, sep, tail = text.rpartition(":")
    if sep and head and not tail.startswith(("\\", "/")):
        try:
            return head, float(tail)
        except ValueError:
            if re.fullmatch(r"[-+.\d]+", tail):
                raise ValueError(f"{what}: bad weight {tail!r} in {text!r}") from None
    return text, None


def parse_control(text: str) -> ControlUnit:
    """TYPE=IMAGE[:WEIGHT] -> ControlUnit."""
    kind, sep, rest = text.partition("=")
    if not sep or not kind or not rest:
        raise ValueError(f"--control expects TYPE=IMAGE[:WEIGHT], got {text!r}")
    image, weight = _split_weight(rest, "--control")
    return ControlUnit(type=kind, image=image, weight=1.0 if weight is None else weight)


def parse_lora(text: str) -> LoraRef:
    """FILE[:WEIGHT] -> LoraRef."""
    path, weight = _split_weight(text, "--lora")
    return LoraRef(path=path, weight=1.0 if weight is None else weight)


def parse_detail(text: str, working_size: int) -> DetailPass:
    """DETECTOR[:DENOISE] -> DetailPass repainting at `working_size`."""
    detector, denoise = _split_weight(text, "--detail")
    if denoise is None:
        return DetailPass(detector=detector, working_size=working_size)
    return DetailPass(detector=detector, denoise=denoise, working_size=working_size)


def _hires(args: argparse.Namespace, job: Job) -> Upscale:
    """The job's upscale with --hires / --hires-upscaler applied: a new scale (and denoise) replaces the
    recorded ones, the upscaler alone changes the recorded upscale; a latent upscaler sets latent mode."""
    base = job.upscale
    if args.hires is not None:
        text, denoise = _split_weight(args.hires, "--hires")
        try:
            scale = float(text)
        except ValueError:
            raise ValueError(f"--hires expects SCALE[:DENOISE], e.g. 2:0.5, got {args.hires!r}") from None
        base = dataclasses.replace(base or Upscale(), scale=scale, denoise=denoise or 0.0)
    if base is None:
        raise ValueError("--hires-upscaler needs an upscale: add --hires SCALE[:DENOISE]")
    if args.hires_upscaler is not None:
        mode = "latent" if args.hires_upscaler.lower().startswith("latent") else "pixel"
        base = dataclasses.replace(base, upscaler=args.hires_upscaler, mode=mode)
    return base


def _per_pass(values: list[str], count: int, flag: str) -> list[str | None]:
    """One value per pass from a flag given never, once (for all) or once per pass."""
    if not values:
        return [None] * count
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ValueError(f"{flag} given {len(values)} times for {count} detail passes: give it once, or once per pass")
    return list(values)


def _detail_passes(args: argparse.Namespace, job: Job) -> tuple[DetailPass, ...]:
    """The job's detail passes with the --detail flags applied: new passes replace the recorded ones,
    --detail-prompt / --detail-negative / --detail-align alone change the recorded ones."""
    size = image_detail_size(job.width, job.height)
    passes = [parse_detail(text, size) for text in args.detail] if args.detail else list(job.detail)
    if (args.detail_prompt or args.detail_negative or args.detail_align) and not passes:
        raise ValueError("--detail-prompt, --detail-negative and --detail-align need a detail pass: "
                         "add --detail DETECTOR")
    prompts = _per_pass(args.detail_prompt, len(passes), "--detail-prompt")
    negatives = _per_pass(args.detail_negative, len(passes), "--detail-negative")
    changed = []
    for settings, prompt, negative in zip(passes, prompts, negatives):
        if prompt is not None:
            settings = dataclasses.replace(settings, prompt=prompt)
        if negative is not None:
            settings = dataclasses.replace(settings, negative_prompt=negative)
        if args.detail_align:
            settings = dataclasses.replace(settings, align_faces=True)
        changed.append(settings)
    return tuple(changed)


def _base_job(args: argparse.Namespace, recommend: Callable[[Job], Job] | None) -> Job:
    if args.settings is not None and args.from_image is not None:
        raise ValueError("give either a settings file or --from IMAGE, not both")
    if args.from_image is not None:
        return read_image_settings(args.from_image).job
    if args.settings is not None:
        return load_settings(args.settings)
    job = Job() if args.model is None else Job(model=_model_ref(args.model))
    return recommend(job) if recommend is not None else job


def _model_ref(text: str) -> ModelRef:
    return ModelRef(name=Path(text).stem, path=text)


def job_from_args(args: argparse.Namespace, recommend: Callable[[Job], Job] | None = None) -> Job:
    """The job `atelier render` runs: the base settings with every given flag applied. With no
    settings file or image, the base is the defaults with what `recommend` adds for the model
    (the model card's size, sampler, steps and CFG)."""
    job = _base_job(args, recommend)
    changes: dict[str, object] = {}
    if args.model is not None:
        changes["model"] = _model_ref(args.model)
    simple = {"prompt": args.prompt, "negative_prompt": args.negative, "steps": args.steps,
              "cfg_scale": args.cfg, "autoguidance": args.autoguidance, "seed": args.seed, "batch_size": args.batch, "denoise": args.strength}
    changes.update({k: v for k, v in simple.items() if v is not None})
    if args.sampler is not None:
        changes["sampler"], folded = parse_sampler_name(args.sampler)
        if folded and args.schedule is None:
            changes["schedule"] = folded
    if args.schedule is not None:
        changes["schedule"] = parse_schedule_name(args.schedule)
    if args.size is not None:
        match = SIZE_RE.match(args.size)
        if match is None:
            raise ValueError(f"--size expects WIDTHxHEIGHT, got {args.size!r}")
        changes["width"], changes["height"] = int(match.group(1)), int(match.group(2))
    if args.init is not None:
        changes["init_image"] = str(args.init)
    if args.mask is not None:
        if args.init is None and job.init_image is None:
            raise ValueError("--mask needs --init (the image to inpaint)")
        changes["inpaint"] = Inpaint(mask=str(args.mask))
    if args.control:
        changes["controls"] = tuple(parse_control(c) for c in args.control)
    if args.lora:
        changes["loras"] = tuple(parse_lora(item) for item in args.lora)
    if args.hires is not None or args.hires_upscaler is not None:
        changes["upscale"] = _hires(args, job)
    job = dataclasses.replace(job, **changes)
    if args.detail or args.detail_prompt or args.detail_negative or args.detail_align:
        job = job.replace(detail=_detail_passes(args, job))
    return job
