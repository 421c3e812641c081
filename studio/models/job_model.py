"""The observable job settings the panels bind to: one `<field>_changed` signal per Job field."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.settings import Job, SettingsError

JOB_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Job))


class _JobModelBase(QObject):
    """Holds the current Job; every change goes through `set`, which validates it."""

    job_changed = Signal(object)  # the new Job
    invalid = Signal(str, str)  # field, message: a rejected edit

    def __init__(self, job: Job | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job = job or Job()

    @property
    def job(self) -> Job:
        """The current settings (immutable; safe to hand to the engine thread)."""
        return self._job

    def get(self, name: str) -> Any:
        """The current value of one Job field."""
        if name not in JOB_FIELDS:
            raise AttributeError(f"Job has no field {name!r}")
        return getattr(self._job, name)

    def set(self, **changes: Any) -> bool:
        """Change fields together; on a rejected value emit `invalid` and keep the old job."""
        try:
            job = dataclasses.replace(self._job, **changes)
        except SettingsError as exc:
            self.invalid.emit(exc.path, exc.message)
            return False
        self.set_job(job)
        return True

    def set_job(self, job: Job) -> None:
        """Replace the whole job (e.g. from imported settings), signalling each changed field."""
        old, self._job = self._job, job
        changed = [n for n in JOB_FIELDS if getattr(old, n) != getattr(job, n)]
        for name in changed:
            getattr(self, f"{name}_changed").emit(getattr(job, name))
        if changed:
            self.job_changed.emit(job)


# One Signal(object) per Job field, so widgets bind to exactly what they show.
JobModel = type(
    "JobModel",
    (_JobModelBase,),
    {f"{name}_changed": Signal(object) for name in JOB_FIELDS}
    | {"__doc__": _JobModelBase.__doc__, "__module__": __name__},
)
