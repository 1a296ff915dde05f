"""Supervised threads: a step that raises is retried after a backoff, reported, and shown until it runs again."""

from __future__ import annotations

import threading
import time

from pitstop.background import SupervisedThread, Supervisor


def wait_for(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_failing_step_is_restarted_reported_and_shown_until_it_runs_again() -> None:
    """Issue 15, item 2: a RecursionError ended the MQTT writer thread for good while /ready said ok.
    A supervised thread outlives it: the failure is reported, the state says so, the step runs again
    after the backoff, and the recovery is reported."""
    reports: list[tuple[str, str | None]] = []
    steps: list[int] = []
    release = threading.Event()

    def step() -> None:
        steps.append(1)
        if len(steps) == 2:
            raise RecursionError("maximum recursion depth exceeded")
        if len(steps) > 2:
            release.wait(5)

    supervisor = Supervisor(report=lambda name, problem: reports.append((name, problem)))
    thread = supervisor.thread("writer", step, every_s=0.0)
    assert supervisor.states() == {}  # not started: not counted
    thread.start()
    try:
        assert wait_for(lambda: len(reports) == 1)
        assert supervisor.states()["background:writer"].startswith("failed 1x, restarting: RecursionError")
        assert reports == [("writer", "RecursionError: maximum recursion depth exceeded")]
        release.set()
        assert wait_for(lambda: len(steps) >= 4), "the step did not run again after the backoff"
        assert wait_for(lambda: supervisor.states() == {"background:writer": "ok"})
        assert reports[-1] == ("writer", None)
    finally:
        thread.stop()
    assert not thread._thread.is_alive()  # type: ignore[union-attr]


def test_a_report_that_fails_does_not_end_the_thread() -> None:
    """The database that takes the incident may be what failed: the thread goes on anyway."""
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("boom")

    def report(name: str, problem: str | None) -> None:
        raise ConnectionError("database down")

    thread = SupervisedThread("poller", step, every_s=0.01, report=report)
    thread.start()
    try:
        assert wait_for(lambda: len(calls) >= 3)
        assert thread.state() == "ok" and thread.crashes == 1
    finally:
        thread.stop()
