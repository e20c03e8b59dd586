"""Helpers for tests that start real servers as child processes on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """End a process started with start_new_session and everything it started: politely, then not."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`; fail if `process` ends first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before listening")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} within {seconds} s")


def start_web(input_dir: Path, output_dir: Path, port: int, *options: str, cwd: Path, stdout: int | IO[bytes],
              preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    """The real `perfreport web` on 127.0.0.1:`port` in its own process group, with no Prefect API
    or perfreport setting inherited from the environment the tests run in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PERFREPORT_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "web", "--input-dir", str(input_dir), "--output-dir", str(output_dir),
         "--port", str(port), *options],
        env=env, cwd=cwd, start_new_session=True, stdout=stdout, stderr=subprocess.STDOUT, preexec_fn=preexec_fn,
    )


def wait_until(condition: Callable[[], object], seconds: float) -> None:
    """Poll `condition()` until it is true; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")
