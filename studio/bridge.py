"""The thread-pool bridge: the only place that runs engine work off the GUI thread.

Jobs run one at a time on a single worker thread (a GPU runs one generation at a time) and
queue behind each other; each can be cancelled while queued or running. A worker reports
through a `QObject` of signals created on the GUI thread, so every signal arrives there as a
queued call; only immutable data (requests, numpy arrays, exceptions as text) crosses.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class JobCancelled(Exception):
    """Raised inside a task (or by the engine's own token) when the user cancelled it."""


@dataclass(frozen=True)
class JobError:
    """What went wrong in a job: a one-line message for the user and the full details."""

    message: str
    details: str
    exception_type: str


class TaskContext:
    """What a running task sees: progress reporting and the cancel request."""

    def __init__(self, job_id: int, emit_step: Callable[[int, object], None]) -> None:
        self.job_id = job_id
        self._emit_step = emit_step
        self._cancelled = threading.Event()
        self._hooks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def report(self, update: object) -> None:
        """Send a progress update (an immutable object) to the GUI thread."""
        self._emit_step(self.job_id, update)

    @property
    def cancelled(self) -> bool:
        """Whether the user asked to cancel."""
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise JobCancelled if the user asked to cancel."""
        if self._cancelled.is_set():
            raise JobCancelled()

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Call `hook` (from any thread) when a cancel arrives, e.g. to set an engine token."""
        with self._lock:
            self._hooks.append(hook)
            already = self._cancelled.is_set()
        if already:
            hook()

    def cancel(self) -> None:
        """Request cancellation (called from the GUI thread)."""
        with self._lock:
            self._cancelled.set()
            hooks = list(self._hooks)
        for hook in hooks:
            hook()


Task = Callable[[TaskContext], Any]


class _WorkerSignals(QObject):
    started = Signal(int)
    step = Signal(int, object)
    result = Signal(int, object)
    error = Signal(int, object)
    cancelled = Signal(int)
    finished = Signal(int)


class _Worker(QRunnable):
    def __init__(self, task: Task, ctx: TaskContext, signals: _WorkerSignals,
                 is_cancel: Callable[[BaseException], bool]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._task, self._ctx, self._signals, self._is_cancel = task, ctx, signals, is_cancel

    def run(self) -> None:
        job_id, signals = self._ctx.job_id, self._signals
        try:
            if self._ctx.cancelled:
                signals.cancelled.emit(job_id)
                return
            signals.started.emit(job_id)
            result = self._task(self._ctx)
            if self._ctx.cancelled:
                signals.cancelled.emit(job_id)
            else:
                signals.result.emit(job_id, result)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            if self._is_cancel(exc) or (self._ctx.cancelled and isinstance(exc, Exception)):
                signals.cancelled.emit(job_id)
            else:
                message = str(exc) or type(exc).__name__
                signals.error.emit(job_id, JobError(message, traceback.format_exc(), type(exc).__name__))
        finally:
            signals.finished.emit(job_id)


class EngineBridge(QObject):
    """Queues engine jobs on one worker thread; signals arrive on the GUI thread."""

    started = Signal(int)
    step = Signal(int, object)
    result = Signal(int, object)
    error = Signal(int, object)
    cancelled = Signal(int)
    finished = Signal(int)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None,
                 cancel_exceptions: tuple[type[BaseException], ...] = ()) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._ids = itertools.count(1)
        self._contexts: dict[int, TaskContext] = {}
        self._cancel_types = (JobCancelled, *cancel_exceptions)

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return len(self._contexts)

    def submit(self, task: Task) -> int:
        """Queue `task(ctx)` to run off the GUI thread; returns the job id."""
        job_id = next(self._ids)
        signals = _WorkerSignals()  # created here, so emits from the worker are queued to us
        ctx = TaskContext(job_id, signals.step.emit)
        for name in ("started", "step", "result", "error", "cancelled"):
            getattr(signals, name).connect(getattr(self, name))
        signals.finished.connect(self._on_finished)
        self._contexts[job_id] = ctx
        ctx._signals = signals  # keep the QObject alive as long as the job  # noqa: SLF001
        self._pool.start(_Worker(task, ctx, signals, lambda e: isinstance(e, self._cancel_types)))
        if len(self._contexts) == 1:
            self.busy_changed.emit(True)
        return job_id

    def cancel(self, job_id: int) -> None:
        """Cancel a queued or running job (no-op for a finished one)."""
        ctx = self._contexts.get(job_id)
        if ctx is not None:
            ctx.cancel()

    def cancel_all(self) -> None:
        """Cancel every queued and running job."""
        for ctx in list(self._contexts.values()):
            ctx.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything and wait for the worker (on quit only)."""
        self.cancel_all()
        return self._pool.waitForDone(timeout_ms)

    def _on_finished(self, job_id: int) -> None:
        self._contexts.pop(job_id, None)
        self.finished.emit(job_id)
        if not self._contexts:
            self.busy_changed.emit(False)
