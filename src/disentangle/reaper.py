"""Ray's processes outlive a study's driver that dies without stopping them (``kill -9``, the
machine's out-of-memory killer): the Ray a study starts on its own machine would keep its agents
running, and hold memory, after the study is gone.

The reaper is a small process of its own beside the driver. It reads a pipe from the driver and,
while the pipe is open, notes every Ray process the driver starts (its descendants whose command
line is a Ray process title, ``ray::...``, or a program of the Ray package, started after the
reaper). When the pipe closes, because the driver stopped Ray and
closed it or because the driver died and the system closed it, the reaper ends those processes
that still run: SIGTERM, then SIGKILL after :data:`GRACE` seconds. A Ray cluster that the study
joined (``--address``) is not the study's to stop, and gets no reaper.

    reaper = start(Path(ray.__file__).parent)          # before ray.init(...)
    ...
    ray.shutdown(); stop(reaper)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

#: Seconds between two looks at the driver's descendants.
POLL = 0.5
#: Seconds a process is given to end after SIGTERM before it is killed.
GRACE = 5.0


def start(ray_package: Path) -> subprocess.Popen:
    """A reaper for the Ray processes this process is about to start from the Ray installed at
    ``ray_package`` (the folder of ``ray/__init__.py``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "disentangle.reaper", str(os.getpid()), str(ray_package)],
        stdin=subprocess.PIPE, start_new_session=True)


def stop(reaper: subprocess.Popen) -> None:
    """Close the reaper's pipe (it ends what is left of Ray, then itself) and wait for it."""
    with contextlib.suppress(OSError):
        reaper.stdin.close()
    try:
        reaper.wait(timeout=GRACE + 5)
    except subprocess.TimeoutExpired:
        reaper.kill()


def _is_ray(command: list[str], ray_package: str) -> bool:
    """A Ray worker or agent (its title is ``ray::...``) or a program of the Ray package (the
    raylet, the GCS server, the dashboard and log monitors)."""
    return bool(command) and (command[0].startswith("ray::")
                              or any(part.startswith(ray_package + os.sep) for part in command))


def _ray_processes(driver: psutil.Process, since: float,
                   ray_package: str) -> list[psutil.Process]:
    """The driver's Ray processes (:func:`_is_ray`) started at or after ``since``."""
    found = []
    for process in driver.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if (process.pid != os.getpid() and process.create_time() >= since
                    and _is_ray(process.cmdline(), ray_package)):
                found.append(process)
    return found


def watch(driver_pid: int, ray_package: str) -> None:
    """Note the driver's Ray processes until stdin closes, then end those still running."""
    since = time.time() - 1.0
    closed = threading.Event()

    def wait_for_eof() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        closed.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    seen: dict[int, psutil.Process] = {}
    try:
        driver = psutil.Process(driver_pid)
        while not closed.wait(POLL):
            for process in _ray_processes(driver, since, ray_package):
                seen.setdefault(process.pid, process)
    except psutil.NoSuchProcess:  # the driver is gone: what it started was noted before
        pass
    # is_running() compares start times, so a pid the system gave to a new process is spared.
    left = [p for p in seen.values() if p.is_running()]
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=GRACE)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
