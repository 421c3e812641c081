"""Built-in model benchmark: prompt adherence on held-out prompts, and the speed of one image.

Run: python benchmarks/builtin_quality.py [--prompts 200] [--steps 20] [--repeats 5] [--device cpu] [--model DIR]

--model measures another model folder laid out like the built-in one (a trainer's --out, e.g. an
experiment with `python -m engine.train ... --set`): its ControlNets are looked up beside it (DIR/../controlnet),
and its own detector/ and upscaler/ are used when it has them, else the built-in ones.

Quality: held-out captions of the shapes world (never trained on), generated at the model card's
settings (128 x 128, Euler, flow-shift schedule, CFG 4, autoguidance 2 by the model's guide/) with
seeds 0..N-1, judged automatically:
  - colour accuracy: the share of prompted shape colours present in the image (engine.data.judge;
    colours the background itself passes near are not judged);
  - shape-class accuracy: the share of prompted shapes whose class the built-in detector finds (each
    place counted once, with its best class: engine.data.judge.judge_classes), overall and per class;
  - edge F1 with the edge ControlNet (held-out edge maps vs the output's Canny edges);
  - the ceiling those two judges allow: the same figures for the held-out scenes' own renders and
    for their VQGAN reconstructions (what a perfect flow model could at best score through this
    autoencoder), with the reconstructions' PSNR;
  - with --denoise-sweep S,S,...: the same judges on img2img from each held-out scene at those denoise
    strengths, which shows at what noise level the model loses the prompt, and the share of the
    scene's shapes per size that the detector still finds at their own boxes;
  - the detector's own mAP on held-out scenes (cross-checked with pycocotools) and the upscaler's
    PSNR against bicubic; a figure whose model is missing prints as "not measured".
A grid of the first 16 samples with their prompts is saved to benchmarks/out/builtin_samples.png.

Speed: one 128 x 128 image, 20 steps at the card's settings (text encoding and VQGAN decode included),
target ours <= 2 s on the 2-core CPU; and with CFG alone, ours (the Engine) vs diffusers'
StableDiffusionPipeline (which has no autoguidance) on the same components with its
FlowMatchEulerDiscreteScheduler and the same sigmas and starting noise; medians of interleaved repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusionPipeline  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from benchmarks.pipeline import median_times, quiet  # noqa: E402
from engine.data import HELDOUT_SEEDS, make_sample  # noqa: E402
from engine.data.captions import parse_caption  # noqa: E402
from engine.data.judge import (  # noqa: E402
    EDGE_TOLERANCE_PX,
    edge_f1,
    judge_classes,
    judge_classes_by_class,
    judge_classes_by_size,
    judge_colours,
)
from engine.detect.shapes import load_detector  # noqa: E402
from engine.models import ModelNotFoundError, ModelStore  # noqa: E402
from engine.pipeline import Engine, ImageInputs, builtin_model  # noqa: E402
from engine.sampling import GeneratorNoise  # noqa: E402
from engine.settings import ControlUnit, Job, ModelRef  # noqa: E402

OUT = ROOT / "benchmarks" / "out"


def builtin_job(engine: Engine, steps: int, folder: Path | None = None) -> Job:
    folder = folder or builtin_model()
    if folder is None:
        raise SystemExit("no built-in model: run `make train-builtin` (python -m engine.train vqgan, then flow)")
    job = engine.recommended(Job(model=ModelRef(name=folder.name, path=str(folder))))
    return dataclasses.replace(job, steps=steps)


def diffusers_runner(engine: Engine, job: Job):  # type: ignore[no-untyped-def]
    """diffusers' StableDiffusionPipeline on the built-in components (the same sigmas and noise)."""
    model, _ = engine.load(job.model)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        {k: v for k, v in model.scheduler_config.items() if k != "prediction_type"})
    scheduler.init_noise_sigma = 1.0  # the SD pipeline scales its starting latents by this
    components = model.components()
    vq = components["vae"]
    pipe = quiet(StableDiffusionPipeline(**components | {"scheduler": scheduler}, safety_checker=None,
                                         feature_extractor=None, requires_safety_checker=False))
    vq_decode = vq.decode
    f = 2 ** (len(vq.config.block_out_channels) - 1)
    shape = (vq.config.latent_channels, job.height // f, job.width // f)
    sigmas = list(np.linspace(1.0, 1.0 / job.steps, job.steps))  # flow_shift with shift 1

    def theirs() -> np.ndarray:
        noise = GeneratorNoise.from_seeds([job.seed], shape, device=engine.device).sample()
        # VQModel.decode quantizes to the codebook like ours; it only lacks the generator argument the
        # pipeline passes to AutoencoderKL. Patched for this call only (the module is the engine's too).
        vq.decode = lambda z, generator=None, **kwargs: vq_decode(z, **kwargs)
        try:
            out = pipe(job.prompt, negative_prompt=job.negative_prompt, guidance_scale=job.cfg_scale,
                       height=job.height, width=job.width, latents=noise, output_type="np", sigmas=sigmas)
        finally:
            del vq.decode  # back to the class's method
        return np.round(out.images[0] * 255).astype(np.uint8)

    return theirs


def _wrap(prompt: str, width: int = 22) -> str:
    lines, line = [], ""
    for word in prompt.split():
        if line and len(line) + len(word) >= width:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    return "\n".join([*lines, line][:4])


def save_grid(tiles: list[tuple[np.ndarray, str]], path: Path) -> None:
    cell, text_h, cols = 128, 56, 4
    grid = Image.new("RGB", (cols * (cell + 6), ((len(tiles) + cols - 1) // cols) * (cell + text_h)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, prompt) in enumerate(tiles):
        x, y = (i % cols) * (cell + 6), (i // cols) * (cell + text_h)
        grid.paste(Image.fromarray(image), (x, y))
        draw.multiline_text((x + 2, y + cell + 2), _wrap(prompt), fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    print(f"samples: {path}")


def class_hits(detector, image: np.ndarray, prompt: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(prompted shapes whose class the detector finds, prompted shapes): engine.data.judge.judge_classes."""
    return judge_classes(detector.detections(image, min_score=0.3), prompt)


class ClassTally:
    """Prompted shapes found by the detector, per class, over many images (judge_classes_by_class)."""

    def __init__(self) -> None:
        self.found: Counter[str] = Counter()
        self.wanted: Counter[str] = Counter()
        self.single: dict[str, list[int]] = {}  # one-shape prompts per size word: [found, prompts]

    def add(self, detector, image: np.ndarray, prompt: str) -> None:  # type: ignore[no-untyped-def]
        found, wanted = judge_classes_by_class(detector.detections(image, min_score=0.3), prompt)
        self.found.update(found)
        self.wanted.update(wanted)
        specs = parse_caption(prompt)
        if len(specs) == 1:  # a generated image has no boxes: its size is known only when it has one shape
            tally = self.single.setdefault(specs[0].size or "medium", [0, 0])
            tally[0] += sum(found.values())
            tally[1] += 1

    def per_size(self) -> str:
        """"small 8/20 40 %, ...": one-shape prompts whose shape is found, per size word."""
        return ", ".join(f"{word} {self.single[word][0]}/{self.single[word][1]} "
                         f"{self.single[word][0] / self.single[word][1]:.0%}"
                         for word in ("small", "medium", "large") if word in self.single)

    @property
    def hits(self) -> int:
        return sum(self.found.values())

    @property
    def total(self) -> int:
        return sum(self.wanted.values())

    def per_class(self) -> str:
        """"circle 66/69 96 %, cross 29/71 41 %, ...": which shapes the model draws and which it blurs."""
        return ", ".join(f"{name} {self.found[name]}/{n} {self.found[name] / n:.0%}"
                         for name, n in sorted(self.wanted.items()))


def quality(engine: Engine, job: Job, prompts: int, detector) -> None:  # type: ignore[no-untyped-def]
    colours = [0, 0]
    classes = ClassTally()
    tiles = []
    for i in range(prompts):
        prompt = make_sample(HELDOUT_SEEDS.start + i).caption
        (result,) = engine.run(dataclasses.replace(job, prompt=prompt, seed=i))
        verdict = judge_colours(result.image, prompt)
        colours[0] += verdict.correct
        colours[1] += verdict.total
        if detector is not None:
            classes.add(detector, result.image, prompt)
        if len(tiles) < 16:
            tiles.append((result.image, prompt))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{prompts} prompts", flush=True)
    print(f"colour accuracy        {colours[0] / max(colours[1], 1):6.1%}  ({colours[0]}/{colours[1]} judged "
          f"colours, {prompts} prompts, {job.steps} steps, CFG {job.cfg_scale:g}"
          f"{f', autoguidance {job.autoguidance:g}' if job.autoguidance > 0 else ''})   target >= 90 %")
    if detector is None:
        print("shape-class accuracy   not measured: no built-in detector")
    else:
        print(f"shape-class accuracy   {classes.hits / max(classes.total, 1):6.1%}  ({classes.hits}/{classes.total} "
              f"prompted shapes found by the detector)   target >= 90 %")
        print(f"  per class: {classes.per_class()}")
        print(f"  one-shape prompts per size: {classes.per_size()}")
    save_grid(tiles, OUT / "builtin_samples.png")


def denoise_sweep(engine: Engine, job: Job, prompts: int, detector, strengths: list[float]) -> None:  # type: ignore[no-untyped-def]
    """Where the flow model loses the prompt: img2img from each held-out scene's own render with its caption at
    increasing denoise strengths (0: the scene through the VQGAN, 1: generation from noise), judged like quality()."""
    for strength in strengths:
        colours, classes = [0, 0], [0, 0]
        found_by_size, wanted_by_size = Counter[str](), Counter[str]()
        for i in range(prompts):
            sample = make_sample(HELDOUT_SEEDS.start + i)
            run = dataclasses.replace(job, prompt=sample.caption, seed=i, init_image="scene.png", denoise=strength)
            (result,) = engine.run(run, ImageInputs(images={"scene.png": sample.image}))
            verdict = judge_colours(result.image, sample.caption)
            colours[0], colours[1] = colours[0] + verdict.correct, colours[1] + verdict.total
            if detector is not None:
                hit, total = class_hits(detector, result.image, sample.caption)
                classes[0], classes[1] = classes[0] + hit, classes[1] + total
                # the output keeps the scene's layout at low strengths, so each shape can be looked for at its own box
                found, wanted = judge_classes_by_size(detector.detections(result.image, min_score=0.3), sample)
                found_by_size.update(found)
                wanted_by_size.update(wanted)
        found = f"class {classes[0] / max(classes[1], 1):6.1%}" if detector is not None else "class not measured"
        per_size = f"; at each shape's box: {size_shares(found_by_size, wanted_by_size)}" if detector is not None else ""
        print(f"from held-out scenes, denoise {strength:.2f}: colour {colours[0] / max(colours[1], 1):6.1%}, "
              f"{found} ({prompts} scenes){per_size}")


def size_shares(found: Counter[str], wanted: Counter[str]) -> str:
    """'small 153/174 88%, medium ..., large ...' from judge_classes_by_size tallies."""
    return ", ".join(f"{word} {found[word]}/{wanted[word]} {found[word] / max(wanted[word], 1):.0%}"
                     for word in ("small", "medium", "large"))


def reconstruction_ceiling(engine: Engine, job: Job, scenes: int, detector) -> None:  # type: ignore[no-untyped-def]
    """Colour and class accuracy, and edge F1 against the scenes' edge maps, of held-out scenes' renders
    and of their VQGAN reconstructions: what the judges give at best through this autoencoder."""
    vq = engine.load(job.model)[0].components()["vae"]
    totals = {"scene renders": [0, 0], "VQGAN reconstructions": [0, 0]}
    tallies = {name: ClassTally() for name in totals}
    sizes: dict[str, tuple[Counter[str], Counter[str]]] = {name: (Counter(), Counter()) for name in totals}
    psnrs: list[float] = []
    edges: dict[str, list[float]] = {name: [] for name in totals}
    for i in range(scenes):
        sample = make_sample(HELDOUT_SEEDS.start + i, controls=("edges",))
        assert sample.edges is not None
        x = torch.from_numpy(sample.image).permute(2, 0, 1).float().div(127.5).sub(1)[None]  # (1, 3, H, W)
        with torch.no_grad():
            y = vq.decode(vq.encode(x.to(vq.device, vq.dtype)).latents).sample.float().cpu()
        rec = y[0].clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        psnrs.append(10 * np.log10(255.0**2 / np.mean((rec.astype(np.float64) - sample.image) ** 2)))
        for name, image in (("scene renders", sample.image), ("VQGAN reconstructions", rec)):
            verdict, counts = judge_colours(image, sample.caption), totals[name]
            tallies[name].add(detector, image, sample.caption)
            found, wanted = judge_classes_by_size(detector.detections(image, min_score=0.3), sample)
            sizes[name][0].update(found)
            sizes[name][1].update(wanted)
            counts[0], counts[1] = counts[0] + verdict.correct, counts[1] + verdict.total
            edges[name].append(edge_f1(sample.edges, image))
    for name, (c, ct) in totals.items():
        psnr = f", PSNR {np.mean(psnrs):.2f} dB" if name.startswith("VQGAN") else ""
        tally = tallies[name]
        print(f"ceiling, {name:22s} colour {c / max(ct, 1):6.1%}, class {tally.hits / max(tally.total, 1):6.1%}, "
              f"edge F1 {np.mean(edges[name]):.3f}{psnr} ({scenes} held-out scenes)")
    print(f"  per class, VQGAN reconstructions: {tallies['VQGAN reconstructions'].per_class()}")
    for name, (found, wanted) in sizes.items():  # matched at each shape's own box: small shapes are the hard part
        print(f"  per size, {name}: {size_shares(found, wanted)}")


def controlnet_edges(engine: Engine, job: Job, prompts: int) -> None:
    """Edge F1 between edge control maps of held-out scenes and the edges of what they made."""
    try:
        scores, tiles = [], []
        for i in range(prompts):
            sample = make_sample(HELDOUT_SEEDS.start + 5000 + i, controls=("edges",))
            assert sample.edges is not None
            unit = ControlUnit(type="canny", image="edges.png")
            run = dataclasses.replace(job, prompt=sample.caption, seed=i, controls=(unit,))
            (result,) = engine.run(run, ImageInputs(images={"edges.png": sample.edges}))
            scores.append(edge_f1(sample.edges, result.image))
            if len(tiles) < 8:
                tiles += [(sample.edges, "edge map"), (result.image, sample.caption)]
    except ModelNotFoundError as exc:
        print(f"edge F1 (ControlNet)   not measured: {exc}")
        return
    print(f"edge F1 (ControlNet)   {np.mean(scores):6.3f}  (mean of {prompts} held-out edge maps, "
          f"{EDGE_TOLERANCE_PX} px tolerance)   target >= 0.7")
    save_grid(tiles, OUT / "builtin_controlnet_edges.png")


def detector_map(detector, images: int) -> None:  # type: ignore[no-untyped-def]
    from engine.detect.evaluate import COCO_THRESHOLDS, mean_average_precision
    from engine.train.detector import heldout_predictions
    from tests.engine.detect.test_boxes_and_map import pycocotools_map

    gts, dets = heldout_predictions(detector, images, next(detector.parameters()).device)
    ours50, ours = mean_average_precision(gts, dets, (0.5,)), mean_average_precision(gts, dets, COCO_THRESHOLDS)
    if importlib.util.find_spec("pycocotools") is not None:
        coco50, coco = pycocotools_map(gts, dets, [0.5]), pycocotools_map(gts, dets, list(COCO_THRESHOLDS))
        check = f"pycocotools {coco50:.4f} / {coco:.4f}"
    else:
        check = "pycocotools not installed (make setup-test installs it)"
    print(f"detector mAP@0.5       {ours50:6.3f}  (mAP@0.5:0.95 {ours:.3f}; {check}; {images} held-out scenes)"
          f"   target >= 0.9")


def upscaler_psnr(folder: Path, images: int) -> None:
    from engine.train.sr import evaluate_sr
    from engine.upscale import load_pixelshuffle_sr

    if not (folder / "model.safetensors").is_file():
        print("SR PSNR                not measured: no built-in upscaler")
        return
    figures = evaluate_sr(load_pixelshuffle_sr(folder), images, torch.device("cpu"))
    print(f"SR PSNR (128 -> 512)   {figures['heldout_psnr_db']:6.2f} dB, bicubic {figures['bicubic_psnr_db']:.2f} dB, "
          f"gain {figures['gain_over_bicubic_db']:+.2f} dB ({images} held-out scenes)   target >= +2 dB")


def speed(engine: Engine, job: Job, repeats: int) -> None:
    """Ours at the card's settings against the 2 s target; diffusers' pipeline has no autoguidance, so the
    pixel and time comparison with it runs ours without (CFG alone, the same work as the pipeline's)."""
    job = dataclasses.replace(job, prompt=make_sample(HELDOUT_SEEDS.start).caption, seed=0)
    plain = dataclasses.replace(job, autoguidance=0.0)
    guided = job.autoguidance > 0 and engine.load(job.model)[0].guide is not None

    def ours() -> np.ndarray:
        return engine.run(plain)[0].image

    def ours_guided() -> np.ndarray:
        return engine.run(job)[0].image

    theirs = diffusers_runner(engine, plain)
    diff = int(np.abs(ours().astype(np.int16) - theirs().astype(np.int16)).max())
    t_ours, t_theirs, *t_guided = median_times([ours, theirs, *([ours_guided] if guided else [])], repeats,
                                              engine.device)
    settings = f"CFG {job.cfg_scale:g}" + (f", autoguidance {job.autoguidance:g}" if guided else "")
    print(f"one {job.width}x{job.height} image, {job.steps} steps, {settings}: ours {(t_guided or [t_ours])[0]:.2f} s"
          f"   target ours <= 2 s")
    print(f"  CFG {job.cfg_scale:g} alone: ours {t_ours:.2f} s, diffusers {t_theirs:.2f} s, time ratio "
          f"{t_ours / t_theirs:.2f}, max pixel diff {diff}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--edge-prompts", type=int, default=50, help="held-out edge maps for the ControlNet F1")
    parser.add_argument("--detector-images", type=int, default=500)
    parser.add_argument("--sr-images", type=int, default=100)
    parser.add_argument("--device", default=None)
    parser.add_argument("--model", type=Path, help="another model folder laid out like the built-in one")
    parser.add_argument("--denoise-sweep", type=lambda text: [float(x) for x in text.split(",")], metavar="S,S,...",
                        help="also judge img2img from the held-out scenes at these denoise strengths "
                        "(where between noise and the scene the model loses the prompt)")
    args = parser.parse_args()
    if args.model is not None and not (args.model / "model_index.json").is_file():
        raise SystemExit(f"--model {args.model}: no model_index.json there")
    store = ModelStore.with_roots([args.model.parent]) if args.model is not None else None
    engine = Engine(device=args.device, store=store)
    job = builtin_job(engine, args.steps, args.model)
    print(f"device {engine.device}, model {job.model.path}")
    speed(engine, job, args.repeats)
    folder = Path(job.model.path or "")
    shipped = builtin_model() or folder
    detector_dir = next((d / "detector" for d in (folder, shipped) if (d / "detector" / "model.safetensors").is_file()),
                        None)
    detector = load_detector(detector_dir) if detector_dir is not None else None
    if detector_dir is not None and detector_dir.parent != folder:
        print(f"detector: {detector_dir} (the model folder has none)")
    quality(engine, job, args.prompts, detector)
    if detector is not None:
        reconstruction_ceiling(engine, job, args.prompts, detector)
    if args.denoise_sweep:
        denoise_sweep(engine, job, args.prompts, detector, args.denoise_sweep)
    controlnet_edges(engine, job, args.edge_prompts)
    if detector is None:
        print("detector mAP@0.5       not measured: no built-in detector")
    else:
        detector_map(detector, args.detector_images)
    upscaler_psnr(folder / "upscaler" if (folder / "upscaler").is_dir() else shipped / "upscaler", args.sr_images)


if __name__ == "__main__":
    main()
