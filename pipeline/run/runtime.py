"""How Prefect runs here: which task runner, and making worker processes share one Prefect API."""

from __future__ import annotations

import os
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
