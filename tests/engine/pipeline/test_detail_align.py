"""Aligned face detail (DetailPass.align_faces) on a real photo, skimage's astronaut, repainted by the
built-in 128 px shapes model (the geometry is under test, not the faces it draws): pixels outside the
pasted footprint never change, denoise 0 is exactly the VQGAN round trip of the aligned crop pasted back,
denoise > 0 repaints the face, and faces without landmarks, blank images and non-face detectors say so."""

from __future__ import annotations

import numpy as np
import pytest

from engine.detect import Detection, DetectorError
from engine.face import align_face, find_faces, pasted_alpha
from engine.face.similarity import apply_affine
from engine.pipeline import Engine, builtin_model
from engine.pipeline.decode import decode_image
from engine.pipeline.detail import DetailRunner, open_detectors
from engine.pipeline.detail_align import ALIGN_CONTEXT, FEATHER, align_detail_face, face_landmarks, paste_face
from engine.pipeline.img2img import encode_init
from engine.pipeline.jobs import JobPixels, JobRun
from engine.pipeline.progress import GeneratedImage
from engine.settings import DetailPass, Job, ModelRef, job_from_dict, job_to_dict

ALIGNED = DetailPass(detector="mediapipe-face", denoise=0.0, working_size=128, align_faces=True)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # (512, 512, 3) uint8


@pytest.fixture(scope="module")
def base_job(shapes_engine: Engine) -> Job:
    folder = builtin_model()
    assert folder is not None
    _, ref = shapes_engine.load(ModelRef(path=str(folder)))
    return Job(model=ref, prompt="a face", seed=1, steps=8, sampler="euler", schedule="flow_shift", cfg_scale=4.0,
               width=512, height=512)


class FaceEverywhere:
    """A face detector that boxes the same place on any image: the fallback when no face is there."""

    name, labels, keypoint_names, max_side = "fake-face", ("face",), (), 4096

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        return [Detection((24.0, 24.0, 104.0, 104.0), 0.9, "face")]

    def close(self) -> None:
        pass


def _detail(engine: Engine, job: Job, image: np.ndarray, settings: DetailPass,
            detector: object = None) -> GeneratedImage:
    """One image through the job's detail pass, as run_job's `finish` runs it."""
    job = job.replace(width=image.shape[1], height=image.shape[0], detail=(settings,))
    model, _ = engine.load(job.model)
    run = JobRun(model, job, JobPixels(), engine.setup.device, engine.setup.dtype)
    if detector is not None:
        return DetailRunner(run, [detector])([GeneratedImage(image, job)], 0)[0]  # type: ignore[list-item]
    with open_detectors(job.detail) as detectors:
        return DetailRunner(run, detectors)([GeneratedImage(image, job)], 0)[0]


def _aligned(astronaut: np.ndarray):  # type: ignore[no-untyped-def]
    from engine.detect import detect

    found = detect(astronaut, "mediapipe-face", ALIGNED.min_score)
    assert len(found) == 1
    face = face_landmarks(astronaut, found[0])
    assert face is not None
    return align_detail_face(astronaut, face, 128)


def test_context_zooms_out_about_the_crop_centre(astronaut: np.ndarray) -> None:
    face = find_faces(astronaut, source="mediapipe")[0]
    plain, wide = align_face(astronaut, face, 128), align_face(astronaut, face, 128, context=2.0)
    centre = np.array([63.5, 63.5])
    assert np.allclose(wide.landmarks - centre, (plain.landmarks - centre) / 2.0)
    assert np.allclose(apply_affine(wide.inverse, wide.landmarks), face.points)
    with pytest.raises(ValueError, match="context"):
        align_face(astronaut, face, 128, context=0.0)


def test_landmarks_found_in_the_box_match_the_whole_photo(astronaut: np.ndarray) -> None:
    aligned = _aligned(astronaut)
    whole = find_faces(astronaut, source="mediapipe")[0]
    assert np.abs(aligned.face.points - whole.points).max() < 0.5  # the same eyes, nose and mouth: 0.20 px here
    eyes = aligned.landmarks[:2].mean(axis=0)
    assert abs(aligned.landmarks[0, 1] - aligned.landmarks[1, 1]) < 0.2  # upright: the eyes level
    assert abs(eyes[0] - 63.5) < 1.0 and 50 < eyes[1] < 64  # centred, a little above the middle
    assert ALIGN_CONTEXT > 1.0


def test_denoise_zero_is_the_vae_round_trip_of_the_aligned_crop_inside_the_footprint_only(
        shapes_engine: Engine, base_job: Job, astronaut: np.ndarray) -> None:
    result = _detail(shapes_engine, base_job, astronaut, ALIGNED)
    assert result.notes == ()
    aligned = _aligned(astronaut)
    footprint = pasted_alpha(aligned, FEATHER) > 0
    assert np.array_equal(result.image[~footprint], astronaut[~footprint])
    model, _ = shapes_engine.load(base_job.model)
    expected = paste_face(astronaut, aligned, decode_image(model.vae, encode_init(model.vae, aligned.crop, 1)))
    assert np.array_equal(result.image, expected)
    inside = np.abs(result.image.astype(int) - astronaut.astype(int))[footprint]
    # The shapes VQGAN's round trip of a real face at 128 px: mean 15.8, max 245 on the astronaut.
    assert inside.mean() < 20 and footprint.sum() < 0.25 * footprint.size


def test_denoise_repaints_the_face_and_nothing_outside_the_footprint(shapes_engine: Engine, base_job: Job,
                                                                     astronaut: np.ndarray) -> None:
    settings = DetailPass(**{**ALIGNED.__dict__, "denoise": 0.6})
    result = _detail(shapes_engine, base_job, astronaut, settings)
    alpha = pasted_alpha(_aligned(astronaut), FEATHER)
    assert np.array_equal(result.image[alpha == 0], astronaut[alpha == 0])
    change = np.abs(result.image.astype(int) - astronaut.astype(int)).max(axis=-1)
    assert change[alpha >= 1].mean() > 10 and (change[alpha >= 1] > 0).mean() > 0.9
    assert np.array_equal(_detail(shapes_engine, base_job, astronaut, settings).image, result.image)


def test_a_blank_image_says_nothing_was_found(shapes_engine: Engine, base_job: Job) -> None:
    blank = np.full((128, 128, 3), 200, np.uint8)
    result = _detail(shapes_engine, base_job, blank, ALIGNED)
    assert np.array_equal(result.image, blank)
    assert len(result.notes) == 1 and "nothing found" in result.notes[0]


def test_a_face_without_landmarks_falls_back_to_the_axis_aligned_crop(shapes_engine: Engine,
                                                                      base_job: Job) -> None:
    blank = np.full((128, 128, 3), 200, np.uint8)
    settings = DetailPass(**{**ALIGNED.__dict__, "padding": 4, "dilation": 0, "mask_blur": 0})
    result = _detail(shapes_engine, base_job, blank, settings, FaceEverywhere())
    assert len(result.notes) == 1 and "no landmarks found for 1 face(s)" in result.notes[0]
    changed = np.abs(result.image.astype(int) - blank.astype(int)).max(axis=-1) > 0
    ys, xs = np.nonzero(changed)
    assert changed.any() and xs.min() >= 24 and xs.max() < 104 and ys.min() >= 24 and ys.max() < 104


def test_aligning_needs_a_face_detector() -> None:
    with pytest.raises(DetectorError, match="align_faces aligns faces.*'shapes'"):
        with open_detectors((DetailPass(detector="shapes", align_faces=True),)):
            pass


def test_older_settings_without_the_field_load_with_it_off() -> None:
    data = job_to_dict(Job(detail=(DetailPass(align_faces=True),)))
    assert job_from_dict(data).detail[0].align_faces
    del data["detail"][0]["align_faces"]
    assert job_from_dict(data).detail == (DetailPass(),)
