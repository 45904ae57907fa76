"""A submitted job as the GUI sees it: one object with its own signals and ``cancel()``.

:meth:`InferenceService.submit` returns a :class:`JobHandle`; whoever submitted connects to it,
so a result finds its way back without anyone looking it up (the pattern of superqt's and
napari's workers). The handle lives in the GUI thread and its signals are emitted there, in
order: ``started``, then any ``progress``/``preview``, then exactly one of ``finished``,
``failed`` or ``cancelled``.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from core.jobs import JobSpec


class JobHandle(QObject):
    started = Signal(object)  # the spec
    progress = Signal(int, int, str)  # step, total, message
    preview = Signal(object)  # HxWx3 uint8 array
    finished = Signal(object)  # core.jobs.Result
    failed = Signal(str, str)  # readable message, traceback text
    cancelled = Signal()

    def __init__(self, job_id: int, spec: JobSpec, cancel: Callable[[int], None]) -> None:
        super().__init__()
        self.id = job_id
        self.spec = spec
        self._cancel = cancel
        self.cancel_requested = False
        self.done = False  # one of finished, failed or cancelled was emitted

    def cancel(self) -> None:
        """Stop the job (within one step if it runs). A result that arrives after this call
        is reported as ``cancelled``: whoever cancelled has given up on it."""
        if self.done:
            return
        self.cancel_requested = True
        self._cancel(self.id)

    # Called by the service's relay in the GUI thread.

    def _report(self, event: str, *args: object) -> None:
        if self.done:
            return
        if event == "finished" and self.cancel_requested:
            event, args = "cancelled", ()  # it finished just before the cancel reached it
        if event in ("finished", "failed", "cancelled"):
            self.done = True
        signal = {"started": self.started, "progress": self.progress, "preview": self.preview,
                  "finished": self.finished, "failed": self.failed,
                  "cancelled": self.cancelled}[event]
        signal.emit(*args)
