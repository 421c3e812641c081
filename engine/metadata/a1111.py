"""The A1111 ``parameters`` text: written from a job, and parsed best-effort from other tools.

Layout: the prompt, then ``Negative prompt: ...`` when there is one, then one line of
``Key: value`` pairs separated by ``, ``; a value holding ``,``, ``:`` or a newline is
JSON-quoted. The parser uses the same field syntax as A1111's own reader.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from engine import __version__
from engine.sampling.names import (
    parse_sampler_name,
    parse_schedule_name,
    sampler_display_name,
    schedule_display_name,
)
from engine.settings.codec import SettingsError
from engine.settings.job import (
    ControlUnit,
    DetailPass,
    Inpaint,
    Job,
    LoraRef,
    ModelRef,
    Upscale,
    image_detail_size,
)

# A1111's own pattern for one "Key: value" pair of the last line.
PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
SIZE_RE = re.compile(r"^(\d+)x(\d+)$")
LORA_TAG_RE = re.compile(r"<lora:([^:>]+)(?::([-+]?[0-9.]+))?>")
NEGATIVE_PREFIX = "Negative prompt:"


def quote(value: Any) -> str:
    """A1111's quoting: JSON-quote a value that holds ',', ':' or a newline."""
    text = str(value)
    if "," in text or ":" in text or "\n" in text:
        return json.dumps(text, ensure_ascii=False)
    return text


def unquote(text: str) -> str:
    """Undo `quote` for a value read from a parameters line."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text
        return value if isinstance(value, str) else text
    return text


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _control_text(unit: ControlUnit) -> str:
    parts = {
        "Module": unit.preprocessor or "none",
        "Model": unit.model or unit.type,
        "Weight": _num(unit.weight),
        "Guidance Start": _num(unit.start),
        "Guidance End": _num(unit.end),
    }
    return ", ".join(f"{k}: {v}" for k, v in parts.items())


def _detail_fields(index: int, detail: DetailPass) -> dict[str, Any]:
    suffix = "" if index == 0 else f" {_ordinal(index + 1)}"
    return {
        f"ADetailer model{suffix}": detail.detector,
        f"ADetailer prompt{suffix}": detail.prompt or None,
        f"ADetailer negative prompt{suffix}": detail.negative_prompt or None,
        f"ADetailer confidence{suffix}": _num(detail.min_score),
        # ADetailer's value is a square kernel's side: 2d + 1 grows its mask by our d pixels.
        f"ADetailer dilate erode{suffix}": 2 * detail.dilation + 1,
        f"ADetailer mask blur{suffix}": detail.mask_blur,
        f"ADetailer denoising strength{suffix}": _num(detail.denoise),
        f"ADetailer inpaint padding{suffix}": detail.padding,
        f"ADetailer use inpaint width/height{suffix}": "True",  # else ADetailer reads the image's size
        f"ADetailer inpaint width{suffix}": detail.working_size,
        f"ADetailer inpaint height{suffix}": detail.working_size,
    }


def _ordinal(n: int) -> str:
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _param_fields(job: Job) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "Steps": job.steps,
        "Sampler": sampler_display_name(job.sampler),
        "Schedule type": schedule_display_name(job.schedule),
        "CFG scale": _num(job.cfg_scale),
        "Seed": job.seed,
        "Size": f"{job.width}x{job.height}",
        "Model": job.model.name or None,
        "VAE": job.model.vae,
        "Variation seed": job.variation_seed if job.variation_strength > 0 else None,
        "Variation seed strength": _num(job.variation_strength) if job.variation_strength > 0 else None,
        "Denoising strength": _num(job.denoise) if job.init_image is not None else None,
        "Clip skip": job.clip_skip if job.clip_skip > 1 else None,
        "CFG Rescale phi": _num(job.guidance_rescale) if job.guidance_rescale > 0 else None,
        "Autoguidance": _num(job.autoguidance) if job.autoguidance > 0 else None,
    }
    if job.batch_size > 1:
        fields["Batch size"] = job.batch_size
    if job.inpaint is not None:
        fields["Mask blur"] = job.inpaint.blur
        fields["Inpaint area"] = "Only masked" if job.inpaint.only_masked else "Whole picture"
        fields["Masked area padding"] = job.inpaint.padding
    for i, unit in enumerate(job.controls):
        fields[f"ControlNet {i}"] = _control_text(unit)
    if job.upscale is not None:
        fields.update(_upscale_fields(job))
    for i, detail in enumerate(job.detail):
        fields.update(_detail_fields(i, detail))
    fields["Version"] = f"atelier {__version__}"
    return fields


def _upscale_fields(job: Job) -> dict[str, Any]:
    up = job.upscale
    assert up is not None
    if up.denoise > 0:
        # A1111 writes the hires strength as "Denoising strength" (txt2img has no other); an img2img
        # job owns that field, so its hires strength goes apart. In latent mode the upscaler's name is
        # already A1111's ("Latent", "Latent (bicubic)", ...).
        strength = "Hires denoising strength" if job.init_image is not None else "Denoising strength"
        return {
            "Hires upscale": _num(up.scale),
            "Hires steps": up.steps or None,
            "Hires upscaler": up.upscaler,
            strength: _num(up.denoise),
        }
    return {"Postprocess upscale by": _num(up.scale), "Postprocess upscaler": up.upscaler}


def format_parameters(job: Job) -> str:
    """The A1111-compatible ``parameters`` text for a job."""
    prompt = job.prompt
    tags = " ".join(f"<lora:{_lora_name(l.path)}:{_num(l.weight)}>" for l in job.loras)
    if tags:
        prompt = f"{prompt} {tags}" if prompt else tags
    negative = f"\n{NEGATIVE_PREFIX} {job.negative_prompt}" if job.negative_prompt else ""
    line = ", ".join(f"{k}: {quote(v)}" for k, v in _param_fields(job).items() if v is not None)
    return f"{prompt}{negative}\n{line}"


def _lora_name(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if name.endswith((".safetensors", ".pt", ".ckpt")) else name


def split_parameters(text: str) -> tuple[str, str, dict[str, str]]:
    """Split parameters text into (prompt, negative prompt, {key: raw value}) as A1111 does."""
    *lines, last = text.strip().split("\n")
    if len(PARAM_RE.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    target = prompt
    for line in lines:
        line = line.strip()
        if line.startswith(NEGATIVE_PREFIX):
            target = negative
            line = line[len(NEGATIVE_PREFIX):].strip()
        target.append(line)
    params = {key: unquote(value) for key, value in PARAM_RE.findall(last)}
    return "\n".join(prompt), "\n".join(negative), params


@dataclass
class ParsedParameters:
    """What `parse_parameters` made of a foreign parameters text."""

    job: Job
    unmapped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _int(v: str) -> int:
    return int(v.strip())


def _float(v: str) -> float:
    return float(v.strip())


# A1111 key -> (Job field, converter). Keys handled elsewhere are listed in _SPECIAL_KEYS.
_SCALAR_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "Steps": ("steps", _int),
    "CFG scale": ("cfg_scale", _float),
    "Seed": ("seed", _int),
    "Variation seed": ("variation_seed", _int),
    "Variation seed strength": ("variation_strength", _float),
    "Clip skip": ("clip_skip", _int),
    "CFG Rescale phi": ("guidance_rescale", _float),
    "Autoguidance": ("autoguidance", _float),
    "Batch size": ("batch_size", _int),
}
_SPECIAL_KEYS = {
    "Sampler", "Schedule type", "Size", "Model", "VAE", "Denoising strength", "Version",
    "Mask blur", "Inpaint area", "Masked area padding", "Hires upscale", "Hires steps",
    "Hires upscaler", "Hires denoising strength", "Postprocess upscale by", "Postprocess upscaler",
}


def parse_parameters(text: str) -> ParsedParameters:
    """Map A1111-family ``parameters`` text onto a job, best effort; unknown keys are kept aside."""
    prompt, negative, params = split_parameters(text)
    loras = tuple(LoraRef(name, float(w) if w else 1.0) for name, w in LORA_TAG_RE.findall(prompt))
    prompt = LORA_TAG_RE.sub("", prompt).strip()
    values: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative, "loras": loras}
    result = ParsedParameters(job=Job())
    for key, raw in params.items():
        if key in _SCALAR_KEYS:
            name, convert = _SCALAR_KEYS[key]
            try:
                values[name] = convert(raw)
            except ValueError:
                result.warnings.append(f"{key}: cannot read {raw!r} as a number")
        elif key not in _SPECIAL_KEYS and not key.startswith(("ControlNet ", "ADetailer ")):
            result.unmapped[key] = raw
    _map_sampler(params, values, result)
    _map_size(params, values, result)
    _map_model(params, values)
    _map_img2img(params, values, result)
    _map_upscale(params, values, result)
    values["controls"] = _map_controls(params, result)
    values["detail"] = _map_details(params, values, result)
    result.job = _build_job(values, result)
    return result


def _map_sampler(params: dict[str, str], values: dict[str, Any], result: ParsedParameters) -> None:
    if "Sampler" in params:
        try:
            values["sampler"], folded = parse_sampler_name(params["Sampler"])
            if folded:
                values["schedule"] = folded
        except ValueError as exc:
            result.warnings.append(f"Sampler: {exc}")
    if "Schedule type" in params:
        try:
            values["schedule"] = parse_schedule_name(params["Schedule type"])
        except ValueError as exc:
            result.warnings.append(f"Schedule type: {exc}")


def _map_size(params: dict[str, str], values: dict[str, Any], result: ParsedParameters) -> None:
    if "Size" not in params:
        return
    match = SIZE_RE.match(params["Size"].strip())
    if match is None:
        result.warnings.append(f"Size: cannot read {params['Size']!r} as WIDTHxHEIGHT")
        return
    values["width"], values["height"] = int(match.group(1)), int(match.group(2))


def _map_model(params: dict[str, str], values: dict[str, Any]) -> None:
    if "Model" in params or "VAE" in params:
        values["model"] = ModelRef(name=params.get("Model", ""), vae=params.get("VAE"))


def _map_img2img(params: dict[str, str], values: dict[str, Any], result: ParsedParameters) -> None:
    # A1111's hires fix writes its strength as "Denoising strength"; we write it apart.
    hires_owns = "Hires upscale" in params and "Hires denoising strength" not in params
    if "Denoising strength" in params and not hires_owns:
        # The init image itself is not in the file; record that one was used.
        values["init_image"] = "unknown"
        try:
            values["denoise"] = _float(params["Denoising strength"])
        except ValueError:
            result.warnings.append("Denoising strength: not a number")
    if "Mask blur" in params and "init_image" in values:
        try:
            values["inpaint"] = Inpaint(
                mask="unknown",
                blur=_int(params["Mask blur"]),
                only_masked=params.get("Inpaint area", "") == "Only masked",
                padding=_int(params.get("Masked area padding", "32")),
            )
        except (ValueError, SettingsError) as exc:
            result.warnings.append(f"inpaint: {exc}")


def _map_upscale(params: dict[str, str], values: dict[str, Any], result: ParsedParameters) -> None:
    try:
        if "Hires upscale" in params:
            upscaler = params.get("Hires upscaler", "lanczos")
            denoise = params.get("Hires denoising strength", params.get("Denoising strength", "0.5"))
            values["upscale"] = Upscale(
                upscaler=upscaler,
                scale=_float(params["Hires upscale"]),
                mode="latent" if upscaler.lower().startswith("latent") else "pixel",
                denoise=_float(denoise),
                steps=_int(params.get("Hires steps", "0")),
            )
        elif "Postprocess upscale by" in params:
            values["upscale"] = Upscale(
                upscaler=params.get("Postprocess upscaler", "lanczos"),
                scale=_float(params["Postprocess upscale by"]),
            )
    except (ValueError, SettingsError) as exc:
        result.warnings.append(f"upscale: {exc}")


def _sub_params(text: str) -> dict[str, str]:
    return {k: unquote(v).strip() for k, v in PARAM_RE.findall(text)}


def _map_controls(params: dict[str, str], result: ParsedParameters) -> tuple[ControlUnit, ...]:
    units = []
    for key in sorted(k for k in params if re.fullmatch(r"ControlNet \d+", k)):
        sub = _sub_params(params[key])
        module = sub.get("Module", "none")
        model = sub.get("Model", "")
        try:
            units.append(
                ControlUnit(
                    type=_control_type(module, model),
                    image="unknown",
                    model=model or None,
                    preprocessor=None if module == "none" else module,
                    weight=_float(sub.get("Weight", "1")),
                    start=_float(sub.get("Guidance Start", "0")),
                    end=_float(sub.get("Guidance End", "1")),
                )
            )
        except (ValueError, SettingsError) as exc:
            result.warnings.append(f"{key}: {exc}")
    return tuple(units)


def _control_type(module: str, model: str) -> str:
    text = f"{module} {model}".lower()
    for kind in ("canny", "scribble", "lineart", "seg", "openpose", "depth", "tile", "shuffle", "softedge", "inpaint"):
        if kind in text:
            return "pose" if kind == "openpose" else kind
    return module if module != "none" else (model or "unknown")


def _map_details(params: dict[str, str], values: dict[str, Any], result: ParsedParameters) -> tuple[DetailPass, ...]:
    passes = []
    for n in range(1, 10):
        suffix = "" if n == 1 else f" {_ordinal(n)}"
        if f"ADetailer model{suffix}" not in params:
            break
        get = lambda name, default: params.get(f"ADetailer {name}{suffix}", default)  # noqa: E731
        try:
            passes.append(
                DetailPass(
                    detector=_detector_name(get("model", ""), result),
                    prompt=get("prompt", ""),
                    negative_prompt=get("negative prompt", ""),
                    min_score=_float(get("confidence", "0.3")),
                    dilation=_dilation(get("dilate erode", "4"), result),
                    mask_blur=_int(get("mask blur", "4")),
                    denoise=_float(get("denoising strength", "0.4")),
                    padding=_int(get("inpaint padding", "32")),
                    working_size=_working_size(get, values),
                )
            )
        except (ValueError, SettingsError) as exc:
            result.warnings.append(f"ADetailer{suffix}: {exc}")
    return tuple(passes)


def _dilation(text: str, result: ParsedParameters) -> int:
    """Our dilation in pixels for ADetailer's kernel side (it grows by side // 2); it erodes for a
    negative side, which a detail pass here does not do."""
    side = _int(text)
    if side < 0:
        result.warnings.append(f"ADetailer dilate erode {side}: eroding the mask is not supported; not dilating")
    return max(side, 0) // 2


def _working_size(get: Callable[[str, str], str], values: dict[str, Any]) -> int:
    """ADetailer samples at its inpaint width/height only when told to; otherwise at the image's size."""
    if get("use inpaint width/height", "False").strip() == "True":
        return max(_int(get("inpaint width", "512")), _int(get("inpaint height", "512")))
    return image_detail_size(values.get("width", Job.width), values.get("height", Job.height))


# ADetailer's detection models by the kind in their names ("face_yolov8n.pt", "mediapipe_face_full",
# "hand_yolov8s.pt", "person_yolov8n-seg.pt") -> the registered detector that finds that kind here.
ADETAILER_KINDS: tuple[tuple[str, str], ...] = (
    ("face", "mediapipe-face"),
    ("hand", "mediapipe-hands"),
    ("person", "mediapipe-person"),
)


def _detector_name(model: str, result: ParsedParameters) -> str:
    """Our detector for an ADetailer model name: a registered name or .onnx file as is, else the one
    that finds the same kind; a model of no kind we know is kept (running it then says so)."""
    from engine.detect.registry import DETECTORS, is_onnx_path  # loads cv2: only for ADetailer fields

    if model in DETECTORS or is_onnx_path(model):
        return model
    lowered = model.lower()
    for kind, detector in ADETAILER_KINDS:
        if kind in lowered:
            return detector
    result.warnings.append(f"ADetailer model {model!r}: no detector here finds its kind; choose one of "
                           f"{', '.join(DETECTORS)} or a .onnx file")
    return model


def _build_job(values: dict[str, Any], result: ParsedParameters) -> Job:
    """Build the job, dropping (with a warning) each value the job rejects."""
    values = dict(values)
    for _ in range(len(values) + 1):
        try:
            return Job(**values)
        except SettingsError as exc:
            name = exc.path.split(".")[0].split("[")[0]
            if name not in values:
                break
            result.warnings.append(f"{exc}; using the default")
            del values[name]
    return Job(prompt=values.get("prompt", ""))
