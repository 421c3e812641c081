"""PNG metadata: A1111-compatible parameters text plus exact Atelier settings, read back safely."""

from __future__ import annotations

import io
import json
import random
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from engine.metadata import (
    MetadataError,
    format_parameters,
    metadata_texts,
    parse_parameters,
    read_image_settings,
    save_png,
)
from engine.metadata.png import MAX_TEXT_BYTES, read_png_text
from engine.settings import ControlUnit, DetailPass, Inpaint, Job, LoraRef, ModelRef, Upscale
from tests.engine.test_settings import FULL_JOB

# A1111's own field syntax (modules/infotext_utils.py), written out here as the reference.
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def a1111_parse(text: str) -> dict[str, str]:
    """A1111's parse_generation_parameters, reduced to what the format defines."""
    *lines, last = text.strip().split("\n")
    if len(A1111_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    res: dict[str, str] = {"Prompt": "", "Negative prompt": ""}
    done_with_prompt = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        key = "Negative prompt" if done_with_prompt else "Prompt"
        res[key] += ("" if res[key] == "" else "\n") + line
    for k, v in A1111_PARAM.findall(last):
        if v and v[0] == '"' and v[-1] == '"':
            v = json.loads(v)
        res[k] = v
    return res


def _image() -> Image.Image:
    return Image.linear_gradient("L").resize((32, 24)).convert("RGB")


def test_png_round_trips_every_settings_field(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    save_png(_image(), path, FULL_JOB)
    got = read_image_settings(path)
    assert got.source == "atelier"
    assert got.job == FULL_JOB
    with Image.open(path) as im:  # still an ordinary PNG with the pixels intact
        assert im.size == (32, 24)
        assert im.text["parameters"] == format_parameters(FULL_JOB)


def test_every_png_records_the_atelier_version(tmp_path: Path) -> None:
    from engine import __version__

    path = tmp_path / "v.png"
    save_png(Image.new("RGB", (8, 8)), path, Job(prompt="x"))
    assert a1111_parse(read_png_text(path)["parameters"])["Version"] == f"atelier {__version__}"


def test_parameters_line_parses_with_a1111_syntax() -> None:
    job = Job(
        prompt="a cat, sitting: on a mat", negative_prompt="blurry, lowres", seed=1234,
        steps=20, sampler="dpmpp_2m", schedule="karras", cfg_scale=7.0, width=512, height=768,
        model=ModelRef(name="my, model"), init_image="x.png", denoise=0.5,
    )
    text = format_parameters(job)
    lines = text.split("\n")
    assert lines[0] == "a cat, sitting: on a mat"
    assert lines[1] == "Negative prompt: blurry, lowres"
    assert lines[2].startswith(
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
        'Size: 512x768, Model: "my, model", Denoising strength: 0.5'
    )
    parsed = a1111_parse(text)
    assert parsed["Prompt"] == job.prompt
    assert parsed["Negative prompt"] == job.negative_prompt
    assert parsed["Steps"] == "20" and parsed["Seed"] == "1234" and parsed["Size"] == "512x768"
    assert parsed["Sampler"] == "DPM++ 2M" and parsed["Schedule type"] == "Karras"
    assert parsed["Model"] == "my, model"
    assert parsed["Denoising strength"] == "0.5"


def test_full_job_parameters_parse_with_a1111_syntax_and_map_back() -> None:
    text = format_parameters(FULL_JOB)
    parsed = a1111_parse(text)
    assert parsed["Prompt"].startswith(FULL_JOB.prompt)
    assert "<lora:ink:0.6>" in parsed["Prompt"]
    assert parsed["ControlNet 0"].startswith("Module: canny, Model: cn-canny, Weight: 0.8")
    assert parsed["Variation seed"] == "99" and parsed["Clip skip"] == "2" and parsed["Autoguidance"] == "1.5"
    assert parsed["ADetailer prompt 2nd"] == "a hand"
    ours = parse_parameters(text)
    assert ours.warnings == []
    job = ours.job
    assert (job.prompt, job.negative_prompt, job.seed, job.steps) == (
        FULL_JOB.prompt, FULL_JOB.negative_prompt, FULL_JOB.seed, FULL_JOB.steps)
    assert (job.sampler, job.schedule, job.cfg_scale, job.width, job.height) == (
        "dpmpp_2m_sde", "exponential", 6.5, 768, 1024)
    assert (job.variation_seed, job.variation_strength, job.clip_skip, job.denoise) == (99, 0.25, 2, 0.55)
    assert (job.guidance_rescale, job.autoguidance) == (0.7, 1.5)
    assert job.inpaint == Inpaint(mask="unknown", blur=8, only_masked=True, padding=48)
    assert [(c.type, c.weight, c.start, c.end) for c in job.controls] == [
        ("canny", 0.8, 0.1, 0.9), ("scribble", 1.0, 0.0, 1.0)]
    assert job.loras == (LoraRef("ink", 0.6), LoraRef("style", -0.5))
    assert job.upscale == Upscale(upscaler="builtin-sr-x4", scale=4.0, denoise=0.3, steps=12)
    assert job.detail == FULL_JOB.detail


A1111_TXT2IMG = """masterpiece, 1girl, (smile:1.1) <lora:add_detail:0.5>
Negative prompt: (worst quality:1.4), lowres
Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3520591718, Size: 512x768, \
Model hash: 7f96a1a9ca, Model: anything-v5, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, \
Denoising strength: 0.45, Clip skip: 2, Hires upscale: 2, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+ Anime6B, \
Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1"""

A1111_OLD = """portrait of a knight
Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1, Size: 512x512, Model hash: abc, Model: v1-5"""

A1111_IMG2IMG = """a photo of a woman
Steps: 30, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5.5, Seed: 42, Size: 768x512, Model: sdxl, \
Denoising strength: 0.6, Mask blur: 4, Inpaint area: Only masked, Masked area padding: 32, \
ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.75, Resize Mode: Crop and Resize, \
Low Vram: False, Processor Res: 512, Threshold A: 100, Threshold B: 200, Guidance Start: 0.1, Guidance End: 0.8, \
Pixel Perfect: False, Control Mode: Balanced", ADetailer model: face_yolov8n.pt, ADetailer confidence: 0.3, \
ADetailer dilate erode: 4, ADetailer mask blur: 4, ADetailer denoising strength: 0.4, ADetailer inpaint padding: 32, \
ADetailer version: 24.1.2, Version: v1.7.0"""


def test_a1111_txt2img_with_hires_maps_to_our_settings() -> None:
    got = parse_parameters(A1111_TXT2IMG)
    job = got.job
    assert job.prompt == "masterpiece, 1girl, (smile:1.1)"
    assert job.negative_prompt == "(worst quality:1.4), lowres"
    assert (job.steps, job.sampler, job.schedule, job.cfg_scale, job.seed) == (25, "dpmpp_2m", "karras", 7.0, 3520591718)
    assert (job.width, job.height, job.clip_skip) == (512, 768, 2)
    assert job.model == ModelRef(name="anything-v5", vae="vae-ft-mse-840000-ema-pruned.safetensors")
    assert job.init_image is None and job.denoise == 1.0  # hires owns "Denoising strength" here
    assert job.upscale == Upscale(upscaler="R-ESRGAN 4x+ Anime6B", scale=2.0, denoise=0.45, steps=15)
    assert job.loras == (LoraRef("add_detail", 0.5),)
    assert got.unmapped == {"Model hash": "7f96a1a9ca", "VAE hash": "735e4c3a44",
                            "Lora hashes": "add_detail: 7c6bad76eb54"}
    assert got.warnings == []


def test_a1111_old_combined_sampler_name_maps_schedule() -> None:
    job = parse_parameters(A1111_OLD).job
    assert (job.sampler, job.schedule, job.cfg_scale, job.model.name) == ("dpmpp_2m", "karras", 7.5, "v1-5")


def test_a1111_img2img_inpaint_controlnet_adetailer() -> None:
    got = parse_parameters(A1111_IMG2IMG)
    job = got.job
    assert (job.sampler, job.schedule, job.denoise, job.init_image) == ("euler_ancestral", "normal", 0.6, "unknown")
    assert job.inpaint == Inpaint(mask="unknown", blur=4, only_masked=True, padding=32)
    (unit,) = job.controls
    assert (unit.type, unit.model, unit.preprocessor) == ("canny", "control_v11p_sd15_canny [d14c016b]", "canny")
    assert (unit.weight, unit.start, unit.end) == (0.75, 0.1, 0.8)
    # ADetailer's face model maps onto our face detector; its 4 px kernel grows a mask by 2 px; without
    # its "use inpaint width/height" it repaints at the image's size.
    assert job.detail == (DetailPass(detector="mediapipe-face", min_score=0.3, dilation=2, mask_blur=4, denoise=0.4,
                                     padding=32, working_size=768),)


@pytest.mark.parametrize(("model", "detector"), [
    ("face_yolov8n.pt", "mediapipe-face"), ("mediapipe_face_full", "mediapipe-face"),
    ("hand_yolov8s.pt", "mediapipe-hands"), ("person_yolov8n-seg.pt", "mediapipe-person"),
    ("shapes", "shapes"), ("haar-face", "haar-face"), ("my/faces.onnx", "my/faces.onnx"),
])
def test_adetailer_models_map_onto_our_detectors(model: str, detector: str) -> None:
    got = parse_parameters(f"a cat\nSteps: 20, Seed: 1, Size: 256x128, ADetailer model: {model}, "
                           "ADetailer use inpaint width/height: True, ADetailer inpaint width: 384, "
                           "ADetailer inpaint height: 512")
    assert [(d.detector, d.working_size) for d in got.job.detail] == [(detector, 512)] and got.warnings == []


def test_an_adetailer_model_of_unknown_kind_is_kept_with_a_warning() -> None:
    got = parse_parameters("a cat\nSteps: 20, Seed: 1, ADetailer model: deepfashion2_yolov8s-seg.pt, "
                           "ADetailer dilate erode: -4")
    assert (got.job.detail[0].detector, got.job.detail[0].dilation) == ("deepfashion2_yolov8s-seg.pt", 0)
    assert "no detector here finds its kind" in " ".join(got.warnings) and "eroding" in " ".join(got.warnings)


def test_foreign_values_we_cannot_use_become_warnings() -> None:
    text = "a dog\nSteps: many, Sampler: Fancy Sampler 9000, CFG scale: 7, Seed: 5, Size: 513x512, Foo: bar"
    got = parse_parameters(text)
    assert got.job.prompt == "a dog" and got.job.seed == 5
    assert got.job.steps == Job().steps and got.job.sampler == Job().sampler and got.job.width == 512
    joined = " | ".join(got.warnings)
    assert "Steps" in joined and "Fancy Sampler 9000" in joined and "width" in joined
    assert got.unmapped == {"Foo": "bar"}


def test_parameters_parser_survives_random_text() -> None:
    rng = random.Random(1234)
    alphabet = 'abc ,:"\\\n\t0123456789xX-<>()[]{}:é✓'
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        result = parse_parameters(text)
        assert isinstance(result.job, Job)


# --- hostile and broken files --------------------------------------------------------------


def _png_with_chunks(*chunks: tuple[bytes, bytes]) -> bytes:
    buf = io.BytesIO()
    _image().save(buf, format="PNG")
    data = buf.getvalue()
    iend = data.rindex(b"IEND") - 4
    extra = b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in chunks
    )
    return data[:iend] + extra + data[iend:]


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "img.png"
    path.write_bytes(data)
    return path


def test_image_without_settings(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="no generation settings"):
        read_image_settings(_write(tmp_path, _png_with_chunks()))


def test_not_a_png_and_missing_file(tmp_path: Path) -> None:
    buf = io.BytesIO()
    _image().save(buf, format="JPEG")
    with pytest.raises(MetadataError, match="not a PNG"):
        read_image_settings(_write(tmp_path, buf.getvalue()))
    with pytest.raises(MetadataError, match="no such file"):
        read_image_settings(tmp_path / "nope.png")


def test_truncated_file(tmp_path: Path) -> None:
    data = _png_with_chunks((b"tEXt", b"parameters\x00" + b"x" * 1000))
    cut = data.index(b"tEXt") + 200
    with pytest.raises(MetadataError, match="truncated"):
        read_image_settings(_write(tmp_path, data[:cut]))


def test_chunk_length_beyond_file(tmp_path: Path) -> None:
    data = _png_with_chunks((b"tEXt", b"parameters\x00abc"))
    at = data.index(b"tEXt") - 4
    data = data[:at] + struct.pack(">I", 0xFFFFFFF0) + data[at + 4:]
    with pytest.raises(MetadataError, match="truncated"):
        read_image_settings(_write(tmp_path, data))


def test_crc_mismatch(tmp_path: Path) -> None:
    data = bytearray(_png_with_chunks((b"tEXt", b"parameters\x00hello")))
    data[data.index(b"hello")] = ord("j")
    with pytest.raises(MetadataError, match="CRC"):
        read_image_settings(_write(tmp_path, bytes(data)))


def test_huge_text_chunk(tmp_path: Path) -> None:
    body = b"parameters\x00" + b"a" * (MAX_TEXT_BYTES + 10)
    with pytest.raises(MetadataError, match="too large"):
        read_image_settings(_write(tmp_path, _png_with_chunks((b"tEXt", body))))


def test_compression_bomb(tmp_path: Path) -> None:
    bomb = zlib.compress(b"\x00" * (64 * 1024 * 1024), 9)
    assert len(bomb) < 200_000
    with pytest.raises(MetadataError, match="larger than"):
        read_image_settings(_write(tmp_path, _png_with_chunks((b"zTXt", b"parameters\x00\x00" + bomb))))


@pytest.mark.parametrize(
    ("chunk", "fragment"),
    [
        ((b"tEXt", b"no-keyword-separator"), "keyword"),
        ((b"iTXt", b"atelier\x00\x00\x00\x00\x00\xff\xfe{}"), "UTF-8"),
        ((b"iTXt", b"atelier\x00\x01"), "truncated header"),
        ((b"zTXt", b"parameters\x00\x00not zlib"), "corrupt compressed"),
        ((b"iTXt", b"atelier\x00\x00\x00\x00\x00{not json"), "not valid JSON"),
        ((b"iTXt", b'atelier\x00\x00\x00\x00\x00{"version": 1, "steps": "many"}'), "steps: expected an integer"),
        ((b"iTXt", b'atelier\x00\x00\x00\x00\x00{"version": 1, "controls": [{"type": 5}]}'), "controls[0].type"),
        ((b"iTXt", b"atelier\x00\x00\x00\x00\x00" + b"[" * 50_000), "not valid JSON|nested too deeply"),
        ((b"iTXt", b"atelier\x00\x00\x00\x00\x00[1, 2]"), "JSON object"),
    ],
    ids=["keyword", "utf8", "header", "zlib", "json", "type", "nested-type", "deep", "list"],
)
def test_malformed_chunks_give_clear_errors(tmp_path: Path, chunk: tuple[bytes, bytes], fragment: str) -> None:
    with pytest.raises(MetadataError, match=fragment.replace("[", r"\[").replace("]", r"\]")) as info:
        read_image_settings(_write(tmp_path, _png_with_chunks(chunk)))
    assert str(tmp_path / "img.png") in str(info.value)


def test_compressed_itxt_and_ztxt_are_read(tmp_path: Path) -> None:
    body = json.dumps({"version": 1, "prompt": "ünïcødé"}).encode()
    itxt = b"atelier\x00\x01\x00\x00\x00" + zlib.compress(body)
    ztxt = b"parameters\x00\x00" + zlib.compress(b"hello\nSteps: 3, Seed: 4, CFG scale: 2")
    path = _write(tmp_path, _png_with_chunks((b"iTXt", itxt), (b"zTXt", ztxt)))
    texts = read_png_text(path)
    assert texts["parameters"].startswith("hello")
    assert read_image_settings(path).job == Job(prompt="ünïcødé")


def test_metadata_texts_hold_both_chunks() -> None:
    texts = metadata_texts(Job(prompt="x", controls=(ControlUnit("canny", "layer:1"),)))
    assert set(texts) == {"parameters", "atelier"}
    assert json.loads(texts["atelier"])["controls"][0]["type"] == "canny"
