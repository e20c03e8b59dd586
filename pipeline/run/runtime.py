"""How Prefect runs here: which task runner, and making worker processes share one Prefect API."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.config import Settings


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


class EmbeddedApi:
    """Prefect's temporary API server, started in the background while the pipeline imports.

    With no Prefect server configured, a run's first call to the API starts Prefect's own
    temporary server in a child process and waits for it: about 4.5 s on a 2-core machine, most
    of it that child importing Prefect's server. Starting it first lets the child do that on the
    second core while this process imports pandas, pandera and the schemas (2 s) on the first.
    `ready()` waits for it; the run then finds the same server (Prefect keeps one per process).
    Nothing happens when an API is configured (env, profile or prefect.toml).
    """

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def start(self) -> EmbeddedApi:
        from prefect.settings import get_current_settings

        if not get_current_settings().api.url:
            self.thread = threading.Thread(target=self.boot, name="perfreport-embedded-api", daemon=True)
            self.thread.start()
        return self

    def boot(self) -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
        except BaseException as exc:  # noqa: BLE001 - the run's own start of the server will tell
            self.failure = exc

    def ready(self) -> None:
        """Wait until the server answers (or failed to start: the run then tries, and says why)."""
        if self.thread is not None:
            self.thread.join()
