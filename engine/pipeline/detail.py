"""Detail passes (ADetailer-style, github.com/Bing-su/adetailer): after a pass's images are decoded,
each detection of the chosen kind is cropped with padding, repainted by img2img at a working size with
its own prompt and denoise strength, and pasted back through a dilated, feathered mask.

Every detection runs through the job loop's own "only masked" inpaint path (`run_job` on a JobPixels
with the detection's mask and crop) on the model already loaded, LoRAs included. ControlNets are
left out: their maps describe the whole image, not the crop.

Faces are cropped axis-aligned by default. A diffusion model learnt from unaligned pictures, so a tilted
face is in its distribution; the axis-aligned crop keeps `padding`, `dilation` and `mask_blur` meaningful,
leaves every pixel outside the mask exactly as it was and resamples the face only once. The tilt is
followed by the mask instead: a face with eye keypoints gets the ellipse inscribed in its box, turned by
the eye line. With `align_faces` a face is repainted upright on an aligned crop instead
(engine.pipeline.detail_align), for models that draw upright faces at one scale best; a face whose
landmarks are not found takes the axis-aligned path, with a note.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.detect.boxes import Detection
from engine.detect.errors import DetectorError
from engine.detect.registry import Detector, open_detector, run_detector
from engine.face.align import AlignedFace
from engine.face.landmarks import FiveLandmarks
from engine.pipeline.detail_align import align_detail_face, face_landmarks, paste_face
from engine.pipeline.inpaint import CropRegion, blurred_mask, crop_region, paste_back
from engine.pipeline.jobs import JobPixels, JobRun, ProgressFn, detail_phase, job_phases, run_job, size_multiple
from engine.pipeline.progress import GeneratedImage, Progress
from engine.sampling import CancelToken
from engine.settings import DetailPass, Job
from engine.settings.job import MAX_SEED, SIZE_MULTIPLE

FACE_LABEL = "face"  # detections with this label and eye keypoints get the face-shaped mask


@dataclass(frozen=True)
class DetailCrop:
    """Where one detection is repainted: the feathered mask over the whole image, the crop around
    it, and the size the crop is sampled at."""

    mask: np.ndarray  # (H, W) float32 in [0, 1]
    region: CropRegion
    width: int
    height: int


def _box_pixels(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """The pixels a box touches, [x0, x1) x [y0, y1), clipped to the image; None if it misses it."""
    x0, y0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
    x1, y1 = min(max(math.ceil(box[2]), x0 + 1), width), min(max(math.ceil(box[3]), y0 + 1), height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _eye_angle(detection: Detection) -> float | None:
    """The tilt of a face's eye line in degrees (mod 180), or None when it is no face with eyes."""
    if detection.label != FACE_LABEL or len(detection.keypoints) < 2:
        return None
    (ax, ay), (bx, by) = detection.keypoints[:2]  # mediapipe and YOLO face models: the eyes first
    if not all(math.isfinite(v) for v in (ax, ay, bx, by)) or (ax, ay) == (bx, by):
        return None
    return math.degrees(math.atan2(by - ay, bx - ax)) % 180.0


def detection_shape(detection: Detection, width: int, height: int) -> np.ndarray | None:
    """(height, width) uint8, 255 inside the detection: its box, or for a face with eye keypoints the
    ellipse inscribed in the box turned by the eye line. None when the box lies outside the image."""
    pixels = _box_pixels(detection.box, width, height)
    if pixels is None:
        return None
    shape = np.zeros((height, width), np.uint8)
    angle = _eye_angle(detection)
    if angle is None:
        x0, y0, x1, y1 = pixels
        shape[y0:y1, x0:x1] = 255
        return shape
    bx0, by0, bx1, by1 = detection.box
    angle = angle - 180.0 if angle > 90.0 else angle  # the nearer upright: the box's sides stay the axes
    # cv2 draws in pixel-centre coordinates with 4 fractional bits; a box edge at x is centre x - 0.5.
    centre = (round(((bx0 + bx1) / 2 - 0.5) * 16), round(((by0 + by1) / 2 - 0.5) * 16))
    axes = (max(round((bx1 - bx0) / 2 * 16), 1), max(round((by1 - by0) / 2 * 16), 1))
    cv2.ellipse(shape, centre, axes, angle, 0.0, 360.0, 255, thickness=-1, lineType=cv2.LINE_8, shift=4)
    if not shape.any():  # an ellipse thinner than a pixel: fall back to the pixels its box touches
        x0, y0, x1, y1 = pixels
        shape[y0:y1, x0:x1] = 255
    return shape


def detail_mask(shape: np.ndarray, dilation: int, blur: int) -> np.ndarray:
    """A detection's (H, W) uint8 shape grown by `dilation` px (a disc) and feathered by a Gaussian of
    `blur` px (the inpaint mask blur) -> (H, W) float32 in [0, 1]."""
    if dilation < 0 or blur < 0:
        raise ValueError(f"dilation and blur must be >= 0 px, got {dilation} and {blur}")
    if dilation > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1, 2 * dilation + 1))
        shape = cv2.dilate(shape, disc)
    return blurred_mask(shape, shape.shape[1], shape.shape[0], blur)


def work_size(region: CropRegion, size: int, multiple: int) -> tuple[int, int]:
    """(width, height) a crop is sampled at: its longer side `size`, its aspect kept, both rounded to
    `multiple` (at least one multiple)."""
    if size < multiple or multiple < 1:
        raise ValueError(f"a working size of {size} px cannot hold a multiple of {multiple} px")
    scale = size / max(region.width, region.height)
    w, h = (max(round(side * scale / multiple), 1) * multiple for side in (region.width, region.height))
    return w, h


def detail_crop(detection: Detection, image_hw: tuple[int, int], settings: DetailPass,
                multiple: int) -> DetailCrop | None:
    """The mask, crop and working size for one detection (None when its box misses the image): the
    crop is the feathered mask's extent plus `padding`, grown towards a square within the image."""
    height, width = image_hw
    shape = detection_shape(detection, width, height)
    if shape is None:
        return None
    mask = detail_mask(shape, settings.dilation, settings.mask_blur)
    region = crop_region(mask, settings.padding, 1, 1)
    return DetailCrop(mask, region, *work_size(region, settings.working_size, multiple))


def detail_seed(seed: int, index: int) -> int:
    """The seed of detection `index` in an image with `seed` (ADetailer's seed + index), wrapped to
    the seed range."""
    return (seed + index) % (MAX_SEED + 1)


def detail_job(job: Job, settings: DetailPass, seed: int, width: int, height: int) -> Job:
    """The job that repaints one crop: the image's sampler, schedule, steps and CFG, the pass's
    prompts (an empty one means the job's), denoise and size; no ControlNets, no further passes."""
    return job.replace(prompt=settings.prompt or job.prompt,
                       negative_prompt=settings.negative_prompt or job.negative_prompt,
                       seed=seed, variation_seed=None, variation_strength=0.0, width=width, height=height,
                       batch_size=1, batch_count=1, denoise=settings.denoise, init_image=None, inpaint=None,
                       controls=(), upscale=None, detail=())


@contextlib.contextmanager
def open_detectors(passes: Sequence[DetailPass]) -> Iterator[list[Detector]]:
    """Each pass's detector, opened (DetectorError names an unknown or broken one, or one that finds
    no faces for a pass that aligns them) and closed on exit."""
    with contextlib.ExitStack() as stack:
        detectors = []
        for settings in passes:
            detector = open_detector(settings.detector)
            stack.callback(detector.close)
            if settings.align_faces and FACE_LABEL not in detector.labels:
                raise DetectorError(f"align_faces aligns faces, and {settings.detector!r} finds "
                                    f"{', '.join(detector.labels) or 'no labels'}: choose a face detector")
            detectors.append(detector)
        yield detectors


class DetailRunner:
    """Runs a job's detail passes over each pass's images, in order (run_job's `finish`)."""

    def __init__(self, run: JobRun, detectors: Sequence[Detector], *, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None) -> None:
        if len(detectors) != len(run.job.detail):
            raise ValueError(f"{len(detectors)} detectors for {len(run.job.detail)} detail passes")
        self.run, self.detectors, self.progress, self.cancel = run, tuple(detectors), progress, cancel
        self.multiple = math.lcm(size_multiple(run.model), SIZE_MULTIPLE)

    def __call__(self, images: list[GeneratedImage], batch: int) -> list[GeneratedImage]:
        """The images with every detail pass run on them; a pass that finds nothing adds a note."""
        for index, detector in enumerate(self.detectors):
            images = [self._one_pass(index, detector, item, k, len(images), batch) for k, item in enumerate(images)]
        return images

    def _one_pass(self, index: int, detector: Detector, item: GeneratedImage, k: int, count: int,
                  batch: int) -> GeneratedImage:
        """Detail pass `index` on image `k` of the `count` a pass made: detect, then repaint each find."""
        settings = self.run.job.detail[index]
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        found = run_detector(detector, item.image, settings.min_score)
        name = f"detail pass {index + 1} ({settings.detector})"
        if not found:
            note = f"{name}: nothing found at min score {settings.min_score:g}; the image is unchanged"
            return dataclasses.replace(item, notes=(*item.notes, note))
        image, missed, unaligned = item.image, 0, 0
        for i, detection in enumerate(found):
            stage = Progress(0, 1, batch, self.run.job.batch_count, phase=detail_phase(self.run.job, index),
                             phases=job_phases(self.run.job),
                             part=k * len(found) + i, parts=count * len(found),
                             label=f"detail {index + 1}/{len(self.detectors)} "
                                   f"({settings.detector} {i + 1}/{len(found)})")
            seed = detail_seed(item.job.seed, i)
            if settings.align_faces and detection.label == FACE_LABEL:
                face = face_landmarks(image, detection)
                if face is not None:
                    image = self._repaint_aligned(image, face, item.job, settings, seed, stage)
                    continue
                unaligned += 1
            crop = detail_crop(detection, image.shape[:2], settings, self.multiple)
            if crop is None:
                missed += 1
                continue
            job = detail_job(item.job, settings, seed, crop.width, crop.height)
            image = self._repaint(image, crop, job, stage)
        notes = [f"{name}: skipped {missed} detection(s) outside the image"] if missed else []
        if unaligned:
            notes.append(f"{name}: no landmarks found for {unaligned} face(s); repainted them axis-aligned")
        return dataclasses.replace(item, image=image, notes=(*item.notes, *notes))

    def _repaint(self, image: np.ndarray, crop: DetailCrop, job: Job, stage: Progress) -> np.ndarray:
        """One detection repainted by the job loop's "only masked" inpaint of its crop, pasted back."""
        pixels = JobPixels(init=image, mask=crop.mask, region=crop.region)
        sub = dataclasses.replace(self.run, job=job, pixels=pixels, controlnets=())
        relay = None if self.progress is None else _relay(self.progress, stage, image, crop)
        return run_job(sub, progress=relay, cancel=self.cancel)[0].image


    def _repaint_aligned(self, image: np.ndarray, face: FiveLandmarks, job: Job, settings: DetailPass, seed: int,
                         stage: Progress) -> np.ndarray:
        """One face repainted by img2img of its aligned crop at the working size, pasted back."""
        size, _ = work_size(CropRegion(0, 0, 1, 1), settings.working_size, self.multiple)
        aligned = align_detail_face(image, face, size)
        sub = dataclasses.replace(self.run, job=detail_job(job, settings, seed, size, size),
                                  pixels=JobPixels(init=aligned.crop), controlnets=())
        relay = None if self.progress is None else _relay_aligned(self.progress, stage, image, aligned)
        return paste_face(image, aligned, run_job(sub, progress=relay, cancel=self.cancel)[0].image)


def _relay_aligned(progress: ProgressFn, stage: Progress, image: np.ndarray, aligned: AlignedFace) -> ProgressFn:
    """_relay for an aligned face: the preview pasted back through the crop's soft edge."""
    def report(p: Progress) -> None:
        preview = None if p.preview is None else paste_face(image, aligned, p.preview)
        progress(dataclasses.replace(stage, step=p.step, total=p.total, preview=preview))
    return report


def _relay(progress: ProgressFn, stage: Progress, image: np.ndarray, crop: DetailCrop) -> ProgressFn:
    """Report a crop's sampling steps as steps of the detail stage, its preview pasted into the image."""
    def report(p: Progress) -> None:
        preview = None if p.preview is None else paste_back(image, p.preview, crop.region, crop.mask)
        progress(dataclasses.replace(stage, step=p.step, total=p.total, preview=preview))
    return report
