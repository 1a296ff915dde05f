"""What runs beside the API in `pitstop serve`, and the supervisor that keeps it running.

A background part (the MQTT subscriber, the spool flusher, the scheduler) does its work on
supervised threads. Each thread repeats one `step`; a step that raises does not end the thread: the
error is logged and reported (`pitstop.background:<name>`, an incident opened by `app.py`), the
thread's state says what happened until a step completes again, and the step is retried after a
backoff that doubles from 1 s to 60 s. /ready is false while any thread is not "ok".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("pitstop.background")
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0

# What `pitstop serve --role` can run (a process runs all of them unless told otherwise): the HTTP API,
# the ingest parts (MQTT, the spool), the fleet's per-asset jobs, and the scheduler (one leads by lease).
ROLES = ("api", "ingest", "worker", "scheduler")

# (thread name, what went wrong or None when it runs again)
Report = Callable[[str, str | None], None]


class Background(Protocol):
    """Something that runs beside the API in `pitstop serve` (an MQTT subscriber, a poller)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class SupervisedThread:
    """A daemon thread that calls `step()` until stopped, waiting `every_s` between steps."""

    def __init__(self, name: str, step: Callable[[], object], *, every_s: float, report: Report) -> None:
        self.name = name
        self.step = step
        self.every_s = every_s
        self.report = report
        self.crashes = 0
        self.problem: str | None = None  # the last error, until a step completes again
        self.stopping = threading.Event()
        self._wakeup = threading.Event()  # set by stop() and wake()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stopping.clear()
        self._thread = threading.Thread(target=self._main, name=f"pitstop-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self._wakeup.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wake(self) -> None:
        """Run the next step now rather than after the rest of `every_s`."""
        self._wakeup.set()

    def state(self) -> str:
        if self._thread is None:
            return "not started"
        if self.problem is not None:
            return f"failed {self.crashes}x, restarting: {self.problem}"
        if not self._thread.is_alive() and not self.stopping.is_set():
            return "stopped unexpectedly"
        return "ok"

    def _main(self) -> None:
        delay = BACKOFF_MIN_S
        while not self.stopping.is_set():
            try:
                self.step()
            except BaseException as exc:  # RecursionError, MemoryError: the thread must outlive them
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                self.crashes += 1
                self.problem = f"{type(exc).__name__}: {exc}"[:500]
                log.exception("background thread %s failed; restarting in %.0f s", self.name, delay)
                self._report(self.problem)
                if self.stopping.wait(delay):
                    return
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if self.problem is not None:
                log.info("background thread %s runs again", self.name)
                self.problem = None
                delay = BACKOFF_MIN_S
                self._report(None)
            if self.every_s:
                self._wakeup.wait(self.every_s)
                self._wakeup.clear()
                if self.stopping.is_set():
                    return

    def _report(self, problem: str | None) -> None:
        try:
            self.report(self.name, problem)
        except Exception:  # the database may be what failed: the log and /ready still tell
            log.warning("could not report the state of background thread %s", self.name, exc_info=True)


class Supervisor:
    """Creates the supervised threads of every background part and answers for all of them."""

    def __init__(self, report: Report | None = None) -> None:
        self.report: Report = report or (lambda name, problem: None)
        self.threads: dict[str, SupervisedThread] = {}

    def thread(self, name: str, step: Callable[[], object], *, every_s: float = 0.0) -> SupervisedThread:
        """A new thread (not started); reports go through `self.report` as it is when they happen."""
        supervised = SupervisedThread(name, step, every_s=every_s, report=lambda n, p: self.report(n, p))
        self.threads[name] = supervised
        return supervised

    def states(self) -> dict[str, str]:
        """State of each started thread ("ok" when running), for /ready."""
        return {f"background:{name}": t.state() for name, t in self.threads.items() if t.state() != "not started"}
