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
  (its pipe closes): the render processes it started end with its process group, its flow run
  (found by the job's own tag) is set Crashed in the API instead of staying RUNNING forever, the
  run is reported as failed with a Chinese message, and a new worker takes its place. A workbook
  that was not run at all (its folder busy for a moment, the API not answering, a worker that
  could not start) raises `RunNotStarted`: the watcher records nothing and tries it again. When
  workers cannot start three times in a row, each workbook runs as a `perfreport run` child.
- **Limits.** As many runs at once as workers (`size`); a caller beyond that waits for one to
  be free. Runs of one output folder stay exclusive through `output_lock`, as everywhere. A
  worker that grew past RECYCLE_BYTES is replaced after its run, so months of service do not
  accumulate a province run's memory.

Workers are processes, not threads: a run's memory (a province's workbook peaks at 1.7 GB) goes
back to the system only with its process, and a crash in a run cannot take the page down.
Workers are started with "spawn" so that no lock or thread of the serving process is inherited.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, cast

import psutil

from pipeline.errors import Status
from pipeline.serve.warmworker import NOT_RUN, READY, Job, worker_main
from pipeline.serve.watcher import run_in_child_process

# Flow runs a dead worker may have left unfinished.
UNFINISHED_STATES = ("SCHEDULED", "PENDING", "RUNNING")
# How often a waiting caller looks whether its worker is still alive between answers.
LIVENESS_SECONDS = 0.5
# A worker imports and compiles in 2-5 s; one not ready after this is stuck, not slow.
READY_SECONDS = 300.0
# Workers that died before READY this many times in a row: the installation is broken, so the
# workbooks run as `perfreport run` children instead, which say what is wrong in their own words.
MAX_STARTUP_FAILURES = 3
# A worker whose memory stays above this after a run is replaced (a 100,000-project run leaves
# about 1.4 GB behind in the process that read it).
RECYCLE_BYTES = 1024 * 1024 * 1024
STOP_SECONDS = 10.0  # how long `close` lets busy workers finish before it ends them
CRASHED_MESSAGE = ("处理进程意外退出（{reason}），未生成报告；已换用新的处理进程。"
                   "请重新放入或上传该工作簿；如再次发生，请联系管理员。")

logger = logging.getLogger("perfreport.warm")

if TYPE_CHECKING:
    from prefect.server.api.server import SubprocessASGIServer


class RunNotStarted(Exception):
    """The workbook was not run (its folder busy, the Prefect API away, no worker could start,
    the service stopping): nothing to record, the watcher tries it again at its next look."""


@dataclass
class Worker:
    """One worker process, this end of its pipe, and the API it was pointed at."""

    process: BaseProcess
    conn: Connection
    api_url: str | None
    ready: bool = False


def configured_api_url() -> str | None:
    """The Prefect API the settings name (env, .env, prefect.toml, pyproject, profile), or None."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


class TemporaryApi:
    """Prefect's temporary server, started by this process for its workers when no server is
    configured, and started again should it end (killed, out of memory): otherwise every later
    workbook would wait, never run, until the service was restarted."""

    def __init__(self) -> None:
        self.server: SubprocessASGIServer | None = None
        self.guard = threading.Lock()

    def url(self) -> str:
        """The server's API address, (re)starting it when it is not running."""
        from prefect.server.api.server import SubprocessASGIServer

        with self.guard:
            process = self.server.server_process if self.server is not None else None
            if self.server is not None and process is not None and process.poll() is None:
                return self.server.api_url
            if self.server is not None:
                logger.error("the temporary Prefect server ended (%s); starting a new one",
                             process.returncode if process is not None else "?")
                self.server.stop()
            self.server = SubprocessASGIServer()  # Prefect's own: one per process at a time
            self.server.start()
            return self.server.api_url


def mark_crashed(api_url: str, tag: str, reason: str) -> int:
    """Set Crashed the unfinished flow runs tagged `tag` (one job's); how many.

    The worker that ran it died, so nothing else will ever finish that flow run: left alone it
    would show RUNNING in the Prefect UI forever and no automation on crashes would fire.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Crashed

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        unfinished = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[tag]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in UNFINISHED_STATES]))))
        for flow_run in unfinished:
            client.set_flow_run_state(flow_run.id, Crashed(message=CRASHED_MESSAGE.format(reason=reason)),
                                      force=True)
        return len(unfinished)


def exit_reason(process: BaseProcess) -> str:
    """How a worker process ended, for the crash message: its exit code or signal."""
    code = process.exitcode
    if code is None:
        return "原因不明"
    if code < 0:
        return f"被信号 {-code} 终止"
    return f"退出码 {code}"


def end_group(process: BaseProcess) -> None:
    """Kill what is left of a worker's process group: the worker, if alive, and the render
    processes it started (they would otherwise run on, parented to init)."""
    pid = process.pid
    if pid is not None and hasattr(os, "killpg"):
        with contextlib.suppress(OSError):  # the group is empty already
            os.killpg(pid, signal.SIGKILL)
    elif process.is_alive():
        process.kill()
    process.join(timeout=5)


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
        self.temporary: TemporaryApi | None = None  # when this process runs the API itself
        self.failure: BaseException | None = None
        self.startup_failures = 0
        self.starting = False
        self.closed = False

    def start(self) -> None:
        """Find or start the Prefect API and start the workers, in a background thread."""
        with self.guard:
            if self.starting:
                return
            self.starting = True
        # In the starter's context: the Prefect settings it runs with (a temporary server, a
        # temporary setting) are the ones the workers are pointed at.
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(self.warm,), name="perfreport-warm-start", daemon=True).start()

    def warm(self) -> None:
        """The API, then `size` workers (each imports and compiles in parallel with the others)."""
        try:
            if self.api_url is None:
                self.api_url = configured_api_url()
            if self.api_url is None:
                self.temporary = TemporaryApi()
                self.api_url = self.temporary.url()
            for _ in range(self.size):
                self.idle.put(self.spawn())
        except BaseException as exc:  # noqa: BLE001 - told to every caller instead of lost in a thread
            self.failure = exc
            logger.exception("warm workers could not start")
        finally:
            self.warmed.set()

    def spawn(self) -> Worker:
        """A new worker process pointed at the API."""
        if self.closed:
            raise RunNotStarted("the service is stopping")
        mine, theirs = self.context.Pipe()
        environ = {"PREFECT_API_URL": self.api_url} if self.api_url else {}
        # Not a daemon: a worker renders a large workbook with a process pool of its own.
        process = self.context.Process(target=worker_main, args=(theirs, environ), name="perfreport-worker")
        process.start()
        theirs.close()
        worker = Worker(process, mine, self.api_url)
        with self.guard:
            self.everyone.append(worker)
        return worker

    def __call__(self, workbook: Path, input_dir: Path, output_dir: Path, profile: str | None = None, *,
                 pdf: bool = False) -> tuple[str, str]:
        """Run `workbook` in the next idle worker and wait for the outcome (Status, message);
        RunNotStarted when it was not run."""
        if not self.warmed.is_set():
            self.start()  # a runner used without start(): warm now
            self.warmed.wait()
        worker = self.take_worker()
        if worker is None:  # no API and no workers: a `perfreport run` child per workbook
            return run_in_child_process(workbook, input_dir, output_dir, profile or self.profile,
                                        pdf=pdf or self.pdf)
        job = Job(str(workbook.resolve()), str(output_dir.resolve()), profile or self.profile, pdf or self.pdf,
                  tag=f"perfreport-job-{uuid.uuid4().hex[:12]}")
        successor: Worker | None = None
        try:
            (status, message), successor = self.run_on(worker, job)
        finally:
            self.give_back(successor)
        if status == NOT_RUN:
            raise RunNotStarted(message)
        return status, message

    def take_worker(self) -> Worker | None:
        """The next idle worker (waiting for one), or None once workers cannot start. With a
        temporary server that has ended, a new one first, and a worker pointed at it."""
        while True:
            if self.closed:
                raise RunNotStarted("the service is stopping")
            if self.failure is not None:
                return None
            with contextlib.suppress(queue.Empty):
                worker = self.idle.get(timeout=LIVENESS_SECONDS)
                if self.temporary is not None:
                    self.api_url = self.temporary.url()
                if worker.api_url == self.api_url:
                    return worker
                self.retire(worker)  # pointed at the server that ended
                try:
                    return self.spawn()
                except Exception as exc:  # noqa: BLE001 - no process can start: the children take over
                    self.failure = exc
                    return None

    def give_back(self, worker: Worker | None) -> None:
        """Return a slot to the pool: `worker`, or a new one in place of a lost one; when stopping,
        end the worker instead."""
        if worker is not None and self.closed:
            self.retire(worker)
            return
        if worker is None and not self.closed:
            try:
                worker = self.spawn()
            except Exception as exc:  # noqa: BLE001 - no process can start: the children take over
                self.failure = exc
                logger.exception("no new worker could start")
                return
        if worker is not None:
            self.idle.put(worker)

    def run_on(self, worker: Worker, job: Job) -> tuple[tuple[str, str], Worker | None]:
        """The job's outcome on `worker`, and the worker to use next (None: start a new one)."""
        if not worker.ready:
            try:
                if self.answer(worker, READY_SECONDS) != READY:
                    raise EOFError("not a worker's greeting")
            except (EOFError, OSError, TimeoutError):
                self.retire(worker, kill=True)
                self.startup_failures += 1
                if self.startup_failures >= MAX_STARTUP_FAILURES:
                    self.failure = RuntimeError(f"{self.startup_failures} workers ended before they were ready")
                return (NOT_RUN, "处理进程未能启动，稍后重试"), None
            worker.ready = True
            self.startup_failures = 0
        try:
            worker.conn.send(job)
            status, message = cast(tuple[str, str], self.answer(worker))
        except (EOFError, OSError):
            return self.crashed(worker, job), None
        if self.grown(worker):
            self.retire(worker)
            return (status, message), None
        return (status, message), worker

    def answer(self, worker: Worker, seconds: float | None = None) -> object:
        """The worker's next message; EOFError when it died first, TimeoutError after `seconds`."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not worker.conn.poll(LIVENESS_SECONDS):
            if not worker.process.is_alive():
                raise EOFError("worker ended")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("worker not ready")
        return worker.conn.recv()

    def grown(self, worker: Worker) -> bool:
        """Whether the worker kept more memory than RECYCLE_BYTES after its run."""
        try:
            return psutil.Process(worker.process.pid).memory_info().rss > RECYCLE_BYTES
        except (psutil.Error, ValueError):
            return False

    def crashed(self, worker: Worker, job: Job) -> tuple[str, str]:
        """Report a worker that died during `job`: its render processes ended, its flow run set
        Crashed, the run failed."""
        worker.process.join(timeout=5)
        reason = exit_reason(worker.process)
        self.retire(worker, kill=True)
        name = Path(job.workbook).name
        logger.error("the worker running %s ended (%s); a new one takes its place", name, reason)
        if self.api_url:
            try:
                mark_crashed(self.api_url, job.tag, reason)
            except Exception:  # noqa: BLE001 - the API being away must not stop the next run
                logger.exception("could not set the flow run of %s Crashed", name)
        return Status.FAILED, CRASHED_MESSAGE.format(reason=reason)

    def retire(self, worker: Worker, kill: bool = False) -> None:
        """End a worker: close its pipe (an idle worker returns), wait, end its group if need be."""
        with self.guard:
            if worker in self.everyone:
                self.everyone.remove(worker)
        worker.conn.close()
        if not kill:
            worker.process.join(timeout=STOP_SECONDS)
        end_group(worker.process)

    def close(self) -> None:
        """Stop: idle workers end now, busy ones after their workbook (up to STOP_SECONDS), then
        whatever is left is ended with its render processes."""
        self.closed = True
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self.retire(self.idle.get(timeout=LIVENESS_SECONDS))
            with self.guard:
                if not self.everyone:
                    return
        with self.guard:
            left = list(self.everyone)
        for worker in left:
            end_group(worker.process)

    def pids(self) -> list[int]:
        """The process ids of the live workers (tests kill one to see it replaced)."""
        with self.guard:
            return [w.process.pid for w in self.everyone if w.process.pid is not None and w.process.is_alive()]
