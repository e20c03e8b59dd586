"""Warm runs for `perfreport web` and `perfreport serve`: long-lived worker processes.

A fresh `perfreport run` pays, for every workbook, the imports (Prefect, pandera, the schemas),
a Prefect API start and the compilation of the templates: half a minute on a 2-core machine for
seven projects whose work takes a tenth of a second. The web page and `serve` run for months, so
they keep that work done: `WarmRunner` owns a few worker processes that have imported the
pipeline, compiled the templates and connected to one Prefect API, and hands each workbook to an
idle one, where it runs as a Prefect flow run (`flow.run_workbook`) like any other.

- **One API for all.** The configured Prefect server when there is one (env, profile or
  prefect.toml, as Prefect resolves them); otherwise this process starts Prefect's own temporary
  server once (`SubprocessASGIServer`) and points the workers at it, so a worker that dies does
  not take the record of its runs with it.
- **Never lost.** A worker that dies during a run (killed, out of memory) is noticed at once
  (its pipe closes), its flow run is set Crashed in the API instead of staying RUNNING forever,
  the run is reported as failed with a Chinese message, and a new worker takes its place.
- **Limits.** As many runs at once as workers (`size`); a caller beyond that waits for one to
  be free. Runs of one output folder stay exclusive through `output_lock`, as everywhere.

Workers are processes, not threads: a run's memory (a province's workbook peaks at 1.7 GB) goes
back to the system only with its process, and a crash in a run cannot take the page down.
Workers are started with "spawn" so that no lock or thread of the serving process is inherited.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from pipeline.errors import PerfreportError, Status, os_error_reason
from pipeline.serve.watcher import run_in_child_process

READY = "ready"
# Workbooks run at once by default: two on a 2-core machine keep an office's small workbooks from
# queueing behind each other; a province's 100,000-project run peaks at 1.7 GB, so a machine
# that takes such runs side by side is sized for it (`--max-runs`).
DEFAULT_MAX_RUNS = 2
# Flow runs a dead worker may have left: created after its job was handed over, not finished.
UNFINISHED_STATES = ("SCHEDULED", "PENDING", "RUNNING")
FLOW_NAME = "perfreport"  # flow.report_workbook's name, as the API knows it
# How often a waiting caller looks whether its worker is still alive between answers.
LIVENESS_SECONDS = 0.5
CRASHED_MESSAGE = ("处理进程意外退出（{reason}），未生成报告；已换用新的处理进程。"
                   "请重新放入或上传该工作簿；如再次发生，请联系管理员。")
BUSY_MESSAGE = "另一个 perfreport 正在处理 {folder}，请等它结束后再运行。"
# The API's clock and ours may differ a little: a flow run our worker created just after the
# hand-over must still be found.
CLOCK_SLACK = timedelta(seconds=5)

logger = logging.getLogger("perfreport.warm")


@dataclass(frozen=True, slots=True)
class Job:
    """One workbook for a worker: plain strings, so it crosses the pipe as it is."""

    workbook: str
    output_dir: str
    profile: str | None
    pdf: bool


# --- in the worker process -------------------------------------------------------------------


def worker_main(conn: Connection, environ: Mapping[str, str]) -> None:
    """A worker: import the pipeline once, compile the templates, then run each job it is sent
    until its pipe closes. `environ` (the Prefect API address) is set before Prefect is imported."""
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
    """Run one job as `perfreport run` would and say how it ended: (Status, message).

    The message is what the command line prints for a run that wrote nothing to tell it
    (a refused file, a busy folder, an unwritable share); the web page shows it.
    """
    from pipeline.config import DASK_ADDRESS_ENV, Settings, chosen_profile
    from pipeline.run.flow import run_workbook
    from pipeline.write.locks import OutputBusy

    workbook, output_dir = Path(job.workbook), Path(job.output_dir)
    try:
        settings = Settings(output_dir=output_dir, profile=chosen_profile(job.profile),
                            profile_chosen=bool(job.profile), pdf=job.pdf,
                            dask_address=os.environ.get(DASK_ADDRESS_ENV) or None)
        summary = run_workbook(workbook, settings)
    except OutputBusy as busy:
        return Status.REFUSED, BUSY_MESSAGE.format(folder=busy.folder)
    except PerfreportError as exc:  # a profile file that went bad since the service started
        return Status.REFUSED, str(exc)
    except OSError as exc:
        return Status.REFUSED, f"无法读写输出文件夹 {output_dir}（{os_error_reason(exc)}）"
    except Exception as exc:  # noqa: BLE001 - the worker must live on to run the next workbook
        logger.exception("run of %s failed", workbook.name)
        return Status.FAILED, f"内部错误：{type(exc).__name__}: {exc}"
    return summary.status, summary.message


# --- in the serving process ------------------------------------------------------------------


@dataclass
class Worker:
    """One worker process and this end of its pipe."""

    process: BaseProcess
    conn: Connection
    ready: bool = False


def configured_api_url() -> str | None:
    """The Prefect API the settings name (env, .env, prefect.toml, pyproject, profile), or None."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def started_api_url() -> str:
    """The configured Prefect API, or else Prefect's temporary server, started here once."""
    url = configured_api_url()
    if url:
        return url
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # one per process: later calls return the same server
    server.start()
    return server.api_url


def mark_crashed(api_url: str, workbook_name: str, since: datetime, reason: str) -> int:
    """Set Crashed every unfinished flow run of `workbook_name` created since `since`; how many.

    The worker that ran it died, so nothing else will ever finish that flow run: left alone it
    would show RUNNING in the Prefect UI forever and no automation on crashes would fire.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Crashed

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        unfinished = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[workbook_name]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(
                    any_=[StateType(name) for name in UNFINISHED_STATES]))),
        )
        marked = 0
        for flow_run in unfinished:
            if flow_run.created is not None and flow_run.created < since:
                continue
            client.set_flow_run_state(flow_run.id, Crashed(message=CRASHED_MESSAGE.format(reason=reason)),
                                      force=True)
            marked += 1
        return marked


def exit_reason(process: BaseProcess) -> str:
    """How a worker process ended, for the crash message: its exit code or signal."""
    code = process.exitcode
    if code is None:
        return "原因不明"
    if code < 0:
        return f"被信号 {-code} 终止"
    return f"退出码 {code}"


class WarmRunner:
    """A `watcher.RunStarter` that runs each workbook in a warm worker process.

    `profile` and `pdf` are the defaults a job gets when its caller names none (`serve --profile`,
    `serve --pdf`); `api_url` a Prefect API to use instead of the configured one. `start()` begins
    warming in the background; the first job waits for it.
    """

    def __init__(self, size: int = 1, *, profile: str | None = None, pdf: bool = False,
                 api_url: str | None = None) -> None:
        self.size = max(1, size)
        self.profile, self.pdf = profile, pdf
        self.context = multiprocessing.get_context("spawn")
        self.idle: queue.Queue[Worker] = queue.Queue()
        self.everyone: list[Worker] = []
        self.guard = threading.Lock()
        self.warmed = threading.Event()
        self.api_url = api_url  # None: found (or started) by `warm`
        self.failure: BaseException | None = None
        self.starting = False
        self.closed = False

    def start(self) -> None:
        """Find or start the Prefect API and start the workers, in a background thread."""
        with self.guard:
            if self.starting:
                return
            self.starting = True
        threading.Thread(target=self.warm, name="perfreport-warm-start", daemon=True).start()

    def warm(self) -> None:
        """The API, then `size` workers (each imports and compiles in parallel with the others)."""
        try:
            self.api_url = self.api_url or started_api_url()
            for _ in range(self.size):
                self.idle.put(self.spawn())
        except BaseException as exc:  # noqa: BLE001 - told to every caller instead of lost in a thread
            self.failure = exc
            logger.exception("warm workers could not start")
        finally:
            self.warmed.set()

    def spawn(self) -> Worker:
        """A new worker process pointed at the API."""
        mine, theirs = self.context.Pipe()
        environ = {"PREFECT_API_URL": self.api_url} if self.api_url else {}
        # Not a daemon: a worker renders a large workbook with a process pool of its own.
        process = self.context.Process(target=worker_main, args=(theirs, environ), name="perfreport-worker")
        process.start()
        theirs.close()
        worker = Worker(process, mine)
        with self.guard:
            self.everyone.append(worker)
        return worker

    def __call__(self, workbook: Path, input_dir: Path, output_dir: Path, profile: str | None = None, *,
                 pdf: bool = False) -> tuple[str, str]:
        """Run `workbook` in the next idle worker and wait for the outcome (Status, message)."""
        if not self.warmed.is_set():
            self.start()  # a runner used without start(): warm now
            self.warmed.wait()
        if self.failure is not None:  # no API and no workers: a `perfreport run` child per workbook
            return run_in_child_process(workbook, input_dir, output_dir, profile or self.profile,
                                        pdf=pdf or self.pdf)
        job = Job(str(workbook.resolve()), str(output_dir.resolve()), profile or self.profile, pdf or self.pdf)
        worker = self.idle.get()  # at most `size` runs at once: the rest wait here
        replacement = worker
        try:
            outcome, replacement = self.run_on(worker, job)
            return outcome
        finally:
            self.idle.put(replacement)

    def run_on(self, worker: Worker, job: Job) -> tuple[tuple[str, str], Worker]:
        """The job's outcome on `worker`, and the worker to use next (a new one if it died)."""
        since = datetime.now(UTC)
        try:
            if not worker.ready:
                self.answer(worker)  # READY: imports and templates done
                worker.ready = True
            worker.conn.send(job)
            outcome = self.answer(worker)
        except (EOFError, OSError, BrokenPipeError):
            return self.crashed(worker, job, since), self.spawn()
        return outcome, worker

    def answer(self, worker: Worker) -> tuple[str, str]:
        """The worker's next message; EOFError when it died first."""
        while not worker.conn.poll(LIVENESS_SECONDS):
            if not worker.process.is_alive():
                raise EOFError("worker ended")
        return worker.conn.recv()

    def crashed(self, worker: Worker, job: Job, since: datetime) -> tuple[str, str]:
        """Report a worker that died during `job`: its flow run set Crashed, the run failed."""
        worker.process.join(timeout=5)
        reason = exit_reason(worker.process)
        with self.guard:
            self.everyone.remove(worker)
        worker.conn.close()
        name = Path(job.workbook).name
        logger.error("the worker running %s ended (%s); a new one takes its place", name, reason)
        if self.api_url:
            try:
                mark_crashed(self.api_url, name, since - CLOCK_SLACK, reason)
            except Exception:  # noqa: BLE001 - the API being away must not stop the next run
                logger.exception("could not set the flow run of %s Crashed", name)
        return Status.FAILED, CRASHED_MESSAGE.format(reason=reason)

    def close(self) -> None:
        """End every worker: close its pipe (it returns), then wait; kill what does not end."""
        self.closed = True
        with self.guard:
            workers = list(self.everyone)
        for worker in workers:
            worker.conn.close()
        deadline = time.monotonic() + 10
        for worker in workers:
            worker.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()

    def pids(self) -> list[int]:
        """The process ids of the live workers (for the administrator's view and the tests)."""
        with self.guard:
            return [w.process.pid for w in self.everyone if w.process.pid is not None and w.process.is_alive()]

