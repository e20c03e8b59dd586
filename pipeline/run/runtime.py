"""How Prefect runs here: which task runner, and making worker processes share one Prefect API."""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import Settings, prefect_settings_given, refresh_prefect_settings


def task_runner(settings: Settings):  # noqa: ANN201 - a prefect TaskRunner
    """Dask when a scheduler address is configured, else one process per core on this machine."""
    if settings.dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.dask_address)
    from prefect.task_runners import ProcessPoolTaskRunner

    return ProcessPoolTaskRunner(max_workers=settings.workers or os.cpu_count() or 1)


@contextmanager
def api_shared_with_workers() -> Iterator[str]:
    """Export this process's Prefect API address to the worker processes it starts.

    Without it, each worker of an ephemeral run would start a Prefect server of its own
    (12-40 s each, measured here) instead of reporting to the one the flow already uses.
    """
    from prefect import get_client

    url = str(get_client(sync_client=True).api_url)
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


# As long as Prefect waits for its own temporary server (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS).
EMBEDDED_START_SECONDS = 180.0


class EmbeddedApi:
    """Prefect's temporary API server, started before this process imports Prefect's server.

    With no Prefect server configured, a run's first call to the API makes Prefect start its
    temporary server: it imports the whole server into this process (2.4 s here), then starts
    `uvicorn prefect.server.api.server:create_app` in a child process and waits for it (4 s more).
    Here the same command, with the same flags Prefect gives it (no UI, ephemeral, final), is
    started at once, so the child loads on the second core while this process imports pandas,
    pandera and the flow on the first, and nothing of the server is imported here. `ready()` waits
    for its health check and points this process's Prefect settings at it; it is stopped when the
    process ends. Nothing happens when an API is configured (env, profile or prefect.toml).
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None

    @property
    def starting(self) -> bool:
        """Whether a server was started here and is not in use yet (time to spare until `ready`)."""
        return self.process is not None and os.environ.get("PREFECT_API_URL") != self.url

    def start(self) -> EmbeddedApi:
        from prefect.settings import get_current_settings

        if get_current_settings().api.url:
            return self
        spec = importlib.util.find_spec("prefect")
        if spec is None or spec.origin is None:
            return self  # let Prefect say what is wrong when the run starts
        port = free_loopback_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "error", "--lifespan", "on"],
            env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                 "PREFECT__SERVER_FINAL": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        self.url = f"http://127.0.0.1:{port}/api"
        return self

    def ready(self, timeout: float = EMBEDDED_START_SECONDS) -> None:
        """Wait until the server answers, then use it; if it never does, leave the run to start
        Prefect's own (which then says what is wrong)."""
        if self.process is None or self.url is None or os.environ.get("PREFECT_API_URL") == self.url:
            return
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        os.environ["PREFECT_API_URL"] = self.url
                        refresh_prefect_settings()
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()

    def stop(self) -> None:
        """End the server (at exit, or when it never answered)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def warm_caches(templates_dir: Path) -> None:
    """Do now what a run would do on first use in this process: compile every template (a broken
    one is refused later by the run that uses it, with its reasons) and load matplotlib with the
    installed fonts (the 部门汇总报告's chart, about a second). For processes that have time to
    spare before their first run: a warm worker, or `perfreport run` waiting for its API."""
    from pipeline.docx import chart
    from pipeline.errors import PerfreportError
    from pipeline.run.steps import compiled_template

    for template in sorted(templates_dir.glob("*.docx")):
        with contextlib.suppress(PerfreportError, OSError):
            compiled_template(template)
    chart.cjk_family()
    chart.load_canvas()


HEARTBEAT_KEY = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"


@contextmanager
def heartbeats_unless_asked() -> Iterator[None]:
    """Run the block with Prefect's flow-run heartbeats off, unless a settings source asks for them.

    Prefect's heartbeat thread sleeps in whole seconds and is joined when the flow run ends, which
    costs every run up to a second (0.8 s measured on the example, a fifth of a run against a
    server). Heartbeats only serve an automation that marks runs without them as crashed, which an
    administrator sets up on purpose, and then also sets PREFECT_FLOWS_HEARTBEAT_FREQUENCY (see the
    README); runs that die in `web` or `serve` are marked Crashed by their warm runner anyway.
    """
    if heartbeats_asked():
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@functools.cache
def heartbeats_asked() -> bool:
    """Whether a settings source sets the heartbeat frequency: asked once per process, since
    reading every source (profiles, prefect.toml, .env) takes 55 ms, a twentieth of a warm run.
    Prefect itself reads its settings once, at import."""
    return bool(prefect_settings_given([HEARTBEAT_KEY]))
