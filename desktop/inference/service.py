"""The inference core: one long-lived worker thread that runs job pipelines for the GUI.

Worker-object pattern: :class:`InferenceService` is a plain QObject moved onto one QThread that
runs an ordinary event loop (we never subclass ``QThread.run`` and never start a thread per
job). The GUI thread only touches the job queue under a short lock and wakes the worker with a
queued signal, so it never blocks on a job. The worker drives a pipeline generator
(core/jobs.py) one Progress at a time and reports each event through one queued signal to a
relay in the GUI thread, which hands it, in order, to that job's :class:`JobHandle`
(desktop/inference/handle.py), the object :meth:`InferenceService.submit` returned.

Cancelling sets the job's ``threading.Event``: the pipeline's ``ctx.check()`` raises
``Cancelled`` at its next step, and the worker also refuses to advance a cancelled generator,
so a cancel takes effect within one step even for a pipeline that forgets to check.

Torch and the pipelines load in the worker at the first job (or when :meth:`find_devices`
asks for the devices first), never at start: the window shows without waiting for them.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from core.jobs import Cancelled, Context, JobSpec, Progress, Result, yield_from
from desktop.inference import collector
from desktop.inference.handle import JobHandle

log = logging.getLogger("easel.inference")

# The GUI repaints a progress bar at most this often; more signals only flood its event queue.
PROGRESS_INTERVAL_S = 1.0 / 30.0
# A preview is a full image converted to a QImage in the GUI thread, so it is rate-limited harder.
PREVIEW_INTERVAL_S = 1.0 / 10.0
# While the app closes, how often the wait for a cancelled job to return is logged.
SHUTDOWN_LOG_MS = 5000

OUT_OF_MEMORY_NOTE = (
    "The {device} ran out of memory, so this job ran again on the CPU (slower). Smaller "
    "images or fewer samples fit the {device}."
)
OUT_OF_MEMORY_MESSAGE = (
    "The device ran out of memory while running this job. Try a smaller image or fewer "
    "samples, or switch the device to CPU in the settings."
)


@dataclass(eq=False)
class _Job:
    id: int
    spec: JobSpec
    cancel: threading.Event = field(default_factory=threading.Event)


class _Throttle:
    """Lets an event through at most once per ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = -float("inf")

    def ready(self, now: float) -> bool:
        return now - self._last >= self.interval

    def mark(self, now: float) -> None:
        self._last = now


class _Relay(QObject):
    """Lives in the GUI thread and holds the handles of the jobs that have not ended yet, so a
    handle is never freed in the worker thread and its signals are emitted in the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self.handles: dict[int, JobHandle] = {}

    @Slot(int, str, object)
    def deliver(self, job_id: int, event: str, args: tuple) -> None:
        handle = self.handles.get(job_id)
        if handle is None:
            return
        if event in ("finished", "failed", "cancelled"):
            del self.handles[job_id]
        handle._report(event, *args)


class InferenceService(QObject):
    """Runs job specs one at a time, FIFO, on a single background thread.

    The constructor starts the worker thread (so :meth:`start` is only an idempotent
    convenience); :meth:`submit` jobs from the GUI thread, connect to the handle it returns,
    and call :meth:`shutdown` when the application closes (it cancels, quits the thread's loop
    and waits, even mid-job). The service must not have a Qt parent, because a QObject with a
    parent cannot move to a thread; whoever creates it holds it and must shut it down.
    """

    idle = Signal()  # the queue drained
    # {device: description}, best first (core.device.found_devices); once, from the worker,
    # when it has imported torch: at the first job, or when find_devices() asked
    devicesFound = Signal(object)

    _wake = Signal()  # internal: emitted from any thread, runs _on_wake in the worker thread
    _event = Signal(int, str, object)  # internal: job_id, event name, its arguments

    def __init__(self, device: str | None = None, parent: QObject | None = None) -> None:
        if parent is not None:
            raise ValueError("InferenceService cannot have a parent: it moves to its own thread.")
        super().__init__(parent)
        self._lock = threading.Lock()
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: _Job | None = None
        self._dropped: list[int] = []  # queued jobs cancelled before they ran, to report
        self._next_id = 1
        self._device = device
        self._devices_wanted = False  # find_devices() was called
        self._devices_reported = False  # worker thread only
        self._cache: Any = None  # core.weights.ModelCache, created in the worker on first use
        self._last_device: Any = None  # the torch.device of the last job (worker thread only)
        self._thread: QThread | None = None
        self._closed = False
        # Queued explicitly, never direct: the worker re-emits _wake to itself between jobs,
        # and that must go through its event loop (where quit() is seen), not recurse.
        self._wake.connect(self._on_wake, Qt.ConnectionType.QueuedConnection)
        self._relay = _Relay()  # created here, in the GUI thread, and stays there
        self._event.connect(self._relay.deliver, Qt.ConnectionType.QueuedConnection)
        collector.install()  # cycles holding GUI objects must never be freed in the worker
        self.start()

    # ------------------------------------------------------------------ GUI-thread API

    def start(self) -> None:
        """Create the worker thread, move the service onto it and start its event loop.

        Called by the constructor; calling it again does nothing.
        """
        if self._closed:
            raise RuntimeError("The inference service was shut down; create a new one.")
        if self._thread is not None:
            return
        thread = QThread()
        thread.setObjectName("easel-inference")
        self.moveToThread(thread)
        self._thread = thread
        thread.start()

    def submit(self, spec: JobSpec) -> JobHandle:
        """Queue ``spec`` and return its handle (ids 1, 2, 3, ... in submission order).

        Call it from the GUI thread; the handle's signals arrive there.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("The inference service was shut down.")
            job = _Job(self._next_id, spec)
            self._next_id += 1
            handle = JobHandle(job.id, spec, self._cancel)
            self._relay.handles[job.id] = handle
            self._queue.append(job)
        self._wake.emit()
        return handle

    def _cancel(self, job_id: int) -> None:
        """Cancel a queued or running job (``JobHandle.cancel``); unknown or finished ids are
        ignored."""
        with self._lock:
            if self._running is not None and self._running.id == job_id:
                self._running.cancel.set()
                return
            for job in self._queue:
                if job.id == job_id:
                    self._queue.remove(job)
                    self._dropped.append(job_id)
                    break
            else:
                return
        self._wake.emit()  # reported by the worker: all signals come from one thread

    def cancel_all(self) -> None:
        with self._lock:
            if self._running is not None:
                self._running.cancel.set()
            dropped = [job.id for job in self._queue]
            self._queue.clear()
            self._dropped.extend(dropped)
        if dropped:
            self._wake.emit()

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return len(self._queue) + (self._running is not None)

    def is_busy(self) -> bool:
        return self.pending() > 0

    def set_device(self, name: str | None) -> None:
        """Device for the next job ("cpu", "cuda", "cuda:1", "mps", "auto" or None for auto).

        It is checked when that job starts; a bad name makes the job fail with a readable text.
        """
        with self._lock:
            self._device = name

    def device(self) -> str | None:
        with self._lock:
            return self._device

    def find_devices(self) -> None:
        """Have the worker list the devices (importing torch to do so, if no job has yet) and
        report them with ``devicesFound``; they are reported once, so later calls do nothing.
        """
        with self._lock:
            if self._devices_wanted or self._closed:
                return
            self._devices_wanted = True
        self._wake.emit()

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Cancel everything, stop the worker's event loop and wait for the thread to end.

        Safe to call more than once. With ``timeout_ms`` None (what the app does when it
        closes) it waits as long as the running job takes to see its cancel (pipelines check
        after a bounded amount of work), logging while it waits: destroying a running QThread
        aborts the whole process. Otherwise returns whether the thread finished in time.
        """
        with self._lock:
            self._closed = True
            running = self._running
        self.cancel_all()
        thread = self._thread
        if thread is None or thread.isFinished():
            return True
        # quit() ends the event loop once the current job returns to it; queued wakes for jobs
        # that were never started are discarded, and cancel_all() has already emptied the queue.
        thread.quit()
        if timeout_ms is not None:
            done = thread.wait(int(timeout_ms))
            if not done:
                log.warning("The inference thread did not stop within %d ms.", timeout_ms)
            return bool(done)
        t0 = time.monotonic()
        while not thread.wait(SHUTDOWN_LOG_MS):
            log.warning("Still waiting for the inference thread to stop (%s, %.0f s).",
                        running.spec.kind if running is not None else "no job",
                        time.monotonic() - t0)
        return True

    # ------------------------------------------------------------------ worker thread

    @Slot()
    def _on_wake(self) -> None:
        worked = self._report_dropped()
        with self._lock:
            job = self._queue.popleft() if self._queue else None
            self._running = job
            want_devices = self._devices_wanted or job is not None
        if want_devices:
            self._report_devices()
        if job is not None:
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running = None
            self._report_dropped()
            worked = True
        with self._lock:
            more = bool(self._queue)
        if more:
            # One job per wake keeps the event loop turning between jobs, so quit() is seen.
            self._wake.emit()
        elif worked:
            self.idle.emit()

    def _report_devices(self) -> None:
        """``devicesFound``, the first time a job or :meth:`find_devices` wants torch."""
        if self._devices_reported:
            return
        self._devices_reported = True
        try:
            from core.device import found_devices  # imports torch

            devices = found_devices()
        except Exception:  # a job reports the same failure, readably
            log.exception("Listing the devices failed.")
            return
        self.devicesFound.emit(devices)

    def _report_dropped(self) -> bool:
        with self._lock:
            dropped, self._dropped = self._dropped, []
        for job_id in dropped:
            self._emit(job_id, "cancelled")
        return bool(dropped)

    def _emit(self, job_id: int, event: str, *args: object) -> None:
        """Report ``event`` of a job to its handle (queued to the GUI thread, in order)."""
        self._event.emit(job_id, event, args)

    def _run(self, job: _Job) -> None:
        self._emit(job.id, "started", job.spec)
        try:
            reporter = _Reporter(self, job)
            ctx = self._context(job, reporter)
            self._set_threads()
            try:
                result = self._drive(job, ctx, reporter)
            except Exception as exc:
                from core.device import is_out_of_memory

                if ctx.device.type == "cpu" or not is_out_of_memory(exc):
                    raise
                oom_on = ctx.device
            else:
                oom_on = None
            if oom_on is not None:  # outside the handler: its traceback holds device tensors
                result = self._again_on_cpu(job, oom_on, reporter)
        except Cancelled:
            log.info("Job %d (%s) cancelled.", job.id, job.spec.kind)
            self._emit(job.id, "cancelled")
        except Exception as exc:  # noqa: BLE001 - the service must survive any job failure
            message = describe_failure(exc)
            tb = traceback.format_exc()
            log.error("Job %d (%s) failed: %s\n%s", job.id, job.spec.kind, message, tb)
            self._emit(job.id, "failed", message, tb)
        else:
            reporter.flush()
            self._emit(job.id, "finished", result)

    def _set_threads(self) -> None:
        """Torch's threads for this job, from how busy the machine is now (core.device)."""
        from core.device import GIVEN_THREADS, use_cpu_threads

        n = use_cpu_threads(GIVEN_THREADS)
        log.debug("Job threads: %d of %d.", n, GIVEN_THREADS)

    def _drive(self, job: _Job, ctx: Context, reporter: _Reporter) -> Result:
        """Run the job's pipeline to its Result in ``ctx``; its cleanup runs before returning."""
        ctx.check()
        from core.pipelines import pipeline_for  # on the worker thread: the first job imports them

        gen = pipeline_for(job.spec)(job.spec, ctx)
        try:
            t0 = time.perf_counter()
            result = yield_from(gen, reporter)
            if not isinstance(result, Result):
                raise TypeError(f"pipeline {job.spec.kind!r} returned {type(result).__name__}, "
                                "not a Result")
            result.info.setdefault("seconds", round(time.perf_counter() - t0, 3))
            return result
        finally:
            _close(gen, job)

    def _again_on_cpu(self, job: _Job, device: Any, reporter: _Reporter) -> Result:
        """After an out-of-memory on ``device``: free it, drop its models, run once on the CPU
        and say so in the result's notes (a second failure is reported as usual)."""
        import torch

        from core.device import describe, free_memory

        note = OUT_OF_MEMORY_NOTE.format(device=describe(device).split(" (")[0])
        log.warning("Job %d (%s): %s", job.id, job.spec.kind, note)
        self._cache.evict_device(device)
        free_memory(device)
        self._emit(job.id, "progress", 0, 0, note)
        ctx = Context.for_spec(job.spec, device=torch.device("cpu"), models=self._cache,
                               cancel_event=job.cancel)
        ctx.preview_wanted = reporter.preview_due
        result = self._drive(job, ctx, reporter)
        result.info["notes"] = [*result.info.get("notes", []), note]
        return result

    def _context(self, job: _Job, reporter: _Reporter) -> Context:
        from core.device import free_memory, pick_device

        with self._lock:
            requested = self._device
        device = pick_device(requested)  # DeviceError -> failed, with its readable message
        if self._cache is None:
            from core.weights import ModelCache

            self._cache = ModelCache()
        if self._last_device is not None and device != self._last_device:
            self._cache.clear()  # models on the old device would only hold its memory
            free_memory(self._last_device)
        self._last_device = device
        ctx = Context.for_spec(job.spec, device=device, models=self._cache,
                               cancel_event=job.cancel)
        ctx.preview_wanted = reporter.preview_due
        return ctx


def _close(gen: Any, job: _Job) -> None:
    """Run the pipeline's ``finally`` blocks now, in this thread, rather than at some later GC."""
    try:
        gen.close()
    except Exception:  # a pipeline's cleanup must not take the service down either
        log.exception("Job %d (%s) failed while cleaning up.", job.id, job.spec.kind)


class _Reporter:
    """Turns a job's Progress stream into throttled signals; stops a cancelled job between steps."""

    def __init__(self, service: InferenceService, job: _Job) -> None:
        self.service = service
        self.job = job
        self.progress = _Throttle(PROGRESS_INTERVAL_S)
        self.preview = _Throttle(PREVIEW_INTERVAL_S)
        self.held: Progress | None = None  # the latest progress the throttle held back

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.total > 0 and p.step >= p.total
        if final or self.progress.ready(now):
            self.progress.mark(now)
            self._emit(p)
        else:
            self.held = p
        if p.preview is not None and (final or self.preview.ready(now)):
            self.preview.mark(now)
            # A copy: delivery is queued, and the pipeline may keep writing into its buffer.
            self.service._emit(self.job.id, "preview", np.array(p.preview, copy=True))
        self.service._report_dropped()
        if self.job.cancel.is_set():
            raise Cancelled()

    def preview_due(self) -> bool:
        """Whether a preview yielded now would be sent (pipelines skip decoding one if not)."""
        return self.preview.ready(time.monotonic())

    def flush(self) -> None:
        """Deliver the last progress if the throttle held it back, so the bar ends up to date."""
        if self.held is not None:
            self._emit(self.held)

    def _emit(self, p: Progress) -> None:
        self.held = None
        self.service._emit(self.job.id, "progress", int(p.step), int(p.total), p.message)


def describe_failure(exc: BaseException) -> str:
    """The user-readable message for an exception a job raised."""
    if isinstance(exc, _readable_errors()):
        return str(exc) or type(exc).__name__
    from core.device import is_out_of_memory

    if is_out_of_memory(exc):
        return OUT_OF_MEMORY_MESSAGE
    return f"Internal error: {type(exc).__name__}: {exc}"


def _readable_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose text is written for the user (bad input, missing weights...)."""
    from core.device import DeviceError
    from core.imageio import ImageError
    from core.jobs import JobError
    from core.weights import WeightsError

    return (JobError, ImageError, WeightsError, DeviceError)
