"""The studio's side of generation: runs engine jobs inside bridge tasks (worker thread)."""

from __future__ import annotations

from engine.pipeline import Engine
from engine.pipeline.inputs import ImageInputs
from engine.pipeline.progress import GeneratedImage
from engine.sampling import CancelToken
from engine.settings import Job
from studio.bridge import TaskContext


class EngineSession:
    """One engine (model cache, device) for the whole app; `generate` runs on the bridge's thread."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine, created on first use so the window opens without loading torch models."""
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    def generate(self, job: Job, inputs: ImageInputs, ctx: TaskContext) -> list[GeneratedImage]:
        """Run a job; progress goes to the GUI as Progress updates; cancel reaches the sampler."""
        token = CancelToken()
        ctx.on_cancel(token.cancel)
        return self.engine.run(job, inputs, progress=ctx.report, cancel=token)

    def scan_models(self):  # type: ignore[no-untyped-def]
        """The models found in the models folders (for the Models dock)."""
        return self.engine.scan_models()
