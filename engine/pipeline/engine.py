"""The engine the studio and the CLI call: model resolution and caching, device choice, LoRA and
ControlNet set-up around the job loop."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch

from engine.adapters.lora import apply_loras, load_lora
from engine.decoding.preview import LatentPreview, preview_for
from engine.models import (
    FileStamp,
    LoadedModel,
    LoadOptions,
    ModelCache,
    ModelLoadError,
    ModelStore,
    ResourcePaths,
    ScanResult,
    cached_load_model,
    default_models_dir,
    load_controlnet,
)
from engine.models.card import read_card, with_recommended
from engine.models.loader import controlnet_fits
from engine.pipeline.decode import is_out_of_memory
from engine.pipeline.detail import DetailRunner, open_detectors
from engine.pipeline.device import DeviceSetup, choose_device, prepare_model
from engine.pipeline.errors import GenerationError, NoModelError
from engine.pipeline.hires import HiresRunner, check_upscale, native_size
from engine.pipeline.inputs import ImageInputs
from engine.pipeline.jobs import JobRun, ProgressFn, read_pixels, run_job
from engine.pipeline.progress import GeneratedImage
from engine.pipeline.resolve import resolve_controlnet, resolve_lora, resolve_model, resolve_upscaler
from engine.sampling import CancelToken
from engine.settings import Job, ModelRef

DEFAULT_CACHE_BYTES = 8 * 2**30
T = TypeVar("T")


def _nbytes(item: Any) -> int:
    """Bytes a cached model holds (LoadedModel or a bare module)."""
    if isinstance(item, LoadedModel):
        return item.nbytes
    return sum(t.numel() * t.element_size() for t in (*item.parameters(), *item.buffers()))


class Engine:
    """Runs jobs on one device with an LRU cache of models; create one per application."""

    def __init__(self, *, device: str | None = None, dtype: torch.dtype | None = None,
                 cache_budget_bytes: int | None = None, store: ModelStore | None = None,
                 resources: ResourcePaths = ResourcePaths()) -> None:
        self.setup: DeviceSetup = choose_device(device, dtype)
        self.store = store if store is not None else ModelStore()
        self.resources = resources
        budget = DEFAULT_CACHE_BYTES if cache_budget_bytes is None else cache_budget_bytes
        self._cache: ModelCache[Any] = ModelCache(budget, _nbytes)
        self._scan: ScanResult | None = None
        self._previews: weakref.WeakKeyDictionary[Any, LatentPreview] = weakref.WeakKeyDictionary()

    @property
    def device(self) -> torch.device:
        return self.setup.device

    @property
    def models_dir(self) -> Path:
        """Where the user should put models: the store's first folder."""
        return self.store.roots[0] if self.store.roots else default_models_dir()

    def scan_models(self) -> ScanResult:
        """Scan the store's folders (and remember the result for name lookups)."""
        self._scan = self.store.scan()
        return self._scan

    def _resolve(self, find: Callable[[Callable[[], ScanResult]], T]) -> T:
        """Run a lookup against the last scan; if it fails, rescan once (a model may have been added)."""
        if self._scan is None:
            return find(self.scan_models)
        try:
            return find(lambda: self._scan)  # type: ignore[arg-type,return-value]
        except (ModelLoadError, NoModelError):
            return find(self.scan_models)

    def resolve(self, ref: ModelRef, base_dir: Path | None = None) -> tuple[Path, str]:
        """(path, display name) of the base model a job would use, without loading it."""
        return self._resolve(lambda scan: resolve_model(ref, scan, self.models_dir, base_dir))

    def recommended(self, job: Job, base_dir: Path | None = None) -> Job:
        """The job with the settings its base model's card recommends (unchanged if it has none or
        no model can be found: running the job reports that)."""
        try:
            path, _ = self.resolve(job.model, base_dir)
        except (ModelLoadError, NoModelError):
            return job
        return with_recommended(job, read_card(path))

    def load(self, ref: ModelRef, base_dir: Path | None = None) -> tuple[LoadedModel, ModelRef]:
        """The job's base model, loaded (or from the cache), and a ModelRef naming its actual file."""
        path, name = self.resolve(ref, base_dir)
        vae = None
        if ref.vae:
            vae = Path(ref.vae) if Path(ref.vae).is_absolute() or base_dir is None else base_dir / ref.vae
        options = LoadOptions(dtype=self.setup.dtype, device=str(self.setup.device), vae=vae)
        model = cached_load_model(self._cache, path, options, self.resources)
        prepare_model(model, self.setup)
        return model, ModelRef(name=name, path=str(path), vae=ref.vae)

    def _controlnets(self, job: Job, model: LoadedModel, base_dir: Path | None) -> tuple[torch.nn.Module, ...]:
        out = []
        for unit in job.controls:
            path = self._resolve(lambda scan, u=unit: resolve_controlnet(
                u, model.family, scan, self.models_dir, base_dir,
                fits=lambda p: controlnet_fits(p, model.denoiser.config)))
            key = ("controlnet", FileStamp.of(path), model.family, self.setup.dtype, str(self.setup.device))
            out.append(self._cache.get_or_load(key, lambda p=path: load_controlnet(p, model).eval()))
        return tuple(out)

    @contextlib.contextmanager
    def _loras(self, job: Job, model: LoadedModel, base_dir: Path | None) -> Iterator[None]:
        """The job's LoRAs patched into the model, removed bit for bit on exit (also on error or cancel)."""
        with contextlib.ExitStack() as stack:
            for ref in job.loras:
                path = self._resolve(lambda scan, r=ref: resolve_lora(r.path, scan, base_dir))
                patch = apply_loras([(load_lora(path), ref.weight)], model.denoiser, model.text_encoders,
                                    source=str(path))
                stack.enter_context(patch)
            yield

    def _preview(self, model: LoadedModel) -> LatentPreview:
        found = self._previews.get(model.vae)
        if found is None:
            found = self._previews[model.vae] = preview_for(model.vae, model.family.value)
        return found

    def run(self, job: Job, inputs: ImageInputs = ImageInputs(), *, progress: ProgressFn | None = None,
            cancel: CancelToken | None = None, base_dir: Path | None = None) -> list[GeneratedImage]:
        """Generate every image of a job (batch_count passes of batch_size), in seed order.

        Each image then goes through the job's hires pass (upscale, then img2img at the new size) and
        detail passes; what the user should know about them (a
        pass that found nothing) is in its `notes`. Raises engine.sampling.Cancelled when `cancel` is
        set (within one step), ModelLoadError / NoModelError / InputImageError / DetectorError for
        bad inputs and GenerationError saying what to change.
        """
        check_upscale(job)
        upscaler = None
        if job.upscale is not None and job.upscale.mode == "pixel":  # a name or path that is wrong fails first
            upscaler = self._resolve(lambda scan: resolve_upscaler(job.upscale.upscaler, scan, base_dir))
        pixels = read_pixels(job, inputs, base_dir)
        with open_detectors(job.detail) as detectors:  # an unknown detector fails before the model loads
            model, ref = self.load(job.model, base_dir)
            controlnets = self._controlnets(job, model, base_dir)
            run = JobRun(model, job.replace(model=ref), pixels, self.setup.device, self.setup.dtype, controlnets,
                         self._preview(model) if progress is not None else None)
            # The detail passes repaint on the model just loaded, inside the same LoRA patch.
            finish = DetailRunner(run, detectors, progress=progress, cancel=cancel) if job.detail else None
            hires = None if job.upscale is None else HiresRunner(
                run, native_size(read_card(Path(ref.path)).recommended, model.family), progress=progress, cancel=cancel,
                upscaler=upscaler)
            try:
                with self._loras(job, model, base_dir):
                    return run_job(run, progress=progress, cancel=cancel, finish=finish, hires=hires)
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc):
                    raise
                if self.setup.is_cuda:
                    torch.cuda.empty_cache()
                sizes = ", ".join(["the batch size", "the image size"] + ["the hires tile size"] * bool(job.upscale)
                                  + ["the detail working size"] * bool(job.detail))
                raise GenerationError(
                    f"out of memory generating {job.batch_size} image(s) of {job.width}x{job.height} on "
                    f"{self.setup.device}: lower {sizes}, or remove ControlNets") from exc

