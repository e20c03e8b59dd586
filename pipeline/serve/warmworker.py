"""Inside a warm worker process (`warm.WarmRunner`): import once, then run workbook after workbook.

A worker imports the pipeline and compiles the templates once, says READY, then runs each job it
is sent through `flow.run_workbook`, the command line's own call, so each workbook is a Prefect
flow run like any other. It answers each job with (Status, message), or with NOT_RUN when the
workbook was not run at all and should be tried again later rather than recorded: its output
folder busy for a moment, or the Prefect API not answering.

Each job's flow run carries the job's own tag, so that the serving process can tell exactly which
flow run a worker that died left unfinished, even when another office runs a workbook of the same
name on the same server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from pipeline.errors import PerfreportError, Status, os_error_reason

READY = "ready"
NOT_RUN = "not-run"  # not a Status: the workbook was not run; nothing to record, try again later
BUSY_MESSAGE = "另一个 perfreport 正在处理 {folder}，请等它结束后再运行。"
API_DOWN_MESSAGE = "Prefect 服务器暂时无法访问（{reason}），稍后自动重试"

logger = logging.getLogger("perfreport.warm")


@dataclass(frozen=True, slots=True)
class Job:
    """One workbook for a worker: plain strings, so it crosses the pipe as it is."""

    workbook: str
    output_dir: str
    profile: str | None
    pdf: bool
    tag: str  # the flow run's tag, unique to this job


def worker_main(conn: Connection, environ: Mapping[str, str]) -> None:
    """A worker: import the pipeline once, compile the templates, then run each job it is sent
    until its pipe closes. `environ` (the Prefect API address) is set before Prefect is imported.

    Its own process group: the render processes a large workbook starts end with it when the
    serving process ends the group, and a Ctrl-C in the service's console reaches the service
    alone, which then lets each worker finish its workbook.
    """
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(environ)
    import pipeline.run.flow  # noqa: F401 - the 2 s of imports (Prefect, pandera), paid once per worker
    from pipeline.config import Settings
    from pipeline.run.runtime import warm_caches

    warm_caches(Settings().templates_dir)
    conn.send(READY)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the serving process closed the pipe or ended
            return
        conn.send(job_outcome(job))


def job_outcome(job: Job) -> tuple[str, str]:
    """Run one job as `perfreport run` would and say how it ended: (Status or NOT_RUN, message).

    The message is what the command line prints for a run that wrote nothing to tell it
    (a refused file, an unwritable share); the web page shows it.
    """
    from prefect import tags

    from pipeline.config import DASK_ADDRESS_ENV, Settings, chosen_profile
    from pipeline.run.flow import run_workbook
    from pipeline.write.locks import OutputBusy

    workbook, output_dir = Path(job.workbook), Path(job.output_dir)
    try:
        settings = Settings(output_dir=output_dir, profile=chosen_profile(job.profile),
                            profile_chosen=bool(job.profile), pdf=job.pdf,
                            dask_address=os.environ.get(DASK_ADDRESS_ENV) or None)
        with tags(job.tag):
            summary = run_workbook(workbook, settings)
    except OutputBusy as busy:  # another run's lock, for a moment: its end starts ours
        return NOT_RUN, BUSY_MESSAGE.format(folder=busy.folder)
    except PerfreportError as exc:  # a profile file that went bad since the service started
        return Status.REFUSED, str(exc)
    except OSError as exc:  # what outlived the tasks' retries: a share gone, a full disk
        place = exc.filename or output_dir
        return Status.REFUSED, f"无法读写 {place}（{os_error_reason(exc)}）"
    except Exception as exc:  # noqa: BLE001 - the worker must live on to run the next workbook
        unreachable = api_unreachable(exc)
        if unreachable is not None:
            return NOT_RUN, API_DOWN_MESSAGE.format(reason=type(unreachable).__name__)
        logger.exception("run of %s failed", workbook.name)
        return Status.FAILED, f"内部错误：{type(exc).__name__}: {exc}"
    return summary.status, summary.message


def api_unreachable(exc: BaseException) -> BaseException | None:
    """What, in `exc` or what it was raised from, says the Prefect API could not be reached or
    failed on its side (a connection refused or timed out, a 5xx answer): the workbook is fine,
    try it later; None when nothing does. Prefect's client wraps the first failed contact of a
    process in a RuntimeError ("Failed to reach API at …") raised from the connection error."""
    import httpx

    seen: BaseException | None = exc
    for _ in range(10):  # a chain of causes is short; a cycle must not hang the worker
        if seen is None:
            return None
        if isinstance(seen, httpx.TransportError):
            return seen
        with contextlib.suppress(AttributeError):
            if isinstance(seen, httpx.HTTPStatusError) and seen.response.status_code >= 500:
                return seen
        seen = seen.__cause__ or seen.__context__
    return None
