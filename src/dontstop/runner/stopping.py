"""How a local run stops: the runner on SIGTERM or SIGHUP, its workers with the runner.

`kill PID`, `timeout`, a closed terminal (SIGHUP) or a batch system ending the runner signal the
runner alone. It died at once, without a word, while its worker processes (runner/jobs.py's
spawned ones) ran on: they took every job left, then waited forever on a runner that was gone,
each holding its model in memory, and a rerun found their jobs locked. The same after a kill -9
of the runner, which no handler sees. Now the runner turns the signal into an interruption (its
workers are stopped, as on Ctrl-C: the jobs they were in are redone by the next run), and each
worker watches its runner and ends itself once the runner is gone.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
WATCH_S = 0.5   # how often a worker looks for its runner (seconds)


class Stopped(KeyboardInterrupt):
    """The runner was told to stop by a signal: cli.main prints its line and exits 128 + signal,
    as a process killed by that signal would."""

    def __init__(self, signum: int):
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name}; finished jobs are kept: "
                         "rerun the same command to resume")


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """While the runner runs: SIGTERM and SIGHUP raise Stopped where it is, unless ignored (nohup
    ignores SIGHUP). Only the main thread can set a handler: elsewhere, as in a test's thread,
    the signals keep theirs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:   # `nohup dontstop run ...` goes on when its terminal closes
            signal.signal(signum, _stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop(signum: int, frame) -> None:
    raise Stopped(signum)


def end_with_runner(runner_pid: int) -> None:
    """In a worker: end this process (as kill -9 would: its job is redone by the next run) once
    its runner is gone, which shows as another parent (init, or a subreaper)."""
    def watch() -> None:
        while os.getppid() == runner_pid:
            time.sleep(WATCH_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="end-with-runner", daemon=True).start()
