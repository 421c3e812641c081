"""The thread-pool bridge: results, progress, cancel within a step, errors, and queueing."""

from __future__ import annotations

import threading
import time

import pytest

from studio.bridge import EngineBridge, JobError, TaskContext


@pytest.fixture
def bridge(qtbot):
    b = EngineBridge()
    yield b
    assert b.shutdown(5000)


def _counting_task(steps: int, delay: float = 0.0):  # type: ignore[no-untyped-def]
    def task(ctx: TaskContext) -> str:
        thread = threading.get_ident()
        for i in range(steps):
            ctx.check()
            time.sleep(delay)
            ctx.report((i, steps))
        return f"done in {thread}"
    return task


def test_result_and_progress_arrive_in_order(qtbot, bridge: EngineBridge) -> None:
    steps, results = [], []
    bridge.step.connect(lambda job, update: steps.append(update))
    bridge.result.connect(lambda job, value: results.append((job, value)))
    with qtbot.waitSignals([bridge.started, bridge.result, bridge.finished], order="strict", timeout=5000):
        job = bridge.submit(_counting_task(5))
    assert steps == [(i, 5) for i in range(5)]
    assert results[0][0] == job
    assert results[0][1].startswith("done in ")
    assert results[0][1] != f"done in {threading.get_ident()}"  # ran off the GUI thread


def test_cancel_mid_job_stops_within_one_step(qtbot, bridge: EngineBridge) -> None:
    steps = []
    bridge.step.connect(lambda job, update: steps.append(update))
    results = []
    bridge.result.connect(lambda *a: results.append(a))
    job = bridge.submit(_counting_task(1000, delay=0.01))
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=5000)
    with qtbot.waitSignals([bridge.cancelled, bridge.finished], order="strict", timeout=5000):
        bridge.cancel(job)
        seen_at_cancel = len(steps)
    assert results == []
    assert len(steps) <= seen_at_cancel + 2
    assert bridge.pending == 0


def test_cancel_hook_reaches_an_engine_token(qtbot, bridge: EngineBridge) -> None:
    class Token:
        flag = threading.Event()

    class EngineStop(Exception):
        pass

    bridge._cancel_types = (*bridge._cancel_types, EngineStop)  # as if passed at construction

    def task(ctx: TaskContext) -> None:
        token = Token()
        ctx.on_cancel(token.flag.set)
        ctx.report("running")
        while not token.flag.wait(0.01):
            pass
        raise EngineStop()

    job = bridge.submit(task)
    qtbot.waitSignal(bridge.step, timeout=5000)
    with qtbot.waitSignal(bridge.cancelled, timeout=5000):
        bridge.cancel(job)


def test_error_is_reported_with_details(qtbot, bridge: EngineBridge) -> None:
    def task(ctx: TaskContext) -> None:
        raise ValueError("checkpoint is truncated")

    with qtbot.waitSignal(bridge.error, timeout=5000) as blocker:
        bridge.submit(task)
    job, err = blocker.args
    assert isinstance(err, JobError)
    assert err.message == "checkpoint is truncated" and err.exception_type == "ValueError"
    assert "Traceback" in err.details and "raise ValueError" in err.details


def test_jobs_queue_one_at_a_time_and_queued_jobs_cancel(qtbot, bridge: EngineBridge) -> None:
    order: list[str] = []
    running = threading.Lock()

    def make(name: str):  # type: ignore[no-untyped-def]
        def task(ctx: TaskContext) -> str:
            assert running.acquire(blocking=False), "two jobs ran at once"
            try:
                order.append(name)
                time.sleep(0.05)
                return name
            finally:
                running.release()
        return task

    busy = []
    bridge.busy_changed.connect(busy.append)
    first, second, third = (bridge.submit(make(n)) for n in "abc")
    bridge.cancel(second)
    qtbot.waitUntil(lambda: bridge.pending == 0, timeout=5000)
    assert order == ["a", "c"]
    assert busy == [True, False]


def test_gui_event_loop_keeps_running_during_a_job(qtbot, bridge: EngineBridge) -> None:
    ticks = []
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    with qtbot.waitSignal(bridge.finished, timeout=5000):
        bridge.submit(_counting_task(20, delay=0.01))
    timer.stop()
    assert len(ticks) >= 10
