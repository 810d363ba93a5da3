"""Killing a real server process at the moment it is busy, for the fault tests."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil


def kill_when_busy(pid: int, killed_at: list[float], cpu_seconds: float = 0.5) -> threading.Thread:
    """SIGKILL `pid` once it has used `cpu_seconds` more CPU than now (it is executing a statement).

    The wall-clock time of the kill is appended to `killed_at`.
    """
    process = psutil.Process(pid)
    start = sum(process.cpu_times()[:2])

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(process.cpu_times()[:2]) - start < cpu_seconds:
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        killed_at.append(time.time())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread
