"""Detail passes: the crop and mask geometry, and the pass itself on the built-in shapes model and its
detector (CPU, a few steps): pixels outside the masks never change, denoise 0 is only the VAE round
trip, nothing found changes nothing, seeds, cancel, progress, and the settings through PNG metadata
and `atelier render --from`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.detect import DETECTORS, Detection, DetectorError, detect
from engine.detect.registry import DEFAULT_DETECTOR
from engine.metadata import metadata_texts, parse_parameters, read_image_settings
from engine.models import ModelStore
from engine.paths import HOME_ENV
from engine.pipeline import Cancelled, CancelToken, Engine, Progress
from engine.pipeline.decode import decode_image
from engine.pipeline.detail import (
    DetailCrop,
    detail_crop,
    detail_job,
    detail_mask,
    detail_seed,
    detection_shape,
    work_size,
)
from engine.pipeline.img2img import encode_init
from engine.pipeline.inpaint import CropRegion
from engine.pipeline.jobs import JobPixels
from engine.settings import DetailPass, Job
from engine.settings.job import MAX_SEED
from studio.cli import main

from tests.engine.pipeline.conftest import SHAPES_PROMPT as PROMPT
SHAPES = DetailPass(detector="shapes", denoise=0.6, min_score=0.25, padding=8, dilation=2, mask_blur=3,
                    working_size=128)


# ---- geometry, no model --------------------------------------------------------------------

def _box(x0: float, y0: float, x1: float, y1: float, label: str = "star",
         keypoints: Sequence[tuple[float, float]] = ()) -> Detection:
    return Detection((x0, y0, x1, y1), 0.9, label, tuple(keypoints))


def test_the_shape_is_every_pixel_the_box_touches_clipped_to_the_image() -> None:
    shape = detection_shape(_box(10.2, 20.7, 30.1, 40.0), 64, 48)
    ys, xs = np.nonzero(shape)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 30, 20, 39) and shape.max() == 255
    assert shape.sum() == 255 * 21 * 20
    edge = detection_shape(_box(-5, 40, 10, 60), 64, 48)
    assert np.array_equal(np.argwhere(edge)[[0, -1]], [[40, 0], [47, 9]])
    assert detection_shape(_box(70, 10, 80, 20), 64, 48) is None


def test_dilation_grows_the_mask_by_that_many_pixels_and_blur_feathers_it() -> None:
    shape = detection_shape(_box(20, 20, 50, 50), 80, 80)
    assert shape is not None
    hard = detail_mask(shape, 3, 0)
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert np.array_equal(np.nonzero(hard[35])[0], np.arange(17, 53))  # columns 20..49 grown by 3 each side
    assert hard[16, 16] == 0.0 and hard[17, 35] == 1.0  # a disc, not a square: the corners are rounded
    soft = detail_mask(shape, 3, 4)
    assert soft[35, 35] == 1.0 and soft.max() == 1.0
    assert 0.2 < soft[35, 17] < 0.8 and 0.2 < soft[35, 52] < 0.8  # the hard edge is half-masked now
    left = soft[35, :36]
    assert np.all(np.diff(left) >= 0)  # rises towards the box, no ring artefacts
    xs = np.nonzero(soft[35])[0]
    assert xs.min() >= 17 - 3 * 4 - 2 and xs.max() <= 52 + 3 * 4 + 2  # the feather's reach is bounded
    with pytest.raises(ValueError, match="dilation"):
        detail_mask(shape, -1, 0)


def test_the_crop_holds_the_feathered_mask_plus_padding_square_and_clipped_at_borders() -> None:
    settings = DetailPass(detector="shapes", padding=6, dilation=2, mask_blur=2, working_size=124)
    crop = detail_crop(_box(50, 40, 60, 70), (128, 160), settings, 8)
    assert crop is not None
    ys, xs = np.nonzero(crop.mask)
    r = crop.region
    assert (r.left, r.top) <= (xs.min() - 6, ys.min() - 6) and r.right >= xs.max() + 1 + 6
    assert r.width == r.height and r.bottom == ys.max() + 1 + 6  # grown to a square around the tall box
    assert (crop.width, crop.height) == (128, 128)  # 124 rounded to a multiple of 8
    corner = detail_crop(_box(0, 0, 12, 30), (128, 160), settings, 8)
    assert corner is not None
    assert (corner.region.left, corner.region.top) == (0, 0) and corner.region.width == corner.region.height
    wide = detail_crop(_box(2, 100, 150, 120), (128, 160), settings, 8)  # taller than the image allows
    assert wide is not None and wide.region.width == 160 and wide.region.height < 160
    assert wide.region.bottom <= 128 and (wide.width, wide.height) == (128, 96)  # 124 x 124 * 128 / 160 = 99


def test_working_size_keeps_the_aspect_and_rounds_to_the_model_multiple() -> None:
    assert work_size(CropRegion(0, 0, 30, 40), 128, 8) == (96, 128)
    assert work_size(CropRegion(0, 0, 300, 20), 512, 8) == (512, 32)
    assert work_size(CropRegion(0, 0, 300, 2), 512, 16) == (512, 16)  # at least one multiple
    with pytest.raises(ValueError, match="cannot hold"):
        work_size(CropRegion(0, 0, 10, 10), 8, 16)


def test_a_face_with_eyes_gets_an_ellipse_turned_by_the_eye_line() -> None:
    angle = math.radians(30)
    dx, dy = 10 * math.cos(angle), 10 * math.sin(angle)
    eyes = [(40 - dx, 40 - dy), (40 + dx, 40 + dy)]
    face = detection_shape(_box(20, 25, 60, 55, "face", eyes), 80, 80)
    assert face is not None
    ys, xs = np.nonzero(face)
    # The ellipse inscribed in the 40 x 30 box (its outline pixels included: half a pixel more each way).
    assert xs.size == pytest.approx(math.pi * 20.5 * 15.5, rel=0.02)
    cov = np.cov(np.stack([xs, ys]).astype(float))
    major = np.degrees(np.arctan2(*np.linalg.eigh(cov)[1][:, -1][::-1]))
    assert major % 180 == pytest.approx(30, abs=3)
    no_eyes = detection_shape(_box(20, 25, 60, 55, "face"), 80, 80)
    assert no_eyes is not None and np.count_nonzero(no_eyes) == 40 * 30


def test_seeds_and_prompts_of_a_detection() -> None:
    assert detail_seed(10, 2) == 12 and detail_seed(MAX_SEED, 1) == 0
    job = Job(prompt="scene", negative_prompt="blurry", width=256, height=128, batch_size=4, detail=(SHAPES,))
    sub = detail_job(job, SHAPES, 5, 96, 128)
    assert (sub.prompt, sub.negative_prompt, sub.seed, sub.width, sub.height) == ("scene", "blurry", 5, 96, 128)
    assert (sub.denoise, sub.batch_size, sub.detail, sub.controls) == (0.6, 1, (), ())
    own = detail_job(job, DetailPass(prompt="a star", negative_prompt="dark"), 5, 96, 128)
    assert (own.prompt, own.negative_prompt) == ("a star", "dark")


def test_the_default_detector_is_a_registered_one() -> None:
    assert DetailPass().detector == DEFAULT_DETECTOR and DEFAULT_DETECTOR in DETECTORS


# ---- the pass on the built-in model ----------------------------------------------------------

def _masks(image: np.ndarray, settings: DetailPass) -> tuple[list[DetailCrop], np.ndarray]:
    """The detections a pass finds on `image`, their crops and the union of their masks' support."""
    found = detect(image, settings.detector, settings.min_score)
    crops = [crop for d in found if (crop := detail_crop(d, image.shape[:2], settings, 8)) is not None]
    touched = np.zeros(image.shape[:2], bool)
    for crop in crops:
        touched |= crop.mask > 0
    return crops, touched


def test_denoise_zero_is_only_the_vae_round_trip_inside_the_masks(shapes_engine: Engine, base_job: Job,
                                                                   base_image: np.ndarray) -> None:
    settings = DetailPass(**{**SHAPES.__dict__, "denoise": 0.0})
    result = shapes_engine.run(base_job.replace(detail=(settings,)))[0]
    crops, touched = _masks(base_image, settings)
    assert len(crops) >= 2 and result.notes == ()
    assert np.array_equal(result.image[~touched], base_image[~touched])
    model, _ = shapes_engine.load(base_job.model)
    expected = base_image
    for crop in crops:  # each detection in turn: encode the crop, decode it, paste it back
        pixels = JobPixels(init=expected, mask=crop.mask, region=crop.region)
        work = pixels.work_init(crop.width, crop.height)
        expected = pixels.finish(decode_image(model.vae, encode_init(model.vae, work, 1)))
    assert np.array_equal(result.image, expected)
    inside = np.abs(result.image.astype(int) - base_image.astype(int))[touched]
    assert inside.mean() < 10  # the VQGAN round trip: mean 5.3, max 103 (on a soft shape's edge) here


def test_denoise_repaints_inside_the_masks_only_and_is_deterministic(shapes_engine: Engine, base_job: Job,
                                                                      base_image: np.ndarray) -> None:
    job = base_job.replace(detail=(SHAPES,))
    first = shapes_engine.run(job)[0]
    crops, touched = _masks(base_image, SHAPES)
    assert np.array_equal(first.image[~touched], base_image[~touched])
    core = np.zeros_like(touched)
    for crop in crops:
        core |= crop.mask >= 1.0
    change = np.abs(first.image.astype(int) - base_image.astype(int)).max(axis=-1)
    assert change[core].mean() > 3 and (change[core] > 0).mean() > 0.5
    assert np.array_equal(shapes_engine.run(job)[0].image, first.image)
    assert first.job.detail == (SHAPES,) and first.job.seed == base_job.seed
    reseeded = shapes_engine.run(job.replace(seed=2))[0].image
    assert not np.array_equal(reseeded, first.image)


def test_a_detector_that_finds_nothing_leaves_the_image_and_says_so(shapes_engine: Engine, base_job: Job,
                                                                     base_image: np.ndarray) -> None:
    settings = DetailPass(detector="shapes", min_score=1.0, denoise=1.0, working_size=128)
    result = shapes_engine.run(base_job.replace(detail=(settings,)))[0]
    assert np.array_equal(result.image, base_image)
    assert len(result.notes) == 1 and "nothing found" in result.notes[0] and "shapes" in result.notes[0]


def test_progress_covers_the_detail_phase_and_cancel_lands_in_it(shapes_engine: Engine, base_job: Job) -> None:
    job = base_job.replace(detail=(SHAPES,), batch_size=2)
    seen: list[Progress] = []
    shapes_engine.run(job, progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    detail = [p for p in seen if p.phase == 1]
    assert detail and all(p.phases == 2 and p.label.startswith("detail 1/1 (shapes") for p in detail)
    assert all(p.preview is not None and p.preview.shape == (128, 128, 3) for p in detail)
    assert detail[0].text.startswith("detail 1/1 (shapes 1/") and detail[0].text.endswith("step 1/4")
    token = CancelToken()
    reports: list[Progress] = []

    def cancel_in_detail(p: Progress) -> None:
        reports.append(p)
        if p.phase == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        shapes_engine.run(job, progress=cancel_in_detail, cancel=token)
    assert [(p.phase, p.step) for p in reports if p.phase == 1] == [(1, 1)]  # stopped within one step


def test_an_unknown_detector_fails_before_the_model_loads(base_job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(device="cpu", store=ModelStore.with_roots([]))
    monkeypatch.setattr(engine, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(DetectorError, match="unknown detector 'eyes'"):
        engine.run(base_job.replace(detail=(DetailPass(detector="eyes"),)))


def test_render_records_the_pass_and_render_from_repeats_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))  # no user models: the built-in one renders
    out, again = tmp_path / "out.png", tmp_path / "again.png"
    assert main(["render", "--prompt", PROMPT, "--steps", "8", "--seed", "1", "--device", "cpu",
                 "--detail", "shapes:0.6", "--detail-prompt", "a large red star", "-o", str(out)]) == 0
    assert "detail 1/1 (shapes" in capsys.readouterr().err
    settings = read_image_settings(out)
    assert settings.job.detail == (DetailPass("shapes", "a large red star", denoise=0.6, working_size=128),)
    parameters = metadata_texts(settings.job)["parameters"]
    assert "ADetailer model: shapes" in parameters
    assert parse_parameters(parameters).job.detail == settings.job.detail  # A1111-style text maps back too
    assert main(["render", "--from", str(out), "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(out)))
