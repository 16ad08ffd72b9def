"""Background render thread: takes only the newest job, tags results with the job's stamp.

The UI thread calls `submit` whenever the state changed and `poll` once per frame; it never
waits on a render. Older pending jobs are dropped when a newer one arrives, and `poll` never
returns a result older than one already returned. An interruptible worker also hands the running
job a `should_stop()` that turns True once a newer job waits, so a long job can stop early; `on_done`
is called (from the worker thread) after each job, e.g. to wake a UI loop that sleeps in its event wait.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar


class _Stamped(Protocol):
    """What the worker reads of a job: its stamp (newer jobs have larger stamps)."""

    @property
    def stamp(self) -> int: ...


Job = TypeVar("Job", bound=_Stamped)


@dataclass
class WorkerResult:
    """What a job produced (`value`) or why it failed (`error`, one line; `details`, the traceback)."""

    stamp: int
    value: Any = None
    error: str | None = None
    details: str | None = None
    seconds: float = 0.0


class LatestWinsWorker(Generic[Job]):
    """One daemon thread running `fn(job)` for the newest submitted job; `job.stamp` orders jobs."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str = "render",
        interruptible: bool = False,
        cancelled_by: type[BaseException] | tuple[type[BaseException], ...] = (),
        on_done: Callable[[], None] | None = None,
    ):
        """fn(job), or fn(job, should_stop) when `interruptible`; a `cancelled_by` exception from fn
        means the job stopped because a newer one waits: counted in `cancelled`, no result."""
        self._fn = fn
        self._interruptible = interruptible
        self._cancelled_by = cancelled_by
        self._on_done = on_done
        self._cond = threading.Condition()
        self._pending: Job | None = None
        self._result: WorkerResult | None = None
        self._returned_stamp = -1
        self._busy_stamp: int | None = None
        self.busy_since: float | None = None
        """perf_counter time the running job started (None when idle): the status line's live timer."""
        self._stop = False
        self.dropped = 0
        """Jobs replaced before they started."""
        self.cancelled = 0
        """Jobs that stopped early because a newer job arrived (interruptible workers)."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue `job`, replacing any job that has not started yet."""
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = job
            self._cond.notify()

    @property
    def busy(self) -> bool:
        """True while a job runs or waits."""
        with self._cond:
            return self._busy_stamp is not None or self._pending is not None

    def poll(self) -> WorkerResult | None:
        """The newest finished result not returned before, or None; stale results are discarded."""
        with self._cond:
            res, self._result = self._result, None
            if res is None or res.stamp <= self._returned_stamp:
                return None
            self._returned_stamp = res.stamp
            return res

    @property
    def running_stamp(self) -> int | None:
        """Stamp of the job running now (None when none runs)."""
        return self._busy_stamp

    def has_result(self) -> bool:
        """True when a finished result waits for `poll` (cheap: one reference read)."""
        return self._result is not None

    def superseded(self) -> bool:
        """True while a newer job than the running one waits (what an interruptible job's should_stop asks)."""
        return self._pending is not None  # one reference read: no lock needed

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no job runs or waits (tests and shutdown only)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy_stamp is not None or self._pending is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to finish after its current job."""
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job, self._pending = self._pending, None
                assert job is not None  # the wait above ends on a pending job or on stop
                self._busy_stamp = job.stamp
                self.busy_since = time.perf_counter()
            t0 = time.perf_counter()
            res: WorkerResult | None
            try:
                value = self._fn(job, self.superseded) if self._interruptible else self._fn(job)
                res = WorkerResult(job.stamp, value=value)
            except self._cancelled_by:  # a newer job waits: it runs next, this one leaves no result
                res = None
            except Exception as e:  # shown in the window; the next job runs normally
                res = WorkerResult(job.stamp, error=f"{type(e).__name__}: {e}", details=traceback.format_exc())
            with self._cond:
                if res is None:
                    self.cancelled += 1
                else:
                    res.seconds = time.perf_counter() - t0
                    if self._result is None or res.stamp > self._result.stamp:
                        self._result = res
                self._busy_stamp = None
                self.busy_since = None
                self._cond.notify_all()
            if self._on_done is not None:
                try:
                    self._on_done()
                except Exception:  # waking the UI is best effort (e.g. the window is gone at shutdown)
                    pass
